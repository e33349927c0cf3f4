"""Check a rebuild of a shipped organism by behaviour, not bytes: the same truth, accuracies within a
stated tolerance on the organism's own concept files, and the same verdict and outcomes from an audit
suite. Two builds of one recipe on two CPUs are different models; this says whether they are the same
organism."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelLoadError
from ..report.suite_process import run_pytest
from ..zoo.organism import Organism
from ..zoo.shipped import CONCEPTS_DIR, SOURCE_VARIABLE, read_metadata

ACCURACY_TOLERANCE = 0.05  # absolute: a rebuild's accuracy on each concept file may differ by this much


@dataclass
class Verification:
    """One organism's shipped build against its rebuild."""

    name: str
    truth: tuple[str | None, str | None]  # shipped, rebuilt
    accuracies: dict[str, tuple[float, float]]  # concept -> (shipped, rebuilt)
    tolerance: float
    verdicts: tuple[str, str] | None = None  # from the audit suite, where one ran
    outcome_changes: list[str] = field(default_factory=list)  # "nodeid: passed -> failed"

    @property
    def problems(self) -> list[str]:
        found = []
        if self.truth[0] != self.truth[1]:
            found.append(f"truth {self.truth[0]} shipped, {self.truth[1]} rebuilt")
        for concept, (shipped, rebuilt) in self.accuracies.items():
            if abs(shipped - rebuilt) > self.tolerance:
                found.append(f"accuracy on {concept} {shipped:.3f} shipped, {rebuilt:.3f} rebuilt "
                             f"(tolerance {self.tolerance})")
        if self.verdicts and self.verdicts[0] != self.verdicts[1]:
            found.append(f"verdict {self.verdicts[0]} shipped, {self.verdicts[1]} rebuilt")
        found += [f"outcome {change}" for change in self.outcome_changes]
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        figures = ", ".join(f"{c} {s:.3f}/{r:.3f}" for c, (s, r) in self.accuracies.items())
        verdict = f"; verdict {self.verdicts[0]}/{self.verdicts[1]}" if self.verdicts else ""
        state = "same organism" if self.ok else "DIFFERS"
        head = f"{self.name}: {state} (accuracy shipped/rebuilt: {figures}{verdict})"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


def accuracies(directory: Path, organism: Organism, concepts: Path) -> dict[str, float]:
    """Accuracy on the organism's in-distribution examples, and on the sources of each counterfactual
    concept against its expected labels, read from the concept files in ``concepts``."""
    from ..checks.behaviour_change import behaviour
    from ..concepts.files import load_concept
    from ..loading import load_subject

    subject = load_subject(str(directory), id=organism.name)
    roles = organism.datasets
    figures = {}
    if roles.get("in_distribution"):
        concept = load_concept(concepts / f"{roles['in_distribution']}.yaml")
        result = behaviour(subject, concept.inputs(subject), concept.label_tensor(),
                           answer_tokens=concept.answer_token_ids(subject))
        figures[concept.name] = float(result.correct.float().mean())
    for name in roles.get("counterfactual", ()):
        concept = load_concept(concepts / f"{name}.yaml")
        _, source, labels = concept.pair_inputs(subject)
        result = behaviour(subject, source, labels, answer_tokens=concept.answer_token_ids(subject))
        figures[f"{name} (sources)"] = float(result.correct.float().mean())
    return figures


def audit_outcomes(names: list[str], audits: Path, source: str) -> dict[str, dict]:
    """Run the audit suite on ``fixture:NAME`` for each name, loading the shipped builds or the
    rebuilds (``source``); each model's verdict and its audits' outcomes by node id."""
    args = [str(audits), "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            *[a for n in names for a in ("--model", f"fixture:{n}")]]
    done = run_pytest(args, cwd=audits.parent, env={SOURCE_VARIABLE: source})
    models = done.report(ModelLoadError, f"the audit suite {audits} did not complete on the {source} builds")["models"]
    return {m["id"].removeprefix("fixture:"): {"verdict": m["verdict"],
                                               "outcomes": {a["nodeid"]: a["outcome"] for a in m["audits"]}}
            for m in models}


def verify(pairs: list[tuple[Organism, Path, Path]], audits: Path | None,
           tolerance: float = ACCURACY_TOLERANCE) -> list[Verification]:
    """``pairs``: (organism, shipped directory, rebuilt directory). The accuracies use the concept files
    shipped with the organism, so both builds are judged on the same data."""
    results = []
    for organism, shipped, rebuilt in pairs:
        concepts = shipped / CONCEPTS_DIR
        before, after = accuracies(shipped, organism, concepts), accuracies(rebuilt, organism, concepts)
        results.append(Verification(
            name=organism.name, truth=(read_metadata(shipped).get("truth"), read_metadata(rebuilt).get("truth")),
            accuracies={k: (before[k], after[k]) for k in before}, tolerance=tolerance))
    if audits is not None and results:
        names = [r.name for r in results]
        shipped_runs, rebuilt_runs = audit_outcomes(names, audits, "shipped"), audit_outcomes(names, audits, "rebuild")
        for result in results:
            old, new = shipped_runs.get(result.name), rebuilt_runs.get(result.name)
            if old is None or new is None:
                result.outcome_changes.append("the audit suite has no audit for this organism")
                continue
            result.verdicts = (old["verdict"], new["verdict"])
            for nodeid in sorted(set(old["outcomes"]) | set(new["outcomes"])):
                a, b = old["outcomes"].get(nodeid, "absent"), new["outcomes"].get(nodeid, "absent")
                if a != b:
                    result.outcome_changes.append(f"{nodeid}: {a} shipped, {b} rebuilt")
    return results
