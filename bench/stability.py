"""Verdict stability: the whole audit suite on every zoo organism (and MiniLM) under --audit-seed 0..4.

Last line: ``verdict agreement across seeds: A/M models``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from auditlens.zoo.registry import list_organisms

ROOT = Path(__file__).resolve().parent.parent


def main(seeds: int = 5) -> None:
    models = [f"fixture:{o.name}" for o in list_organisms()]
    verdicts: dict[str, list[str]] = {m: [] for m in models}
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "pytest", str(ROOT / "audits"), "-q", "-p", "no:cacheprovider",
                       "--audit-seed", str(seed), "--audit-report", out, *[a for m in models for a in ("--model", m)]]
            subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            for model in json.loads((Path(out) / "report.json").read_text())["models"]:
                verdicts[model["id"]].append(model["verdict"])
        print(f"seed {seed}: " + ", ".join(f"{m.removeprefix('fixture:')}={v[-1]}" for m, v in verdicts.items()),
              flush=True)
    agree = sum(len(set(v)) == 1 for v in verdicts.values())
    print(f"verdict agreement across seeds: {agree}/{len(models)} models")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
