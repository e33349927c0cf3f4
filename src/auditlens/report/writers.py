"""Reading and writing reports; every write is atomic (a temporary file renamed into place)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import AuditlensError
from .model import SCHEMA
from .outcomes import count, normalize

SCHEMA_1 = "auditlens.report/1"


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o666 & ~umask)  # mkstemp makes it private; a report is for reading
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)


def read_report(path: str | Path) -> dict:
    """A report.json (or the one in a report directory); a report of schema 1 is read in today's terms."""
    path = Path(path)
    if path.is_dir():
        if not (path / "report.json").is_file():
            raise AuditlensError(f"{path} is a directory without a report.json; give a report.json or its directory")
        path = path / "report.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise AuditlensError(f"no report at {path}") from None
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


def write_report(report: dict, directory: str | Path) -> dict[str, Path]:
    """report.json, report.html and summary.md in ``directory``; returns their paths."""
    from .html import render_html
    from .markdown import render_markdown

    directory = Path(directory)
    paths = {"json": directory / "report.json", "html": directory / "report.html", "markdown": directory / "summary.md"}
    atomic_write(paths["json"], json.dumps(report, indent=1, sort_keys=False) + "\n")
    atomic_write(paths["markdown"], render_markdown(report))
    atomic_write(paths["html"], render_html(report))
    return paths
