"""An audit's record from what pytest knows of it (the item, its report, the call), and the plain
failure text pytest shows for a Metric in an assertion."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

from ..report.outcomes import normalize
from ..report.record import AuditRecord
from ..report.tensors import recorded_results
from ..results import Metric
from .audit_errors import error_message
from .nodeids import item_model, plain_nodeid


def record_for(item, report, call, results, session, passes: tuple[int, list[str], list[dict]],
               shown: str | None = None) -> AuditRecord | None:
    """The record of an audit (an item that ran against a model); None for a plain test. ``shown``: the text
    the report shows in place of the exception's, whose first line is then the record's message."""
    model = item_model(item)
    if model is None:
        return None
    subject = session.subjects.get(model)
    kind, message = None, None
    if report.failed:  # an assertion is a finding about the model; any other exception is an error
        asserted = call.when == "call" and call.excinfo is not None and call.excinfo.errisinstance(AssertionError)
        kind = "assertion" if asserted else "error"
        if call.excinfo is not None:
            message = shown.splitlines()[0][:500] if shown else error_message(call.excinfo)
        elif hasattr(report, "wasxfail"):
            message = f"XPASS(strict): expected to fail, and passed {report.wasxfail}".strip()
    outcome = normalize(report.outcome, kind)
    if hasattr(report, "wasxfail") and not report.failed:
        outcome = "xfail" if report.skipped else "passed"
    path, line, name = item.reportinfo()
    if path:
        path = Path(path)
        path = path.relative_to(item.config.rootpath) if path.is_relative_to(item.config.rootpath) else path
    nodeid = plain_nodeid(item.nodeid)
    return AuditRecord(
        nodeid=nodeid, name=getattr(getattr(item, "entry", None), "name", None) or name,
        file=str(path) if path else None, line=None if line is None else line + 1, model=model,
        fingerprint=subject.fingerprint if subject else None,
        truth=subject.metadata.get("truth") if subject else None,
        origin=subject.metadata.get("origin") if subject else None, definition=definition_digest(item),
        outcome=outcome, kind=kind, when=report.when,
        duration=report.duration, forward_passes=passes[0], needs=tuple(passes[1]), repeats=tuple(passes[2]),
        results=recorded_results(results, session.options.report_dir, nodeid), message=message)


def definition_digest(item) -> str | None:
    """A digest of what an audit asks: a YAML entry's check, arguments and expectations; a Python
    audit's function source (its arguments are in its code). None where neither can be read."""
    entry = getattr(item, "entry", None)
    if entry is not None:
        text = json.dumps({"check": entry.check, "arguments": entry.arguments,
                           "expect": {k: str(v) for k, v in entry.expect.items()}}, sort_keys=True, default=str)
    else:
        try:
            text = inspect.getsource(item.function)
        except (AttributeError, OSError, TypeError):
            return None
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def metric_comparison(op: str, left, right) -> list[str] | None:
    """pytest's explanation of ``metric op bound`` (or ``bound op metric``) on a failed assertion."""
    metric = left if isinstance(left, Metric) else right if isinstance(right, Metric) else None
    if metric is None or not hasattr(metric, "result"):
        return None
    other = right if metric is left else left
    comparison = metric.describe(f"{op} {other}") if metric is left else f"expected {other} {op} {metric.measured()}"
    return [comparison, metric.result.headline(), "(all the evidence: section 'auditlens evidence' below)"]
