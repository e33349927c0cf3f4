"""Circuits (issue 18, item 2): necessity, faithfulness and minimality of a set of components."""

from pathlib import Path

import pytest
import torch

from auditlens import CheckError, SiteError
from auditlens.checks import FaithfulnessResult, faithfulness, minimality, necessity
from auditlens.circuits import Circuit, _subtract, complement, universe
from auditlens.concepts.files import load_concept
from auditlens.interventions import PartialMean
from auditlens.loading import load_subject
from auditlens.sites.resolve import Site

ROOT = Path(__file__).parent.parent
PROBES = ROOT / "probes"


def test_the_counting_circuit_is_necessary_in_the_learned_twin_only(learned, cheated, concepts):
    """The learned twin counts in its first attention layer; the cheated one reads a marker elsewhere."""
    data = concepts["more_a_than_b"]
    assert float(necessity(learned, data, ["attn:0", "mlp:0"]).accuracy_drop) >= 0.4
    assert float(necessity(cheated, data, ["attn:0", "mlp:0"]).accuracy_drop) <= 0.1


def test_faithfulness_is_one_for_everything_and_measures_a_part(learned, concepts):
    data = concepts["more_a_than_b"]
    whole = faithfulness(learned, data, universe(learned))
    assert whole.faithfulness == pytest.approx(1.0) and whole.score_nothing < whole.score_model
    part = faithfulness(learned, data, ["head:1.0"])
    assert part.faithfulness < 0.5 and part.faithfulness_ci is not None
    assert part.faithfulness_ci.low <= part.faithfulness <= part.faithfulness_ci.high


def test_minimality_names_the_member_the_circuit_does_not_need(learned, concepts):
    result = minimality(learned, concepts["more_a_than_b"], ["attn:0", "attn:1", "mlp:0"])
    drops = dict(result.member_drops)
    assert drops["attn:0"] > 0.5 and result.weakest_member == "attn:1" and result.min_member_drop < 0.1


def test_the_complement_covers_every_other_head_and_mlp(learned):
    everything = complement(learned, Circuit("none-left", tuple(universe(learned))))
    assert everything == {}
    outside = complement(learned, Circuit("one head", ("head:0.1",)))
    spans = {site.module_path: ranges for site, ranges in outside.items()}
    start, stop = learned.site("head:0.1").features
    heads_width = learned.site("head:0.3").features[1]
    assert spans["transformer.h.0.attn.c_proj"] == [(0, start), (stop, heads_width)]
    assert spans["transformer.h.1.attn.c_proj"] == [(0, heads_width)]
    assert spans["transformer.h.1.mlp.c_proj"] == [(0, learned.model.get_submodule("transformer.h.1.mlp.c_proj").nx)]
    assert _subtract((0, 10), [(2, 4), (6, 7)]) == [(0, 2), (4, 6), (7, 10)]


def test_a_partial_mean_replaces_its_ranges_only():
    edit = PartialMean(Site("s", "m", True), torch.arange(6.0), ((1, 3), (5, 6)))
    out = edit.edit(torch.full((1, 2, 6), -1.0), None)
    assert out[0, 0].tolist() == [-1.0, 1.0, 2.0, -1.0, -1.0, 5.0]


@pytest.mark.parametrize("circuit, error, message", [
    (["layer:1"], SiteError, "not a circuit component"),
    ([], CheckError, "has no components"),
    (["head:0.0", "head:0.0"], CheckError, "names a component twice"),
    (["head:7.0"], SiteError, "has 2 blocks"),
])
def test_a_bad_circuit_says_what_would_be_valid(learned, concepts, circuit, error, message):
    with pytest.raises(error, match=message):
        necessity(learned, concepts["more_a_than_b"], circuit)


def test_minimality_needs_two_members(learned, concepts):
    with pytest.raises(CheckError, match="needs at least two members"):
        minimality(learned, concepts["more_a_than_b"], ["attn:0"])


def test_a_faithfulness_with_nothing_to_explain_is_vacuous():
    result = FaithfulnessResult(check="faithfulness", subject="m", site="circuit:c", n=100, faithfulness=float("nan"),
                                score_model=0.5, score_circuit=0.5, score_nothing=0.5)
    assert "nothing for a circuit to explain" in result.vacuous_reason("faithfulness", ">=")


def test_an_audit_file_holds_a_circuit_to_its_mechanism(audit_repo):
    audit_repo.makefile(".audit.yaml", circuit="""
audits:
  - name: the count needs the first attention layer and MLP
    necessity: {concept: more_a_than_b, circuit: ["attn:0", "mlp:0"]}
    expect: {accuracy_drop: ">= 0.3"}
""")
    result = audit_repo.runpytest("--model", "fixture:count-learned", "--model", "fixture:count-cheated",
                                  "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*fixture:count-cheated*cheated*necessity at circuit:attn:0+mlp:0*"])


