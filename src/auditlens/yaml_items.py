"""pytest items for ``*.audit.yaml`` files: one item per entry and model, beside the Python audits."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from .yaml_source import SpecError

SUFFIXES = (".audit.yaml", ".audit.yml")


class AuditExpectationsMissed(AssertionError):
    """An entry's expectations were not met (an assertion about the model, for the verdict)."""

    def __str__(self) -> str:
        return "; ".join(self.args[0])


class AuditFile(pytest.File):
    def collect(self):
        from .plugin import concept_directory, model_specs
        from .spec import load_audit_file

        concepts = {p.stem for p in _concept_paths(concept_directory(self.config))}
        specs = load_audit_file(self.path, concepts)
        run_models = model_specs(self.config)
        for spec in specs:
            patterns = spec.models
            models = [m for m in run_models if patterns is None or any(fnmatch.fnmatchcase(m, p) for p in patterns)]
            if not models:
                reason = (f"no model in this run matches models {list(patterns)}" if patterns and run_models
                          else None)
                models = [None] if reason is None else []
                if reason:
                    item = AuditItem.from_parent(self, name=f"{spec.id}[no-matching-model]", spec=spec, model=None)
                    item.add_marker(pytest.mark.skip(reason=reason))
                    yield item
            for model in models:
                item = AuditItem.from_parent(self, name=f"{spec.id}[{model or 'no-model'}]", spec=spec, model=model)
                for mark in spec.marks:
                    item.add_marker(_mark(mark))
                yield item

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(SpecError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def _concept_paths(directory: Path):
    from .data import concept_files

    return concept_files(directory)


def _mark(mark):
    if mark == "skip":
        return pytest.mark.skip(reason="skipped in the audit file")
    if mark == "xfail":
        return pytest.mark.xfail(reason="expected to fail (audit file)")
    (kind, reason), = mark.items()
    return getattr(pytest.mark, kind)(reason=reason)


class AuditItem(pytest.Item):
    explains_itself = True  # its failure report already holds the evidence

    def __init__(self, *, spec, model, **kwargs):
        super().__init__(**kwargs)
        self.spec, self.model = spec, model

    def runtest(self):
        from .plugin import get_concept, get_subject

        subject = get_subject(self.config, self.model)
        result, missed = self.spec.run(subject, lambda name: get_concept(self.config, name))
        if missed:
            raise AuditExpectationsMissed(missed, result)

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(AuditExpectationsMissed):
            missed, result = excinfo.value.args
            lines = [f"{self.spec.name} on {self.model}: {len(missed)} of {len(self.spec.expect)} expectations missed"]
            lines += [f"  {text}" for text in missed]
            return "\n".join(lines + ["", result.explain()])
        if excinfo.errisinstance(pytest.fail.Exception):
            return str(excinfo.value)
        from .errors import AuditlensError

        if excinfo.errisinstance(AuditlensError):
            return f"{self.spec.path}:{self.spec.line}: entry {self.spec.name!r}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.spec.line - 1, f"{self.spec.name} [{self.model}]"
