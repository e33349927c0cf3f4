"""The hooks of a running session, as methods of one object registered with pytest: each hands over
to the AuditSession it holds (so no hook needs a module-level reference to the running config)."""

from __future__ import annotations

import json

import pytest

from ..report.mutation import MUTATION_GATE_EXIT
from ..report.record import AuditRecord
from ..report.writers import REPORT_NOT_WRITTEN_EXIT
from ..results import recording
from .audit_errors import library_error, missing_concept
from .interruption import why_interrupted
from .model_progress import ModelProgress
from .nodeids import item_model, model_of, plain_nodeid
from .options import ModelNotLoaded
from .records import metric_comparison, record_for
from .summary import write_summary

RESULTS_KEY = pytest.StashKey[list]()
PASSES_KEY = pytest.StashKey[tuple]()
RECORD_PROPERTY = "auditlens_record"
UNLOADABLE_PROPERTY = "auditlens_unloadable"  # the model an audit could not load (a usage error of the run)


class SessionHooks:
    def __init__(self, session, config):
        self.session, self.config = session, config
        self.outcome = None  # what session.finish() did
        self.leaks: dict[str, int] = {}
        self.unloadable: set[str] = set()  # models that could not be loaded: the run exits 4
        self.interrupt: BaseException | None = None  # the KeyboardInterrupt that ended the run, if one did
        self.previous_sigterm = None  # the SIGTERM handler to put back at the end
        self.progress = ModelProgress(session)  # a line per model as its audits end

    def pytest_collection_finish(self, session):
        """What this run means to run (without xdist; with it, the workers' collections say)."""
        if not hasattr(self.config, "workerinput"):
            self.session.plan({plain_nodeid(i.nodeid): m for i in session.items if (m := item_model(i)) is not None})

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        models = self.session.options.models
        self.session.plan({n: m for i in ids if (m := model_of(n := plain_nodeid(i), models)) is not None})

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        before = self.session.pass_counts()
        try:
            with recording() as results:
                item.stash[RESULTS_KEY] = results
                return (yield)
        finally:
            item.stash[PASSES_KEY] = self.session.passes_since(before)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        results = item.stash.get(RESULTS_KEY, [])
        shown = self._shown_instead(item, call, report)
        if call.excinfo is not None and call.excinfo.errisinstance(ModelNotLoaded):
            report.user_properties.append((UNLOADABLE_PROPERTY, item_model(item)))
        if call.when == "call" or (call.when == "setup" and report.outcome != "passed"):
            for result in results:  # junitxml writes the item's properties with its teardown report
                item.user_properties.append((f"auditlens.{result.check}.{result.site}", json.dumps(result.metrics())))
            if report.failed and results and not getattr(item, "explains_itself", False):
                report.sections.append(("auditlens evidence", "\n\n".join(r.explain() for r in results)))
            record = record_for(item, report, call, results, self.session, item.stash.get(PASSES_KEY, (0, [], [])),
                                shown if call.when == "setup" else None)
            if record is not None:  # carried on the report, so that xdist brings it to the controller
                report.user_properties.append((RECORD_PROPERTY, json.dumps(record.to_dict())))
        return report

    def _shown_instead(self, item, call, report) -> str | None:
        """An audit's library error becomes an ERROR of the audit with its message at the audit's line; a
        fixture named like a concept, the closest concepts (see audit_errors). The text shown, or None."""
        if item_model(item) is None or call.excinfo is None:
            return None
        error = library_error(item, call)
        if error is not None:
            report.auditlens_error = True  # pytest_report_teststatus: ERROR, not FAILED (kept across xdist)
            if isinstance(item, pytest.Function) and not self.config.getoption("fulltrace", False):
                report.longrepr = error  # a YAML item's repr_failure says it already, with its entry
            return error
        probes = self.session.options.probes_dir
        probes = probes.relative_to(self.config.rootpath) if probes.is_relative_to(self.config.rootpath) else probes
        missing = missing_concept(call, [p.stem for p in self.session.concept_paths()], probes)
        if missing is not None:
            report.longrepr = missing
        return missing

    def pytest_report_teststatus(self, report, config):
        if getattr(report, "auditlens_error", False):
            return "error", "E", "ERROR"
        return None

    def pytest_runtest_logreport(self, report):
        self.unloadable.update(value for name, value in report.user_properties if name == UNLOADABLE_PROPERTY)
        for name, value in report.user_properties:
            if name == RECORD_PROPERTY:
                self.session.add_record(record := json.loads(value))
                self.progress.audit_ended(record)
                return
        if report.failed and "crashed while running" in str(report.longrepr):
            # an xdist worker died mid-audit: keep the audit in the report, marked lost
            model = model_of(plain_nodeid(report.nodeid), self.session.options.models)
            if model is not None:
                lost = AuditRecord.lost(
                    nodeid=plain_nodeid(report.nodeid), file=report.location[0], model=model, when=report.when,
                    duration=report.duration, message=str(report.longrepr).strip().splitlines()[0]).to_dict()
                self.session.add_record(lost)
                self.progress.audit_ended(lost)

    def pytest_assertrepr_compare(self, config, op, left, right):
        return metric_comparison(op, left, right)

    def pytest_keyboard_interrupt(self, excinfo):
        self.interrupt = excinfo.value

    def pytest_sessionfinish(self, session, exitstatus):
        self.leaks = self.session.leaked_hooks()
        if self.leaks:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if hasattr(self.config, "workerinput"):  # xdist workers send their records to the controller
            return
        self.outcome = self.session.finish(interrupted=why_interrupted(session, exitstatus, self.interrupt))
        if self.outcome.write_error:
            session.exitstatus = REPORT_NOT_WRITTEN_EXIT
        elif self.outcome.baseline_error:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        elif self.outcome.gate_status is not None and not self.leaks and session.exitstatus in (0, 1):
            session.exitstatus = self.outcome.gate_status  # known failures pass the gate; regressions: 6
        if self.outcome.mutation_failed and session.exitstatus == 0:
            session.exitstatus = MUTATION_GATE_EXIT
        if self.unloadable and session.exitstatus in (0, 1):  # a model that never loaded is no finding
            session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def pytest_terminal_summary(self, terminalreporter):
        write_summary(terminalreporter, self.leaks, self.outcome)
