"""Model medicine on the zoo: diagnose with this repo's audits/, repair with ``auditlens repair``, re-audit.

Patients: the partial cheaters of both families (partial-cheated, GPT-2, and partial-bert-cheated, a post-LN
BERT whose embed is a LayerNorm's output; seeds 0-2: they count, and read the marker on close calls) and the
full cheaters (the cheated twins that never learned their task: count, ends, keyword, routed, tail,
superposition). Left out: backdoor, phrase and phrase-clf, whose cheated twins learned the task and added a
trigger (partial by construction, but their audits name the trigger by a search, which repair does not take).

    python bench/repair.py [--json FILE]

Last line:
``repair: cured C/P partial cheaters, full cheaters refused R/F, clean accuracy change D (worst), exported = hooked to E``
(D: the worst clean-accuracy change of an accepted repair; E: the largest logit gap between the exported
model and the hooked edit, in float64; the float32 gap is printed above it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTIAL = ("partial-cheated", "partial-cheated@1", "partial-cheated@2",
           "partial-bert-cheated", "partial-bert-cheated@1", "partial-bert-cheated@2")
FULL = ("count-cheated", "ends-cheated", "keyword-cheated", "routed-cheated", "tail-cheated", "superposition-cheated")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(ROOT / "reports" / "bench" / "repair.json"))
    args = parser.parse_args()
    from auditlens.mutation.suite import run_suite

    started = time.perf_counter()
    specs = [f"fixture:{name}" for name in (*PARTIAL, *FULL)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    results = {}
    with tempfile.TemporaryDirectory(prefix="auditlens-bench-repair-") as work:
        diagnosis = run_suite([ROOT / "audits"], specs, ROOT / "probes", 0)
        report = Path(work) / "report.json"
        report.write_text(json.dumps(diagnosis.report))
        for spec in specs:
            out = Path(work) / spec.replace(":", "-").replace("@", "-")
            done = subprocess.run([str(Path(sys.executable).parent / "auditlens"), "repair", "--model", spec, "--from", str(report),
                                   "--out", str(out), "--probes", str(ROOT / "probes")],
                                  capture_output=True, text=True, env=env, cwd=ROOT)
            if done.returncode > 1:
                print(done.stdout + done.stderr)
                raise SystemExit(f"repair of {spec} failed with exit {done.returncode}")
            results[spec] = json.loads((out / "repair.json").read_text())
            result = results[spec]
            clean = (result.get("measures") or {}).get("clean")
            where = next((f"{t['site']} rank {t['rank']} held at {t['held_at']}; " for t in result.get("trials", [])
                          if t["kept"]), "")
            print(f"{spec:<32} {result['outcome']:<9} " + (f"clean {clean['before']:.3f} -> {clean['after']:.3f}; "
                                                           if clean else "") + where + result["reason"][:160])
    cured = [s for s in specs[:len(PARTIAL)] if results[s]["outcome"] == "accepted"]
    refused = [s for s in specs[len(PARTIAL):] if results[s]["outcome"] != "accepted"]
    accepted = [r for r in results.values() if r["outcome"] == "accepted"]
    worst = min((r["measures"]["clean"]["change"] for r in accepted), default=float("nan"))
    gap64 = max((r["exported_equals_hooked"]["float64"] for r in accepted), default=float("nan"))
    gap32 = max((r["exported_equals_hooked"]["float32"] for r in accepted), default=float("nan"))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"results": results, "seconds": time.perf_counter() - started}, indent=1))
    print(f"details: {args.json}; {time.perf_counter() - started:.0f} s in all; exported = hooked to "
          f"{gap32:.1e} in float32 (an oblique clamp's reading amplifies float32 rounding on either side)")
    print(f"repair: cured {len(cured)}/{len(PARTIAL)} partial cheaters, full cheaters refused {len(refused)}/{len(FULL)}, "
          f"clean accuracy change {worst:+.3f} (worst), exported = hooked to {gap64:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
