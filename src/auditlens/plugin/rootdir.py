"""pytest picks its rootdir and configuration file before plugins' options are known, so in
``pytest --model /abs/path`` (space form, no test path) it takes the model's directory for a test path.
Outside the repository, that makes the rootdir a common parent and drops the configuration file, and
with it ``audit_probes`` and every other ini key: every YAML audit then fails for an "unknown
concept". This finds that case and says what to type, before any audit runs."""

from __future__ import annotations

import os
from pathlib import Path

# a file pytest reads its configuration from, and the text that makes it one (None: being there is enough)
CONFIG_FILES = {"pytest.ini": None, ".pytest.ini": None, "pyproject.toml": "[tool.pytest.ini_options]",
                "tox.ini": "[pytest]", "setup.cfg": "[tool:pytest]"}


def model_values_taken_for_paths(args: list[str]) -> list[str]:
    """Values of ``--model VALUE`` (space form) that exist on disk: pytest read them as test paths."""
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--model" and os.path.exists(args[i + 1])]


def _configuration_above(directory: Path) -> Path | None:
    """The nearest pytest configuration file at or above ``directory`` (as pytest looks for one)."""
    for folder in (directory, *directory.parents):
        for name, section in CONFIG_FILES.items():
            path = folder / name
            if path.is_file() and (section is None or section in path.read_text(encoding="utf-8", errors="replace")):
                return path
    return None


def misread_model_path(config) -> str | None:
    """What to type instead, when a ``--model`` directory made pytest miss the configuration file of
    the directory it was run from; None when it did not."""
    args = list(config.invocation_params.args)
    taken = model_values_taken_for_paths(args)
    if not taken:
        return None
    expected = _configuration_above(Path(config.invocation_params.dir))
    found = Path(config.inipath) if config.inipath else None
    if expected is None or (found is not None and found.resolve() == expected.resolve()):
        return None
    fixed = " ".join(f"--model={a}" if a in taken and args[i - 1] == "--model" else a
                     for i, a in enumerate(args) if not (a == "--model" and i + 1 < len(args) and args[i + 1] in taken))
    return (f"pytest took the model directory {taken[0]} for a test path when it looked for its configuration, so "
            f"it did not read {expected} (audit_probes, audit_models and the other keys). Write the option with "
            f"'=': pytest {fixed}  (or name the audits first: pytest audits --model {taken[0]})")
