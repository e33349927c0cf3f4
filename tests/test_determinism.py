"""Two runs with the same --audit-seed give the same report numbers; verdicts do not depend on the seed."""

import json

from auditlens.report.model import strip_timings

AUDIT = """
from auditlens import erase, patch, probe
from auditlens.behaviour import expect_invariant, from_concept, swap_words

def test_probe(subject, more_a_than_b):
    assert probe(subject, more_a_than_b, at="layer:*").best_accuracy >= 0.9

def test_erase(subject, more_a_than_b):
    assert erase(subject, more_a_than_b, at="layer:1").accuracy_drop >= 0.3

def test_patch(subject, marker_swapped):
    assert patch(subject, marker_swapped, at="layer:0").flip_rate <= 0.05

def test_invariance(subject, more_a_than_b):
    swap = swap_words({"m0": "m1", "m1": "m0"})
    assert expect_invariant(subject, from_concept(more_a_than_b), swap, max_examples=50).failure_rate <= 0.05
"""
MODELS = ["--model", "fixture:count-learned", "--model", "fixture:count-cheated"]


def report(repo, directory, seed):
    repo.runpytest(*MODELS, "--audit-seed", str(seed), "--audit-report", directory)
    return json.loads((repo.path / directory / "report.json").read_text())


def test_same_seed_same_numbers_and_verdicts_stable_across_seeds(audit_repo):
    audit_repo.makepyfile(test_audit=AUDIT)
    first, again = report(audit_repo, "a", 0), report(audit_repo, "b", 0)
    # forward-pass counts go too: the second in-process run finds the first one's captures in the cache
    same = [json.dumps(strip_timings(r, forward_passes=True), sort_keys=True) for r in (first, again)]
    assert same[0] == same[1]
    other = report(audit_repo, "c", 1)
    verdicts = lambda r: {m["id"]: m["verdict"] for m in r["models"]}  # noqa: E731
    assert verdicts(first) == verdicts(other) == {"fixture:count-learned": "learned",
                                                  "fixture:count-cheated": "cheated"}
