"""pytest items for ``*.audit.yaml`` files: one item per entry and model, beside the Python audits."""

from __future__ import annotations

import pytest

from ..declarative import AuditFileError, load_audit_file
from ..errors import AuditlensError
from .options import concept_for, session_of, subject_for
from .selection import selects


class AuditExpectationsMissed(AssertionError):
    """An entry's expectations were not met (an assertion about the model, for the verdict)."""

    def __str__(self) -> str:
        return "; ".join(self.args[0])


class AuditFile(pytest.File):
    def collect(self):
        session = session_of(self.config)
        concepts = {p.stem for p in session.concept_paths()}
        run_models = session.options.models
        for entry in load_audit_file(self.path, concepts):
            patterns = entry.models
            models = [m for m in run_models if patterns is None or selects(m, patterns)]
            if not models:
                reason = (f"no model in this run matches models {list(patterns)}" if patterns and run_models
                          else None)
                models = [None] if reason is None else []
                if reason:
                    item = AuditItem.from_parent(self, name=f"{entry.id}[no-matching-model]", entry=entry, model=None)
                    item.add_marker(pytest.mark.skip(reason=reason))
                    yield item
            for model in models:
                item = AuditItem.from_parent(self, name=f"{entry.id}[{model or 'no-model'}]", entry=entry, model=model)
                for mark in entry.marks:
                    item.add_marker(_mark(mark))
                yield item

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(AuditFileError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def _mark(mark):
    if mark == "skip":
        return pytest.mark.skip(reason="skipped in the audit file")
    if mark == "xfail":
        return pytest.mark.xfail(reason="expected to fail (audit file)")
    (kind, reason), = mark.items()
    return getattr(pytest.mark, kind)(reason=reason)


class AuditItem(pytest.Item):
    explains_itself = True  # its failure report already holds the evidence

    def __init__(self, *, entry, model, **kwargs):
        super().__init__(**kwargs)
        self.entry, self.model = entry, model

    def runtest(self):
        subject = subject_for(self.config, self.model)
        result, missed = self.entry.run(subject, lambda name: concept_for(self.config, name))
        if missed:
            raise AuditExpectationsMissed(missed, result)

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(AuditExpectationsMissed):
            missed, result = excinfo.value.args
            expected = len(self.entry.expect)
            lines = [f"{self.entry.name} on {self.model}: {len(missed)} of {expected} expectations missed"]
            lines += [f"  {text}" for text in missed]
            return "\n".join(lines + ["", result.explain()])
        if excinfo.errisinstance(pytest.fail.Exception):
            return str(excinfo.value)
        if excinfo.errisinstance(AuditlensError):
            return f"{self.entry.path}:{self.entry.line}: entry {self.entry.name!r}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.entry.line - 1, f"{self.entry.name} [{self.model}]"
