"""Reading and writing reports. A report is written whole or not at all: the three files are rendered
in memory, written into a fresh staging directory, then moved into place under a lock on the report
directory, so a failed render or a full disk leaves the previous report as it was, and two sessions
writing one directory never mix their files."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import AuditlensError
from .model import SCHEMA
from .outcomes import count, normalize

SCHEMA_1 = "auditlens.report/1"
REPORT_NOT_WRITTEN_EXIT = 7  # the session's exit status when its report could not be written
LOCK_NAME = ".auditlens-report.lock"  # the lock's name; it lives in the temporary directory (lock_path)
LOCK_SECONDS = 120


class ReportWriteError(AuditlensError):
    """The report could not be written; the previous one, if any, is left as it was."""


class ReportNotFound(AuditlensError):
    """No report.json where one was named."""


def report_file(path: str | Path) -> Path:
    """The report.json ``path`` names: the file itself, or the report.json in the directory ``path``;
    ReportNotFound naming ``path`` when it is neither (the callers say what their flag takes)."""
    path = Path(path)
    if path.is_dir():
        if not (path / "report.json").is_file():
            raise ReportNotFound(f"{path} is a directory without a report.json; give a report.json or its directory")
        return path / "report.json"
    if not path.is_file():
        raise ReportNotFound(f"no report at {path}")
    return path


def read_report(path: str | Path) -> dict:
    """A report.json (or the one in a report directory); a report of schema 1 is read in today's terms."""
    path = report_file(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditlensError(f"cannot read the report {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AuditlensError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    found = data.get("schema") if isinstance(data, dict) else type(data).__name__
    if found not in (SCHEMA, SCHEMA_1):
        raise AuditlensError(f"{path} is not an auditlens report of schema {SCHEMA!r} (found {found!r})")
    problem = _shape_problem(data)
    if problem:
        raise AuditlensError(f"{path} is not a well-formed auditlens report: {problem}")
    return _from_schema_1(data) if found == SCHEMA_1 else data


def _shape_problem(data: dict) -> str | None:
    """The first part of a report that other code would trip over, or None (the core: run, models,
    each model's id, verdict and audits, each audit's nodeid, outcome and numeric metrics)."""
    def kind(value) -> str:
        return f"{type(value).__name__} {str(value)[:60]!r}"

    if not isinstance(data.get("run"), dict):
        return f"'run' is {kind(data.get('run'))}; expected a mapping"
    if not isinstance(data.get("models"), list):
        return f"'models' is {kind(data.get('models'))}; expected a list"
    for i, model in enumerate(data["models"]):
        if not isinstance(model, dict) or not all(isinstance(model.get(k), str) for k in ("id", "verdict")):
            return f"models[{i}] needs 'id' and 'verdict' strings"
        if not isinstance(model.get("audits"), list):
            return f"models[{i}].audits is {kind(model.get('audits'))}; expected a list"
        for j, audit in enumerate(model["audits"]):
            where = f"models[{i}].audits[{j}]"
            if not isinstance(audit, dict) or not all(isinstance(audit.get(k), str) for k in ("nodeid", "outcome")):
                return f"{where} needs 'nodeid' and 'outcome' strings"
            metrics = audit.get("metrics", {})
            if not isinstance(metrics, dict):
                return f"{where}.metrics is {kind(metrics)}; expected a mapping"
            for name, value in metrics.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    return f"{where}.metrics[{name!r}] is {kind(value)}; expected a number"
    return None


def _from_schema_1(data: dict) -> dict:
    """Schema 1 named outcomes as pytest does (errors as failed with kind error, xfailed, xpassed)."""
    for model in data.get("models", []):
        for audit in model.get("audits", []):
            audit["outcome"] = normalize(audit["outcome"], audit.get("kind"))
        model["counts"] = count(model.get("audits", []))
    return {**data, "schema": SCHEMA, "upgraded_from": SCHEMA_1}


def check_report_dir(directory: str | Path) -> Path:
    """``directory`` usable for a report (created if missing), or ReportWriteError saying why not."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ReportWriteError(f"the report directory {directory} is a file; give a directory "
                               "(--audit-report DIR, created if missing)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportWriteError(f"cannot create the report directory {directory}: {exc.strerror or exc}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ReportWriteError(f"the report directory {directory} is not writable")
    return directory


def render_report(report: dict) -> dict[str, str]:
    """The text of each file, by file name; ReportWriteError names the one that could not be rendered."""
    from .html import render_html
    from .markdown import render_markdown

    renderers = {"report.json": lambda r: json.dumps(r, indent=1, sort_keys=False) + "\n",
                 "summary.md": render_markdown, "report.html": render_html}
    texts = {}
    for name, render in renderers.items():
        try:
            texts[name] = render(report)
        except Exception as exc:  # a rendering bug must not leave a half-new report behind
            raise ReportWriteError(f"could not render {name} ({type(exc).__name__}: {exc}); "
                                   "no file of the report was written") from exc
    return texts


def lock_path(directory: Path) -> Path:
    """The lock on a report directory: one file per directory (by its resolved path) in the system's
    temporary directory, so the report directory holds the report and nothing left behind."""
    import hashlib

    digest = hashlib.blake2b(str(directory.resolve()).encode(), digest_size=8).hexdigest()
    return Path(tempfile.gettempdir()) / f"{LOCK_NAME.lstrip('.')}-{digest}"


def write_report(report: dict, directory: str | Path) -> dict[str, Path]:
    """report.json, report.html and summary.md in ``directory``, all three or none; returns their paths."""
    directory = check_report_dir(directory)
    texts = render_report(report)
    try:
        with FileLock(lock_path(directory), timeout=LOCK_SECONDS):
            staging = Path(tempfile.mkdtemp(prefix=".report-", dir=directory))
            try:
                for name, text in texts.items():
                    _write_synced(staging / name, text)
                for name in sorted(texts, key=lambda n: n == "report.json"):  # json last: whoever polls
                    os.replace(staging / name, directory / name)  # report.json finds the others new already
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except Timeout:
        raise ReportWriteError(f"another session held the report directory {directory} for over {LOCK_SECONDS} s; "
                               "the report was not written") from None
    except OSError as exc:
        raise ReportWriteError(f"could not write the report into {directory}: {exc.strerror or exc}; "
                               "the previous report there is left as it was") from None
    return {"json": directory / "report.json", "html": directory / "report.html", "markdown": directory / "summary.md"}


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
