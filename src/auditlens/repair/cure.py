"""One repair, end to end: the shortcut's pairs and the clean data, the search for the smallest edit, the
export, the re-audit by the same suite, the measures before and after, and the gate. Returns the report's
fields (``outcome`` accepted / rejected / refused, ``reason``, the measures, audits and trials)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from ..concepts.files import load_concept
from ..errors import CheckError
from ..report.suite_process import model_entry, run_audits
from .evidence import FAILED, Shortcut, audit_files
from .options import RepairOptions
from .prove import BeforeAfter, accuracy_change, audit_outcomes, cross_entropy, exported_gap, gate
from .search import CleanData, as_subject, search, why_not_cured
from .sources import from_erase, from_patch
from .writeup import REPAIR_FILE, REPORT_FILES


def concept_in(probes: Path, name: str, what: str):
    path = probes / f"{name}.yaml"
    if not path.is_file():
        raise CheckError(f"{what} {name!r}: no concept file {path}; give --probes the directory the audits read")
    return load_concept(path)


def clean_data(subject, pairs, probes: Path, name: str | None):
    """The labelled inputs the task is scored on, its name, and its concept (None for the pairs' bases):
    ``name``, else the organism's in-distribution concept, else the bases of the pairs (with their labels)."""
    from ..checks.behaviour_change import behaviour

    name = name or subject.metadata.get("in_distribution")
    concept = None
    if name:
        concept = concept_in(probes, name, "--clean")
        if not concept.examples:
            raise CheckError(f"--clean {name!r} has no labelled examples (only pairs); give a labelled concept")
        inputs, labels, answers, label = concept.inputs(subject), concept.label_tensor(), \
            concept.answer_token_ids(subject), name
    elif pairs is not None and pairs.pairs:
        inputs, _, labels = pairs.pair_inputs(subject)
        answers, label = pairs.answer_token_ids(subject), f"the bases of {pairs.name}"
    else:
        raise CheckError("no clean data to score the task on: give --clean CONCEPT (a labelled concept of the task)")
    correct = behaviour(subject, inputs, labels, answer_tokens=answers).correct
    return CleanData(inputs, labels, answers, correct), label, concept


def cure(subject, shortcut: Shortcut, record: dict, options: RepairOptions, say) -> dict:
    """Search, export and re-audit. Every candidate that passes the search's checks is exported to
    ``options.out`` and re-audited by the suite the report came from; one the suite fails is discarded and the
    search goes on. A repair that is not accepted leaves no weights in ``options.out``, only its report."""
    probes, out = options.probes, options.out
    suite_files = audit_files(record)
    missing = [f for f in suite_files if not Path(f).exists()]
    if missing:  # checked first: the re-audit runs them, minutes later
        raise CheckError(f"the report's audits come from {', '.join(missing)}, not found from {Path.cwd()}: run "
                         "auditlens repair from the directory the audit run started in")
    named = concept_in(probes, shortcut.concept, f"the audit's {'pairs' if shortcut.check == 'patch' else 'concept'}")
    pairs = named if shortcut.check == "patch" else None
    clean, clean_name, clean_concept = clean_data(subject, pairs, probes, options.clean)
    if pairs is not None:
        source = from_patch(subject, pairs, shortcut, options.seed)
    else:
        source = from_erase(subject, named, clean_concept, shortcut, options.seed)
    audits: list = []

    def reaudit(edits, candidate) -> str:
        if out.exists():  # the last candidate's export: repair made this directory (--out must be new)
            shutil.rmtree(out)
        candidate.save_pretrained(out, subject.tokenizer)
        (out / REPAIR_FILE).write_text(json.dumps({"original": options.model, "outcome": "re-auditing"}),
                                       encoding="utf-8")
        say(f"re-auditing {out} with {', '.join(suite_files)}")
        report = run_audits(suite_files, [str(out)], probes, options.seed, error=CheckError)
        audits[:] = audit_outcomes(record, model_entry(report, str(out), CheckError))
        return "; ".join(a.name for a in audits if a.after in (*FAILED, "not run"))

    found = search(subject, source, shortcut, clean, options.max_loss, options.seed, say, reaudit)
    result = {"shortcut": asdict(shortcut), "clean_data": clean_name, "carriers": found.carriers,
              "unholdable": found.unholdable,
              "trials": [asdict(t) for t in found.trials], "max_loss": options.max_loss}
    if found.repaired is None:
        discard_weights(out)
        return {**result, "outcome": "refused", "reason": why_not_cured(found, clean, shortcut, options.max_loss)}
    result["edits"] = [f"{f.edit}: wrote {', '.join(f.parameters)}" + (f" ({f.note})" if f.note else "")
                       for f in found.repaired.folded]
    repaired = as_subject(subject, found.repaired.model, "repaired")
    kept = found.trials[-1]  # its clean-accuracy change is the one the keep rested on, and the gate reads
    measures = {"shortcut": BeforeAfter(shortcut.value, kept.metric),
                "clean": BeforeAfter(float(clean.correct.mean()), kept.clean_accuracy, kept.change_ci)}
    if pairs is not None:
        _, pair_source, pair_labels = pairs.pair_inputs(subject)
        measures["reliance"] = accuracy_change(subject, repaired, pair_source, pair_labels,
                                               pairs.answer_token_ids(subject), options.seed)
    if subject.kind == "causal-lm":
        texts = _reference_texts(options.reference, subject, clean.inputs)
        measures["cross_entropy"] = _ce(subject, repaired, texts)
    gap = exported_gap(subject, found.edits, out, clean.inputs)
    accepted, reason = gate(audits, measures["clean"], options.max_loss)
    if not accepted:
        discard_weights(out)
    return {**result, "outcome": "accepted" if accepted else "rejected", "reason": reason,
            "measures": {k: v.to_dict() for k, v in measures.items()}, "exported_equals_hooked": gap,
            "audits": [asdict(a) for a in audits]}


def discard_weights(out: Path) -> None:
    """Remove everything but the repair's report from ``out`` (a directory repair made): a repair that is not
    accepted leaves no model any loader could pick up."""
    if not out.is_dir():
        return
    for path in out.iterdir():
        if path.name in REPORT_FILES:
            continue
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _ce(original, repaired, texts):
    return BeforeAfter(cross_entropy(original, texts), cross_entropy(repaired, texts))


def _reference_texts(path: Path | None, subject, clean_inputs):
    """The texts of ``path`` (one per line), or by default the clean inputs themselves."""
    if path is None:
        return clean_inputs
    try:
        texts = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as error:
        raise CheckError(f"--reference {path}: cannot read it ({error})") from None
    if not texts:
        raise CheckError(f"--reference {path}: no text in it (one text per line)")
    return texts
