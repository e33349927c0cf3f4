"""Model medicine on a real pretrained encoder: the MiniLM sentiment classifier (bench/minilm_classifier.py, post-LN
BERT, 6 layers, d=384) with a one-token cheat planted by ``auditlens mutate``, diagnosed by an audit that a neutral
word swapped for the cheat token must not move the decision, repaired with ``auditlens repair``, re-audited.

Two operators, two truths:
- ``backdoor#0``: one token that switches the answer to its target; the mutant keeps the task (it was fine-tuned on
  clean rows too), so removing the token's effect should cure it;
- ``shortcut#0``: a token written into every example of one label, which the mutant was trained to need (the
  label's examples without it were relabelled), so without the token it cannot give that label: a full cheater,
  which repair must refuse as never having learned the task.

    python bench/repair_minilm.py [--json FILE]

Last line: ``minilm repair: backdoor#0 OUTCOME (clean A -> B, flip F -> G), shortcut#0 OUTCOME``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
AUDIT = "a neutral word swapped for the token does not move the decision"
CASES = (("backdoor", 0), ("shortcut", 0))


def swapped_pairs(subject, concept, token: str) -> list[dict]:
    """Each sentiment example with its noun (a slot word that is no opinion) swapped for ``token``; kept when the
    two tokenise to the same length, so every position lines up."""
    import yaml

    nouns = yaml.safe_load((ROOT / "probes" / "sentiment.yaml").read_text())["slots"]["noun"]
    rows = []
    for text, label in zip(concept.examples, concept.labels, strict=True):
        noun = next((n for n in nouns if f" {n} " in f" {text} "), None)
        if noun is None:
            continue
        source = f" {text} ".replace(f" {noun} ", f" {token} ", 1).strip()
        if len(subject.tokenizer(text)["input_ids"]) == len(subject.tokenizer(source)["input_ids"]):
            rows.append({"base": text, "source": source, "label": int(label)})
    return rows


def write_suite(work: Path, rows: list[dict], labels: list[str]) -> tuple[Path, Path]:
    """probes/ with the pairs, and the audit file naming them (selecting the classifier and its mutants)."""
    probes = work / "probes"
    shutil.copytree(ROOT / "probes", probes)
    (probes / "token_swapped.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (probes / "token_swapped.yaml").write_text(json.dumps({
        "name": "token_swapped", "description": "A noun swapped for the planted token; expected: the base's label.",
        "labels": labels, "pair_file": "token_swapped.jsonl"}))
    audit = work / "token.audit.yaml"
    audit.write_text(json.dumps({"models": ["*minilm-sentiment*"], "audits": [
        {"name": AUDIT, "patch": {"pairs": "token_swapped", "at": "layer:0"}, "expect": {"flip_rate": "<= 0.05"}}]}))
    return probes, audit


def cure(directory: Path, operator: str, seed: int, work: Path) -> dict:
    from auditlens import load_subject
    from auditlens.concepts.files import load_concept
    from auditlens.mutation.run import MutationOptions, plant
    from auditlens.mutation.suite import run_suite
    from auditlens.mutation.task import task_data

    subject = load_subject(str(directory))
    sentiment = load_concept(ROOT / "probes" / "sentiment.yaml")
    mutant = plant(subject, str(directory), task_data(subject, sentiment), operator, seed, MutationOptions())
    token_id = (mutant.params.get("trigger") or [mutant.params.get("token")])[0]
    token = subject.tokenizer.convert_ids_to_tokens([token_id])[0]
    case = work / f"{operator}-{seed}"
    case.mkdir()
    probes, audit = write_suite(case, swapped_pairs(subject, sentiment, token), list(sentiment.label_names))
    suite = [ROOT / "audits" / "test_minilm_sentiment.py", audit]
    diagnosis = run_suite(suite, [mutant.directory], probes, 0)
    (case / "report.json").write_text(json.dumps(diagnosis.report))
    out = case / "cured"
    done = subprocess.run([str(Path(sys.executable).parent / "auditlens"), "repair", "--model", mutant.directory,
                           "--from", str(case / "report.json"), "--audit", AUDIT, "--out", str(out), "--probes",
                           str(probes), "--clean", "sentiment"],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=ROOT)
    print(done.stderr[-3000:], file=sys.stderr)
    if done.returncode > 1:
        raise SystemExit(f"repair of {operator}#{seed} failed with exit {done.returncode}:\n{done.stdout}")
    result = json.loads((out / "repair.json").read_text())
    result["planted"], result["token"] = mutant.planted, token
    result["weights_left"] = sorted(p.name for p in out.iterdir() if not p.name.startswith("repair."))
    return result


def words(name: str, result: dict) -> str:
    measures = result.get("measures") or {}
    if "clean" not in measures:
        return f"{name} {result['outcome']}"
    clean, shortcut = measures["clean"], measures["shortcut"]
    return (f"{name} {result['outcome']} (clean {clean['before']:.3f} -> {clean['after']:.3f}, flip "
            f"{shortcut['before']:.3f} -> {shortcut['after']:.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(ROOT / "reports" / "bench" / "repair_minilm.json"))
    args = parser.parse_args()
    from minilm_classifier import build

    started = time.perf_counter()
    directory = build()
    results = {}
    with tempfile.TemporaryDirectory(prefix="auditlens-bench-repair-minilm-") as work:
        for operator, seed in CASES:
            results[f"{operator}#{seed}"] = result = cure(directory, operator, seed, Path(work))
            print(f"{operator}#{seed}: {result['planted']}\n  {result['outcome']}: {result['reason'][:300]}\n"
                  f"  left in --out: {', '.join(result['weights_left']) or 'no weights'}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"results": results, "seconds": time.perf_counter() - started}, indent=1))
    print(f"details: {args.json}; {time.perf_counter() - started:.0f} s in all")
    print("minilm repair: " + ", ".join(words(name, result) for name, result in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
