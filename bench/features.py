"""Dictionary features against known truth (issue 28): the superposition family, where 34 binary
features share a 16-wide residual, so no neuron, head or residual dimension is one feature.

For each organism (learned and cheated twins, ``--seeds`` seeds):
1. train a TopK dictionary at layer:0 (last position) on ``--rows`` inputs where every feature is sparse
   and the intended and the spurious ones vary independently, timed;
2. recovery: the mean over the 34 planted directions of the best cosine similarity with a decoder row;
3. verdicts: the audits of ``audits/superposition.audit.yaml`` with their feature sites, and the same
   audits with the units of other sites instead of latents: the residual's dimensions (``layer:0``),
   block 1's MLP neurons (``neurons:1``) and, for the ablations, the single head of block 0 whose output
   best tells the concept apart (``head:0.H``, chosen by a probe). An organism's verdict is learned when
   every audit of a granularity passes, cheated otherwise.

    python bench/features.py [--seeds 3] [--rows 20000] [--width 64] [--k 4]

The line before the last gives the right verdicts at every granularity; the last line is
``features: verdicts V/N, neuron-level verdicts U/N, recovery MCS R, train T s`` (V: right with feature
sites; U: right with the MLP neurons (``neurons:1``); R: the worst organism's MCS; T: the slowest
dictionary's training time, the zoo-sized one included).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from auditlens import ablate, load_subject, probe
from auditlens.concepts.files import load_concept
from auditlens.declarative import load_audit_file
from auditlens.dictionaries import max_cosine_recovery, train_topk
from auditlens.features.fit import evaluate, one_thread, site_activations
from auditlens.results import not_recorded
from auditlens.zoo import superposition_task as task

ROOT = Path(__file__).resolve().parent.parent
AUDITS = ROOT / "audits" / "superposition.audit.yaml"
SITE = task.PLANTED_SITE


def concept(name: str):
    return load_concept(ROOT / "probes" / f"{name}.yaml")


def corpus(rows: int, seed: int):
    """Inputs where every feature is sparse, as probes/superposition_corpus (its labels go unused)."""
    from auditlens import Concept

    examples = task.sparse_corpus(rows, 9000 + seed)
    return Concept("corpus", tuple(r["text"] for r in examples), tuple(r["label"] for r in examples))


def run_audits(subject, at: str | None) -> list[tuple[str, bool, dict]]:
    """Each audit of the file, with its feature site replaced by ``at`` (None: as written)."""
    outcomes = []
    for entry in load_audit_file(AUDITS, {p.stem for p in (ROOT / "probes").glob("*.yaml")}):
        arguments = dict(entry.arguments)
        if at is not None:
            arguments["at"] = at
        changed = type(entry)(entry.path, entry.line, entry.name, entry.id, entry.check, arguments, entry.expect,
                              entry.models, entry.marks)  # no dictionaries: the subject has it attached already
        with not_recorded():
            result, missed = changed.run(subject, concept)
        outcomes.append((entry.name, not missed, result.metrics()))
    return outcomes


def head_audits(subject) -> list[tuple[str, bool, dict]]:
    """The ablation audits at head level: the head of block 0 whose output best tells the concept apart."""
    task_concept = concept("superposition_in_distribution")
    outcomes = []
    for tied_to, bound, name in (("alpha_feature", (">=", 0.25), "the decision reads the intended feature"),
                                 ("beta_feature", ("<=", 0.1), "the spurious feature does not decide it")):
        with not_recorded():
            heads = [f"head:0.{h}" for h in range(subject.model.config.n_head)]
            best = max(heads, key=lambda h: float(probe(subject, concept(tied_to), h).accuracy))
            drop = float(ablate(subject, task_concept, best, "zero").accuracy_drop)
        passed = drop >= bound[1] if bound[0] == ">=" else drop <= bound[1]
        outcomes.append((f"{name} ({best})", passed, {"accuracy_drop": drop}))
    return outcomes


def zoo_sized_training() -> float:
    """A dictionary for a zoo-sized site: count-learned's layer:0 (d=64), every real token of its concepts
    (about 20,000 rows with repeats), width 512, k 8, timed on one thread."""
    subject = load_subject("fixture:count-learned")
    names = ["count_in_distribution", "more_a_than_b", "marker_swapped"]
    activations = site_activations(subject, "layer:0", [concept(n) for n in names if concept(n).examples],
                                   position="all")
    activations = activations.repeat(max(1, 20000 // len(activations) + 1), 1)[:20000]
    started = time.perf_counter()
    with one_thread():
        _, stats = train_topk(activations, width=512, k=8, seed=0, hook_name="layer:0")
    elapsed = time.perf_counter() - started
    print(f"zoo-sized dictionary (count-learned layer:0, d=64, 20,000 rows, width 512, k 8): {elapsed:.1f} s, "
          f"explained variance {stats.explained_variance:.3f}, L0 {stats.l0:.1f}, dead {stats.dead_fraction:.1%}")
    return elapsed


def verdict(outcomes) -> str:
    return "learned" if all(passed for _, passed, _ in outcomes) else "cheated"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    rows, recoveries, seconds = [], [], []
    right = {"features": 0, "layer:0 dimensions": 0, "neurons:1": 0, "heads": 0}
    for seed in range(args.seeds):
        for truth in ("learned", "cheated"):
            name = f"superposition-{truth}" + (f"@{seed}" if seed else "")
            subject = load_subject(f"fixture:{name}")
            activations = site_activations(subject, SITE, [corpus(args.rows, seed)], position="last")
            started = time.perf_counter()
            with one_thread():
                dictionary, stats = train_topk(activations, width=args.width, k=args.k, seed=seed, hook_name=SITE)
            seconds.append(time.perf_counter() - started)
            _, planted = task.planted_directions(subject.model, subject.tokenizer)
            recovery = max_cosine_recovery(planted, dictionary)
            recoveries.append(recovery)
            subject.attach_dictionary(SITE, dictionary)
            quality = evaluate(subject, SITE, dictionary, concept("superposition_in_distribution"), "last")
            by_level = {"features": run_audits(subject, None), "layer:0 dimensions": run_audits(subject, "layer:0"),
                        "neurons:1": run_audits(subject, "neurons:1"), "heads": head_audits(subject)}
            verdicts = {level: verdict(outcomes) for level, outcomes in by_level.items()}
            for level, given in verdicts.items():
                right[level] += given == truth
            rows.append({"organism": name, "truth": truth, "verdicts": verdicts, "recovery_mcs": round(recovery, 4),
                         "train_s": round(seconds[-1], 2), "explained_variance": round(stats.explained_variance, 4),
                         "l0": round(stats.l0, 2), "dead_fraction": round(stats.dead_fraction, 4),
                         "loss_increase": round(quality.loss_increase, 5),
                         "audits": {level: [(n, p, {k: round(v, 3) for k, v in m.items()
                                                    if k in ("accuracy_drop", "oracle_gap_after", "scr")})
                                            for n, p, m in outcomes] for level, outcomes in by_level.items()}})
            print(json.dumps(rows[-1]), flush=True)
    zoo_seconds = zoo_sized_training()
    seconds.append(zoo_seconds)
    total = len(rows)
    print("right verdicts by granularity: " + ", ".join(f"{level} {count}/{total}" for level, count in right.items()))
    print(f"features: verdicts {right['features']}/{total}, neuron-level verdicts {right['neurons:1']}/{total}, "
          f"recovery MCS {min(recoveries):.3f}, train {max(seconds):.1f} s")


if __name__ == "__main__":
    main()
