"""Reading and writing reports; every write is atomic (a temporary file renamed into place)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import AuditlensError
from .model import SCHEMA


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
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise AuditlensError(f"no report at {path}") from None
    except json.JSONDecodeError as exc:
        raise AuditlensError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise AuditlensError(f"{path} is not an auditlens report of schema {SCHEMA!r} (found {found!r})")
    return data


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
