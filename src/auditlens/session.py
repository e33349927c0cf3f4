"""An audit session, without pytest: the options read once, the models and concepts loaded once, the
records of the audits that ran, the seed and activation store every check uses, and ``finish()``,
which builds the report, compares it with a baseline and writes it.

The pytest plugin makes one per run and hands every hook to it; YAML items, the xdist scheduler and
the CLI read it. A script can drive one too::

    with AuditSession(SessionOptions(models=("fixture:count-learned",), seed=3)) as session:
        subject = session.subject("fixture:count-learned")
        result = probe(subject, session.concept("more_a_than_b"), at="layer:1")
        session.record("the count is represented", "fixture:count-learned", result, expect={"accuracy": ">= 0.9"})
    outcome = session.finish()  # report.json, report.html, summary.md in options.report_dir
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .concepts.files import concept_files, load_concept
from .errors import AuditlensError, ModelLoadError
from .loading import load_subject
from .model_spec import check_local_path
from .progress import restore_sink, use_sink
from .settings import restore_defaults, use_defaults
from .sites.hooks import live_hook_count
from .storage import ActivationStore


@dataclass(frozen=True)
class SessionOptions:
    """Every option of a run (the plugin fills it from the command line and the ini keys)."""

    models: tuple[str, ...] = ()
    report_dir: Path = Path("reports")
    probes_dir: Path = Path("probes")
    seed: int = 0
    device: str = "cpu"
    dtype: str | None = None
    device_map: str | dict | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False
    cache_dir: str | None = None
    baseline: str | None = None
    fail_on_regression: bool = False
    regression_tolerance: float = 0.02

    def loading(self) -> dict:
        """How the models were loaded, as the report records it (the map placed every part)."""
        return {"device": None if self.device_map is not None else self.device, "dtype": self.dtype,
                "device_map": self.device_map}


@dataclass
class SessionOutcome:
    """What ``finish()`` did: the report it wrote (None when no audit ran), where, and what went wrong."""

    report: dict | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    baseline_error: str | None = None
    write_error: str | None = None  # the report could not be written (the previous one is left as it was)
    gate_status: int | None = None  # with fail_on_regression and a baseline: the gate's exit status
    mutation_failed: bool = False  # the mutation score is below the minimum asked for

    @property
    def regressions(self) -> list[str]:
        return (self.report or {}).get("comparison", {}).get("regressions", [])


class AuditSession:
    """One run of audits. Use as a context manager (or ``start()`` / ``close()``) so that the seed and
    the store it sets are the defaults of every check while it runs, and restored after."""

    def __init__(self, options: SessionOptions, progress=None):
        """``progress(message, detail)`` shows long work as it happens (see ``auditlens.progress``)."""
        self.options = options
        self.progress = progress
        self.subjects: dict = {}  # model id -> Subject
        self.load_errors: dict = {}  # model id -> the ModelLoadError its one try to load it raised
        for model in options.models:  # a mistyped local directory stops the run before any audit or hub lookup
            check_local_path(model)
        self.concepts: dict = {}  # concept name -> Concept
        self.records: list[dict] = []  # AuditRecord.to_dict() of every audit, in the order they ended
        self.planned: dict[str, str] = {}  # node id -> model, of every audit the run meant to run
        try:
            self.store = ActivationStore(directory=options.cache_dir) if options.cache_dir else None
        except OSError as exc:
            why = "it is a file" if Path(options.cache_dir).is_file() else (exc.strerror or str(exc))
            raise AuditlensError(f"the activation cache directory {options.cache_dir} cannot be used: {why}; "
                                 "give a directory (it is created if missing)") from None
        report_dir = Path(options.report_dir)
        if report_dir.exists() and not report_dir.is_dir():  # found now, not after every audit has run
            raise AuditlensError(f"the report directory {report_dir} is a file; give a directory "
                                 "(--audit-report DIR, created if missing)")
        self.baseline: dict | None = None  # read now: a missing or broken baseline stops the run before any audit
        if options.baseline:
            from .report import read_report

            try:
                self.baseline = read_report(options.baseline)
            except AuditlensError as exc:
                raise AuditlensError(f"--audit-baseline {options.baseline}: {exc}; give a report.json (or its "
                                     "directory) written by an earlier run") from None
        self._recorded_counts: dict = {}  # pass counts at a script's last record()
        self.mutation = None  # set by the plugin with --audit-mutants
        self.shard = None  # with --audit-shard: (records) -> the report's shard section (see auditlens.sharding)
        self.started = time.time()
        self._defaults = None
        self._progress = None

    def start(self) -> AuditSession:
        self.started = time.time()
        self._defaults = use_defaults(seed=self.options.seed, store=self.store)
        self._progress = use_sink(self.progress) if self.progress is not None else None
        return self

    def close(self) -> None:
        if self._defaults is not None:
            restore_defaults(self._defaults)
            self._defaults = None
        if self._progress is not None:
            restore_sink(self._progress)
            self._progress = None

    def __enter__(self) -> AuditSession:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # models and concepts, loaded once
    def build_fixtures(self) -> list[str]:
        """Train, in parallel processes, the ``fixture:`` models of this run that are neither shipped nor
        cached (otherwise each would train alone on first use, one after another); the names trained."""
        from .progress import report
        from .zoo.registry import get, needs_training
        from .zoo_tools.build_pool import build_missing, default_workers

        names = [m.removeprefix("fixture:") for m in self.options.models if m.startswith("fixture:")]
        try:
            missing = [n for n in names if needs_training(get(n))]
        except AuditlensError:
            return []  # an unknown fixture: loading it names the error, with its audits
        if missing:
            report(f"training {len(missing)} fixtures not shipped in fixtures/, {min(len(missing), default_workers())} "
                   f"at a time: {', '.join(missing)}")
            build_missing(missing)
        return missing

    def subject(self, model: str):
        """The Subject for ``model``, loaded on first use; ModelLoadError says why it cannot be. A model
        that failed to load is not tried again: its error is raised for every later audit (a hub id
        that fails can cost minutes of network retries each time)."""
        if model in self.load_errors:
            raise ModelLoadError(str(self.load_errors[model])) from None
        if model not in self.subjects:
            o = self.options
            try:
                self.subjects[model] = load_subject(model, device=o.device, dtype=o.dtype, device_map=o.device_map,
                                                    trust_remote_code=o.trust_remote_code,
                                                    allow_pickle=o.allow_pickle)
            except ModelLoadError as exc:
                self.load_errors[model] = exc
                raise
        return self.subjects[model]

    def concept_paths(self) -> list[Path]:
        return concept_files(self.options.probes_dir)

    def concept(self, name: str):
        """The concept file ``name`` of the probes directory, loaded on first use (ConceptError if not)."""
        if name not in self.concepts:
            self.concepts[name] = load_concept(self._concept_path(name))
        return self.concepts[name]

    def _concept_path(self, name: str) -> Path:
        directory = self.options.probes_dir
        for suffix in (".yaml", ".yml"):
            if (directory / f"{name}{suffix}").is_file():
                return directory / f"{name}{suffix}"
        return directory / f"{name}.yaml"  # load_concept names it in its error

    # forward-pass accounting per audit
    def pass_counts(self) -> dict[str, tuple[int, int, int]]:
        """Per loaded model: forward passes executed so far, how long its log of needs is, and of repeats."""
        return {model: (s.forward_passes, len(s.needs), len(s.repeats)) for model, s in self.subjects.items()}

    def passes_since(self, counts: dict[str, tuple[int, int, int]]) -> tuple[int, list[str], list[dict]]:
        """Forward passes executed since ``counts`` was taken, the needs logged since (distinct), and the
        passes repeated since (see ``Subject.repeats``)."""
        executed, needs, repeats = 0, [], []
        for model, subject in self.subjects.items():
            passes, logged, repeated = counts.get(model, (0, 0, 0))
            executed += subject.forward_passes - passes
            needs += subject.needs[logged:]
            repeats += subject.repeats[repeated:]
        return executed, list(dict.fromkeys(needs)), repeats

    def plan(self, audits: dict[str, str]) -> None:
        """The audits (node id -> model) this run means to run: those that never end are listed as not run."""
        self.planned.update(audits)

    def record(self, name: str, model: str, *results, expect: dict[str, str] | None = None) -> list[str]:
        """Record an audit a script ran: ``results`` (check results of ``model``), judged by ``expect`` (on
        the last result: metric -> condition, as in YAML: ``">= 0.9"``, ``"between 0.4 and 0.6"``). The
        audit passes when every condition holds; returns the text of each one missed. An audit with no
        condition has nothing it could fail on, so it needs one."""
        from .declarative.conditions import judge, parse_condition
        from .report.record import AuditRecord
        from .report.tensors import recorded_results

        if not results or not expect:
            raise AuditlensError(f"audit {name!r}: give the check results and expect={{metric: condition}}, "
                                 "e.g. expect={'accuracy': '>= 0.9'}; an audit without a condition cannot fail")
        judged = results[-1]
        unknown = [metric for metric in expect if not hasattr(judged, metric)]
        if unknown:
            raise AuditlensError(f"audit {name!r}: a {judged.check} result has no metric {unknown[0]!r}; "
                                 f"it has {', '.join(judged.metrics())}")
        missed = judge(judged, {metric: parse_condition(text) for metric, text in expect.items()})
        subject, nodeid = self.subjects.get(model), f"script::{name}[{model}]"
        passes, needs, repeats = self.passes_since(self._recorded_counts)  # since the script's last record
        self._recorded_counts = self.pass_counts()
        self.add_record(AuditRecord(
            nodeid=nodeid, name=name, file=None, line=None, model=model,
            fingerprint=subject.fingerprint if subject else None,
            truth=subject.metadata.get("truth") if subject else None,
            origin=subject.metadata.get("origin") if subject else None, outcome="failed" if missed else "passed",
            kind="assertion" if missed else None, when="call", duration=0.0,
            needs=tuple(needs), forward_passes=passes, repeats=tuple(repeats),
            results=recorded_results(results, self.options.report_dir, nodeid),  # tensors: beside the report
            message=missed[0] if missed else None).to_dict())
        return missed

    def add_record(self, record: dict) -> None:
        """Keep an audit's record (``AuditRecord(...).to_dict()``: see ``auditlens.report.record``; a script
        calls ``record`` instead); one per audit. A later record replaces an earlier one (the audit ended
        again), except that a ``lost`` one never replaces a finished one: a worker that dies after an
        audit's call, before its teardown, does not undo what the audit found."""
        for index, earlier in enumerate(self.records):
            if earlier["nodeid"] == record["nodeid"]:
                if record["outcome"] != "lost" or earlier["outcome"] == "lost":
                    self.records[index] = record
                return
        self.records.append(record)

    def leaked_hooks(self) -> dict[str, int]:
        """Hooks of ours still on a model: after the session, every later result would be suspect."""
        counts = {model: live_hook_count(s.model) for model, s in self.subjects.items()}
        return {model: count for model, count in counts.items() if count}

    def previous_seconds(self) -> dict[str, float]:
        """Seconds per model in the report directory's previous report: a scheduling hint only (none, or
        an unreadable one, gives {})."""
        from .report import read_report

        path = self.options.report_dir / "report.json"
        try:
            report = read_report(path) if path.is_file() else None
        except AuditlensError:
            return {}
        if report is None:
            return {}
        return {m["id"]: sum(a.get("duration") or 0.0 for a in m["audits"]) for m in report["models"]}

    def finish(self, interrupted: str | None = None) -> SessionOutcome:
        """Build the report from the records, compare it with the baseline if there is one, write it.
        ``interrupted`` says why the run stopped before its end (Ctrl-C, SIGTERM, --maxfail): then no
        model gets a verdict, and the audits that did not run are listed."""
        if not self.records and not (interrupted and self.planned) and self.shard is None:  # a shard: even empty
            return SessionOutcome()
        from .report import build_report, compare_reports, write_report
        from .report.compare import gate_status
        from .report.model import run_metadata
        from .report.writers import ReportWriteError

        o = self.options
        run = run_metadata(o.seed, self.started, time.time() - self.started, o.loading())
        run["interrupted"] = interrupted
        report = build_report(self.records, run, order=o.models, planned=self.planned)
        if self.shard is not None:
            report["shard"] = self.shard(self.records)
        outcome = SessionOutcome(report=report)
        if self.mutation is not None:  # (report) -> its mutation section; see auditlens.mutation.in_session
            report["mutation"] = self.mutation(report)
            outcome.mutation_failed = report["mutation"].get("passed") is False
        if self.baseline is not None:
            try:
                report["comparison"] = compare_reports(self.baseline, report, o.regression_tolerance)
            except (AuditlensError, ValueError) as exc:
                outcome.baseline_error = str(exc)
            else:
                if o.fail_on_regression:
                    outcome.gate_status = gate_status(report["comparison"], report)
        try:
            outcome.paths = write_report(report, o.report_dir)
        except ReportWriteError as exc:
            outcome.write_error = str(exc)
        return outcome
