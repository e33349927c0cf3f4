"""How an audit that could not run is shown. A library error raised while a Python audit ran (a bad site,
concept or argument: an AuditlensError) is an ERROR of the audit, as a fixture's error is, not a FAILED
finding about the model; it shows as its message at the audit's own line, not under the library's
traceback (--fulltrace keeps that). A fixture that names no concept gets the concepts it was closest to,
not pytest's list of every fixture (whose exception arguments had leaked into the verdict line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..errors import AuditlensError, closest


def library_error(item, call) -> str | None:
    """What an audit's report shows for an AuditlensError raised by its own call, or None (not one)."""
    excinfo = call.excinfo
    if call.when != "call" or excinfo is None or not excinfo.errisinstance(AuditlensError):
        return None
    return f"{_audit_line(item, excinfo)}: {excinfo.typename}: {excinfo.value}"


def missing_concept(call, concepts: list[str], probes: Path) -> str | None:
    """What an audit's report shows when it asks for a fixture that does not exist and whose name is close
    to a concept's (a concept's fixture is named after its file in ``probes``), or None."""
    name = missing_fixture(call.excinfo)
    near = closest(name, concepts, n=3) if name else []
    if not near:
        return None  # pytest's own text, which lists every fixture, says more
    return (f"fixture {name!r} not found: no fixture is named so, and there is no concept file {probes / name}.yaml "
            f"(a concept's fixture is named after its file); did you mean {', '.join(map(repr, near))}? "
            f"Concepts: {', '.join(sorted(concepts))}")


def missing_fixture(excinfo) -> str | None:
    """The name of the fixture pytest found none of, when that is the error."""
    if excinfo is None or not excinfo.errisinstance(pytest.FixtureLookupError) or excinfo.value.msg is not None:
        return None
    return str(excinfo.value.argname)


def error_message(excinfo) -> str:
    """The one line an audit's record keeps of its exception (a missing fixture's carries no message of its own:
    its arguments, a name and a FixtureRequest, were shown instead)."""
    name = missing_fixture(excinfo)
    text = f"fixture {name!r} not found" if name else str(excinfo.value).strip() or excinfo.typename
    return text.splitlines()[0][:500]


def _audit_line(item, excinfo) -> str:
    """``file:line`` of the audit's own frame nearest the error (its call into the library), else its def."""
    path, line, _ = item.location
    own = [entry for entry in excinfo.traceback if Path(entry.path) == Path(item.path)]
    return f"{path}:{(own[-1].lineno if own else line) + 1}"
