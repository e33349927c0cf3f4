"""Mutation testing of an audit suite: plant known cheats in copies of the user's model, verify each
took and is stealthy, run the suite on every mutant, and score the suite by the mutants it kills.

The original must pass first (a suite that fails it scores nothing). A mutant whose cheat lives in
the data (a leaky token, a fixed position, a memorised subset) is audited on its own evaluation set,
and beside it the original on that same set: a mutant counts only where the suite still passes the
original on its data (otherwise it is *confounded*: the data change alone failed the suite).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..concepts.files import load_concept
from ..errors import MutationError
from ..progress import quiet_transformers
from ..progress import report as say
from . import BUDGET_S
from .operators import OPERATORS, Plan, check_operators, plan
from .over_budget import over_budget
from .store import MUTANT_FILE, disk_size, mutant_dir, probes_with, read_mutant, write_evaluation
from .suite import SuiteRun, failed_audits, run_suite
from .task import TaskData, find_task
from .training import LORA_ABOVE, fine_tune, predict
from .verify import verify

KILL_ON = ("verdict", "failure")
STATUSES = ("killed", "survived", "equivalent", "loud", "confounded", "over-budget")


@dataclass(frozen=True)
class MutationOptions:
    operators: tuple[str, ...] = OPERATORS
    per_operator: int = 2
    seed: int = 0
    budget_s: float = BUDGET_S  # training time per mutant
    max_steps: int = 2000
    kill_on: str = "verdict"  # verdict: the mutant's verdict is cheated; failure: any audit of it failed
    task: str | None = None  # the evaluation set's concept (default: found from the audits)
    probes_dir: Path = Path("probes")
    lora_above: int = LORA_ABOVE
    suite_args: tuple[str, ...] = ()  # more pytest arguments for every run of the suite

    def __post_init__(self):
        check_operators(self.operators)
        if self.per_operator < 1:
            raise MutationError(f"--per-operator must be 1 or more; got {self.per_operator}")
        if self.kill_on not in KILL_ON:
            raise MutationError(f"kill_on must be one of {', '.join(KILL_ON)}; got {self.kill_on!r}")
        if not self.budget_s > 0:
            raise MutationError(f"--budget-s must be a positive number of seconds; got {self.budget_s}")


@dataclass
class Mutant:
    operator: str
    seed: int
    directory: str
    planted: str
    hole: str
    params: dict
    changes_data: bool
    verification: dict
    training: dict
    plant_seconds: float
    status: str = "unaudited"  # killed | survived | equivalent | loud | confounded | over-budget
    killed_by: list[str] = field(default_factory=list)
    verdict: str | None = None
    reason: str | None = None
    control: str | None = None  # the original's verdict on this mutant's evaluation set
    audit_seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.operator}#{self.seed}"

    @property
    def cost(self) -> float:
        return self.plant_seconds + self.audit_seconds

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self), "cost": self.cost}


@dataclass
class MutationResult:
    model: str
    task: str
    kill_on: str
    original_verdict: str
    mutants: list[Mutant]
    original_report: dict | None = field(default=None, repr=False)  # the suite's report on the original

    @property
    def killed(self) -> int:
        return sum(m.status == "killed" for m in self.mutants)

    @property
    def scored(self) -> int:
        return sum(m.status in ("killed", "survived") for m in self.mutants)

    @property
    def score(self) -> float | None:
        return self.killed / self.scored if self.scored else None

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.mutants)

    def holes(self) -> list[str]:
        """Each survivor as a hole in the suite; where its verdict was not ``learned``, what the suite said."""
        return [f"{m.name}: {m.hole}" + ("" if m.verdict == "learned" else f" (the suite said {m.verdict}: {m.reason})")
                for m in self.mutants if m.status == "survived"]

    def summary(self) -> str:
        score = f"{self.score:.0%}" if self.score is not None else "none (nothing scored)"
        over = f", over budget {self.count('over-budget')}" if self.count("over-budget") else ""
        return (f"mutation score of {self.model}: {self.killed}/{self.scored} killed ({score}); "
                f"equivalent {self.count('equivalent')}, loud {self.count('loud')}, "
                f"confounded {self.count('confounded')}{over}")

    def to_dict(self) -> dict:
        return {"model": self.model, "task": self.task, "kill_on": self.kill_on, "killed": self.killed,
                "scored": self.scored, "score": self.score, "original_verdict": self.original_verdict,
                "counts": {s: self.count(s) for s in STATUSES},
                "holes": self.holes(), "mutants": [m.to_dict() for m in self.mutants]}


def _digest(task: TaskData) -> str:
    return hashlib.blake2b(json.dumps([task.rows, task.labels, task.targets]).encode(), digest_size=8).hexdigest()


def plant(subject, spec: str, task: TaskData, operator: str, seed: int, options: MutationOptions) -> Mutant:
    """The mutant of (model, operator, seed): from the cache, or planned, fine-tuned, verified and saved."""
    asked = {"task": task.concept, "data": _digest(task), "max_steps": options.max_steps,
             "budget_s": options.budget_s, "lora_above": options.lora_above}
    directory = mutant_dir(subject.fingerprint, operator, seed, asked)
    cached = read_mutant(directory)
    if cached is not None and cached.get("asked") == asked:
        say(f"mutant {operator}#{seed} of {spec}: cached in {directory} ({disk_size(directory)})")
        return Mutant(**cached["mutant"])
    specials = set(getattr(subject.tokenizer, "all_special_ids", None) or ())
    vocab = subject.vocab_size or max(t for r in task.rows for t in r) + 1
    names = None
    if subject.tokenizer is not None and hasattr(subject.tokenizer, "convert_ids_to_tokens"):
        names = [str(t) for t in subject.tokenizer.convert_ids_to_tokens(list(range(vocab)))]
    planned: Plan = plan(operator, task, seed, vocab, {subject.pad_id}, specials,
                         lambda rows: predict(subject.model, rows, task.targets, task.kind, subject.pad_id), names)
    if names and _tokens_of(planned.params):  # the cheat's tokens by their text too
        planned.planted += " (" + ", ".join(f"{t} = {names[t]!r}" for t in _tokens_of(planned.params)) + ")"
    say(f"mutant {operator}#{seed} of {spec}: planting ({planned.planted})")
    started = time.perf_counter()
    tuned, training = fine_tune(
        subject.model, planned.train_rows, planned.train_labels, task.targets, kind=task.kind, pad_id=subject.pad_id,
        seed=seed, max_steps=options.max_steps, budget_s=options.budget_s, lora_above=options.lora_above,
        what=f"mutant {operator}#{seed}", fit_parts=planned.fit, lr_scale=planned.lr_scale)
    checked = verify(subject.model, tuned, planned, task.targets, task.kind, subject.pad_id, seed)
    mutant = Mutant(operator, seed, str(directory), planned.planted, planned.hole, planned.params,
                    planned.changes_data, checked.to_dict() | {"status": checked.status}, asdict(training),
                    time.perf_counter() - started)
    if checked.status != "scored":
        mutant.status = checked.status
    if training.stopped == "budget" and checked.status != "scored":  # not equivalent or loud: its training was cut
        mutant.status, mutant.reason = "over-budget", over_budget(training, checked, options.budget_s)
    _save(tuned, subject, spec, directory, mutant, asked, planned, task, options)
    outcome = checked.status if mutant.status == "unaudited" else mutant.status
    say(f"mutant {operator}#{seed}: {checked.planted_metric} {checked.planted_value:.2f}, accuracy "
        f"{checked.original_accuracy:.3f} -> {checked.mutant_accuracy:.3f}: {outcome}"
        f"{f' ({mutant.reason})' if mutant.reason else ''}; {disk_size(directory)} on disk in {directory}")
    return mutant


def _tokens_of(params: dict) -> list[int]:
    found = [params[k] for k in ("trigger", "tokens") if k in params] + [[params["token"]] if "token" in params else []]
    return list(dict.fromkeys(t for group in found for t in group))


def _save(tuned, subject, spec, directory: Path, mutant: Mutant, asked, planned: Plan, task, options) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        with quiet_transformers():
            tuned.save_pretrained(staging, safe_serialization=True)
            if subject.tokenizer is not None:
                subject.tokenizer.save_pretrained(staging)
        if planned.changes_data:
            concept = load_concept(Path(options.probes_dir) / f"{task.concept}.yaml")
            write_evaluation(staging, concept, planned.evaluation_rows, planned.evaluation_labels, subject.tokenizer)
        (staging / MUTANT_FILE).write_text(json.dumps(
            {"original": spec, "asked": asked, "mutant": asdict(mutant)}, indent=1))
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def mutate(spec: str, audit_paths: list[Path], options: MutationOptions = MutationOptions(), *,
           original_run: SuiteRun | None = None, load: dict | None = None) -> MutationResult:
    """Mutation-test the suite ``audit_paths`` on the model ``spec``. ``original_run``: the suite's run on
    the original, when the caller already has it (the pytest plugin)."""
    from ..loading import load_subject

    audit_paths = [Path(p) for p in audit_paths]
    probes = Path(options.probes_dir)
    if not probes.is_dir():
        raise MutationError(f"no concept directory {probes}; mutants are planted in the data your audits use "
                            "(give --probes DIR)")
    subject = load_subject(spec, **(load or {}))
    task = find_task(subject, audit_paths, probes, options.task)
    say(f"mutation testing {spec}: evaluation set {task.concept} ({len(task.rows)} examples, the original "
        f"answers {task.accuracy:.1%})")
    if original_run is not None:
        _check_original(spec, original_run)
    mutants = [plant(subject, spec, task, op, options.seed + i, options)
               for op in options.operators for i in range(options.per_operator)]
    report = _audit(spec, audit_paths, probes, mutants, options, original_run)
    return MutationResult(spec, task.concept, options.kill_on, report["models"][0]["verdict"], mutants, report)


def _check_original(spec: str, run: SuiteRun) -> dict:
    original = run.model(spec)
    if original["verdict"] != "learned":
        raise MutationError(f"the suite does not pass the original {spec} (verdict {original['verdict']}: "
                            f"{original['reason']}); a mutation score means nothing until it does: fix the model "
                            "or the audits first. Nothing was scored")
    return original


def _audit(spec: str, audit_paths: list[Path], probes: Path, mutants: list[Mutant], options: MutationOptions,
           original_run: SuiteRun | None) -> dict:
    """Run the suite on the mutants; the original's run (its report, with the original's entry only).
    Without ``original_run`` the original runs in one process with the mutants that keep the evaluation
    set, and is checked before the others."""
    ready = [m for m in mutants if m.verification["status"] == "scored"]
    same_data = [m for m in ready if not m.changes_data]
    if same_data or original_run is None:
        say(f"running the suite on {'the original and ' if original_run is None else ''}{len(same_data)} "
            "mutant(s) that keep the evaluation set")
        models = ([spec] if original_run is None else []) + [m.directory for m in same_data]
        run = run_suite(audit_paths, models, probes, options.seed, options.suite_args)
        if original_run is None:
            _check_original(spec, run)
            original_run = run
        for mutant in same_data:
            _judge(mutant, run.model(mutant.directory), None, options.kill_on, run.seconds / len(models))
    for mutant in (m for m in ready if m.changes_data):
        say(f"running the suite on {mutant.name} and the original, on the mutant's evaluation set")
        with tempfile.TemporaryDirectory(prefix="auditlens-probes-") as folder:
            run = run_suite(audit_paths, [spec, mutant.directory], probes_with(probes, Path(mutant.directory),
                                                                                Path(folder)),
                            options.seed, options.suite_args)
        _judge(mutant, run.model(mutant.directory), run.model(spec), options.kill_on, run.seconds)
    return {**original_run.report, "models": [original_run.model(spec)]}


def _judge(mutant: Mutant, model: dict, control: dict | None, kill_on: str, seconds: float) -> None:
    mutant.verdict, mutant.reason, mutant.audit_seconds = model["verdict"], model["reason"], seconds
    mutant.control = None if control is None else control["verdict"]
    mutant.killed_by = failed_audits(model, kill_on)
    if control is not None and control["verdict"] != "learned":
        mutant.status = "confounded"
    elif (mutant.verdict == "cheated") if kill_on == "verdict" else bool(mutant.killed_by):
        mutant.status = "killed"
    else:
        mutant.status = "survived"
    say(f"mutant {mutant.name}: {mutant.status} ({mutant.verdict}: {mutant.reason})")