@pytest.mark.parametrize("text, message", [
    ("components: [head:0.1, mlp:0]\ncomponent: x\n", "unknown key 'component'; did you mean 'components'?"),
    ("components: [layer:1]\n", r"components\[0\] 'layer:1' is not a component"),
    ("components: []\n", "components must be a non-empty list"),
    ("- head:0.1\n", "a circuit file is a mapping"),
])
def test_a_bad_circuit_file_is_named(tmp_path, text, message):
    from auditlens import load_circuit

    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(CheckError, match=message):
        load_circuit(tmp_path / "c.yaml")
    with pytest.raises(CheckError, match="no circuit file at"):
        load_circuit(tmp_path / "missing.yaml")


def test_an_audit_file_names_a_circuit_file_beside_it(audit_repo):
    (audit_repo.path / "circuits").mkdir()
    (audit_repo.path / "circuits" / "count.yaml").write_text(
        "name: count\ndescription: the first attention layer and MLP\ncomponents: [attn:0, mlp:0]\n")
    audit_repo.makefile(".audit.yaml", named="""
audits:
  - name: the count circuit is necessary
    necessity: {concept: more_a_than_b, circuit: circuits/count.yaml}
    expect: {accuracy_drop: ">= 0.3"}
""")
    result = audit_repo.runpytest("--model", "fixture:count-learned", "--model", "fixture:count-cheated",
                                  "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*fixture:count-cheated*cheated*necessity at circuit:count*"])


@pytest.mark.parametrize("name, message", [
    ("circuits/nope.yaml", "no circuit file at"),
    ("../outside.yaml", "lies outside the audit file's directory"),
])
def test_validate_names_a_missing_or_escaping_circuit_file_at_its_line(tmp_path, monkeypatch, name, message):
    from auditlens.declarative import read_audit_file

    monkeypatch.delenv("AUDITLENS_ALLOW_OUTSIDE_FILES", raising=False)
    (tmp_path / "outside.yaml").write_text("components: [attn:0]\n")
    (tmp_path / "audits").mkdir()
    path = tmp_path / "audits" / "a.audit.yaml"
    path.write_text(f"audits:\n  - name: x\n    necessity: {{concept: c, circuit: {name}}}\n"
                    "    expect: {accuracy_drop: '>= 0.3'}\n")
    _, errors = read_audit_file(path, {"c"})
    assert len(errors) == 1 and errors[0].line == 3 and message in str(errors[0])


def test_faithfulness_on_the_logit_difference_sees_a_part_the_accuracy_rounds_off():
    """The tail twin's count runs through head 0.0; the MLPs alone keep nothing of it, on either metric,
    and the metric is named in the result."""
    subject = load_subject("fixture:tail-learned")
    concept = load_concept(PROBES / "tail_in_distribution.yaml")
    alone = faithfulness(subject, concept, ["mlp:0", "mlp:1"], metric="logit_difference")
    assert alone.metric == "logit_difference" and alone.faithfulness < 0.2
    assert alone.score_model > 1.0 > alone.score_nothing  # margins, not accuracies
    whole = faithfulness(subject, concept, ["head:0.0", "head:1.3", "mlp:0", "mlp:1"], metric="logit_difference")
    assert whole.faithfulness == pytest.approx(1.0)
    members = dict(minimality(subject, concept, ["head:0.0", "mlp:0", "mlp:1"], metric="logit_difference").member_drops)
    assert members["head:0.0"] > 0.5 > members["mlp:1"]


def test_a_circuit_metric_must_be_one_the_check_knows(learned, concepts):
    with pytest.raises(CheckError, match="give one of accuracy, logit_difference"):
        faithfulness(learned, concepts["count_in_distribution"], ["head:0.1"], metric="loss")


def test_the_cheated_tail_twin_fails_its_circuit_audits_and_the_learned_passes(audit_repo):
    """The known-circuit audit file of this repo, on the Llama (grouped-query) twins."""
    (audit_repo.path / "circuits").mkdir()
    for source, target in (("audits/tail.audit.yaml", "tail.audit.yaml"),
                           ("audits/circuits/tail_count.yaml", "circuits/tail_count.yaml"),
                           ("probes/tail_in_distribution.yaml", "probes/tail_in_distribution.yaml"),
                           ("probes/tail_in_distribution.jsonl", "probes/tail_in_distribution.jsonl"),
                           ("probes/tail_count_swapped.yaml", "probes/tail_count_swapped.yaml"),
                           ("probes/tail_count_swapped.jsonl", "probes/tail_count_swapped.jsonl")):
        (audit_repo.path / target).write_text((ROOT / source).read_text())
    result = audit_repo.runpytest("--model", "fixture:tail-learned", "--model", "fixture:tail-cheated",
                                  "-p", "no:cacheprovider")
    # the circuit audits and DAS; both twins pass the file's trigger audits
    result.assert_outcomes(passed=7, failed=3)
    failed = [line for line in result.outlines if line.startswith("FAILED")]
    assert len(failed) == 3 and all("[fixture:tail-cheated]" in line and "trigger" not in line for line in failed)
