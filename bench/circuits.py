"""Circuits against known truth (issue 18): the known-circuit families (routed: GPT-2; tail: Llama
with grouped-query attention), several seeds each.

1. verdicts: the circuit audits (audits/routed.audit.yaml, audits/tail.audit.yaml) on every organism,
   against its known truth;
2. recovery: attribution patching (``--steps``, default 4: integrated gradients from base to source)
   over every head on the family's count-swapped pairs; the AUROC of |estimate| against the heads on
   the organism's route (by construction the only heads that write); an organism with no head on its
   route (tail-cheated) has no AUROC and is listed as such;
3. agreement: Spearman rho between |estimate| and |real activation patching|, head by head, on every
   organism where patching moves anything (and on count-learned, whose heads are not held), with
   ``--steps`` and with one step;
4. speed: attributing all 144 heads of a 12-layer, 12-head GPT-2-shaped classifier (d=192, random
   weights) on 200 pairs against patching each head in turn, timed side by side.

    python bench/circuits.py [--seeds 3] [--steps 4]

Last line: ``circuits: verdicts V/N, recovery AUROC R, attribution-vs-patching rho P, speed-up X``
(R and P: the worst organism's; X at ``--steps``).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from transformers import GPT2Config, GPT2ForSequenceClassification

from auditlens import Concept, CounterfactualPair, attribute, load_subject
from auditlens.checks.attribute import agreement, patching_effects
from auditlens.concepts.files import load_concept
from auditlens.sites.resolve import expand_sites
from auditlens.zoo.registry import get, resolve_fixture
from auditlens.zoo_tools.build_pool import build_missing

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = {"routed": "count_swapped", "tail": "tail_count_swapped"}
AUDITS = ["audits/routed.audit.yaml", "audits/tail.audit.yaml"]


def organisms(seeds: int) -> list[str]:
    return [f"{family}-{truth}" + (f"@{seed}" if seed else "")
            for family in FAMILIES for truth in ("learned", "cheated") for seed in range(seeds)]


def verdicts(names: list[str]) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as report:
        command = [sys.executable, "-m", "pytest", *AUDITS, "-q", "-p", "no:cacheprovider", "--audit-report", report,
                   *[arg for name in names for arg in ("--model", f"fixture:{name}")]]
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        return {m["id"].removeprefix("fixture:"): m["verdict"]
                for m in json.loads((Path(report) / "report.json").read_text())["models"]}


def recovery(name: str, steps: int) -> tuple[float | None, float | None, float | None]:
    """(AUROC of |estimate| against the route, Spearman rho of |estimate| against |real patching| with
    ``steps`` and with one step); None where undefined (no head on the route, or patching moves nothing)."""
    metadata = resolve_fixture(name)[1]
    subject = load_subject(f"fixture:{name}")
    pairs = load_concept(ROOT / "probes" / f"{FAMILIES.get(name.split('-')[0], 'count_swapped')}.yaml")
    result = attribute(subject, pairs, "head:*.*", steps=steps, validate=True)
    single = agreement(np.array(attribute(subject, pairs, "head:*.*").estimates), np.array(result.actual))[0]
    route = set(metadata.get("route", ()))
    truth = [component in route for component in result.components]
    auroc = roc_auc_score(truth, np.abs(result.estimates)) if "route" in metadata and 0 < sum(truth) < len(truth) else None
    finite = [value if np.isfinite(value) else None for value in (result.rank_correlation, single)]
    return auroc, *finite


def speed(steps: int, pairs: int = 200) -> tuple[float, float, float, float, float]:
    """On a 12-layer, 12-head GPT-2-shaped classifier (d=192, random weights), 200 pairs of 12 tokens:
    (seconds to attribute every head with ``steps``, with one step, to patch each head in turn, rho of
    each against patching)."""
    torch.manual_seed(0)
    model = GPT2ForSequenceClassification(GPT2Config(n_layer=12, n_head=12, n_embd=192, vocab_size=64, n_positions=32,
                                                     num_labels=2, pad_token_id=0, bos_token_id=1, eos_token_id=1))
    subject = load_subject(model)
    rng = random.Random(0)
    rows = []
    for _ in range(pairs):
        base = [rng.randrange(2, 64) for _ in range(12)]
        source = [rng.randrange(2, 64) if rng.random() < 0.3 else t for t in base]
        rows.append(CounterfactualPair(base, source, rng.randrange(2)))
    concept = Concept("random pairs", pairs=tuple(rows))
    timings, estimates = [], []
    for k in (steps, 1):
        started = time.perf_counter()
        estimates.append(np.array(attribute(subject, concept, "head:*.*", steps=k).estimates))
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    effects = np.array(patching_effects(subject, concept, expand_sites(subject.model, "head:*.*")))
    patched = time.perf_counter() - started
    return timings[0], timings[1], patched, agreement(estimates[0], effects)[0], agreement(estimates[1], effects)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="attribution steps (integrated gradients)")
    parser.add_argument("--no-speed", action="store_true",
                        help="skip the speed comparison (minutes of patching a 144-head model; bench/portability.py)")
    args = parser.parse_args()
    names = organisms(args.seeds)
    build_missing([*names, "count-learned"])  # none where fixtures/ ships them
    found = verdicts(names)
    right = 0
    aurocs, rhos = [], []
    print(f"{'organism':<18} {'truth':<8} {'verdict':<9} {'AUROC':>6} {'rho':>6} {'rho(1 step)':>11}")
    for name in [*names, "count-learned"]:
        auroc, rho, single = recovery(name, args.steps)
        truth, verdict = get(name).truth, found.get(name, "n/a (not a circuit organism)")
        if name in names:
            right += verdict == truth
            aurocs += [auroc] if auroc is not None else []
        rhos += [rho] if rho is not None else []
        show = [("n/a" if value is None else f"{value:.3f}") for value in (auroc, rho, single)]
        print(f"{name:<18} {truth:<8} {verdict:<9} {show[0]:>6} {show[1]:>6} {show[2]:>11}")
    if args.no_speed:
        print(f"circuits: verdicts {right}/{len(names)}, recovery AUROC {min(aurocs):.3f}, "
              f"attribution-vs-patching rho {min(rhos):.3f}, speed-up not measured")
        return
    attributed, single, patched, rho, single_rho = speed(args.steps)
    print(f"12x12 GPT-2 (d=192), 200 pairs: attribution {attributed:.2f} s ({args.steps} steps; rho {rho:.3f}), "
          f"{single:.2f} s (1 step; rho {single_rho:.3f}), patching each of 144 heads {patched:.2f} s "
          f"(speed-up {patched / single:.1f}x at 1 step)")
    print(f"circuits: verdicts {right}/{len(names)}, recovery AUROC {min(aurocs):.3f}, "
          f"attribution-vs-patching rho {min(rhos):.3f}, speed-up {patched / attributed:.1f}x")


if __name__ == "__main__":
    main()
