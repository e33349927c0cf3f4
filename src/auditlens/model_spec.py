"""What a model spec names, told apart before anything is loaded: ``fixture:NAME``, ``hub:ORG/NAME``
(a hub id, said so), a local directory, or a hub id. A spec that looks like a path and names no
directory is refused here, with the closest directory that exists: sent to the hub it would cost
minutes of retries before failing with a message about the network. Torch-free (the plugin checks
every ``--model`` when the run starts)."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from .errors import ModelLoadError

HUB_PREFIX = "hub:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SEPARATORS = tuple({"/", os.sep, os.altsep or "/"})


def is_hub_id(text: str) -> bool:
    """Shaped like a hub id: ``name`` or ``org/name`` (no path syntax)."""
    return bool(_HUB_ID.match(text))


def looks_like_a_path(text: str) -> bool:
    """A spec meant as a local path: it starts with ``.``, ``~`` or a separator, has path syntax a hub id
    cannot have, or its first part is a directory here (``models/x`` where ``models/`` exists)."""
    if text.startswith((".", "~", *_SEPARATORS)) or not is_hub_id(text.replace(os.sep, "/")):
        return True
    first = re.split(r"[\\/]", text, maxsplit=1)[0]
    return text != first and Path(first).is_dir()


def hub_id_of(spec: str) -> str | None:
    """The hub id a spec names, or None where it names a local directory (or a fixture)."""
    if spec.startswith(HUB_PREFIX):
        return spec.removeprefix(HUB_PREFIX)
    if spec.startswith("fixture:") or Path(spec).expanduser().is_dir() or looks_like_a_path(spec):
        return None
    return spec


def check_local_path(spec: str) -> None:
    """ModelLoadError when ``spec`` means a local path that is not a directory, naming the closest
    directory that exists and how to name a hub id instead; nothing for other specs."""
    if spec.startswith((HUB_PREFIX, "fixture:")):
        return
    path = Path(spec).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise ModelLoadError(f"{spec} is a file; a model is a directory written by save_pretrained")
    if not looks_like_a_path(spec):
        return
    nearest = closest_directory(spec)
    hint = f" Did you mean {nearest}?" if nearest else ""
    raise ModelLoadError(f"no local directory {spec} exists, so it was not looked up on the hub.{hint} A model is a "
                         f"directory written by save_pretrained; to load a hub id, write it as {HUB_PREFIX}ORG/NAME")


def closest_directory(spec: str) -> str | None:
    """The existing directory whose path is closest to ``spec``, one part at a time from the deepest
    part that exists (``models/reviews-chaet`` -> ``models/reviews-chat``); None if none is close."""
    path = Path(spec).expanduser()
    parts = path.parts
    found = Path(parts[0]) if path.is_absolute() else Path(".")
    changed = False
    for part in parts[1:] if path.is_absolute() else parts:
        if part in (".", ""):
            continue
        if (found / part).is_dir():
            found = found / part
            continue
        try:
            names = sorted(p.name for p in found.iterdir() if p.is_dir())
        except OSError:
            return None
        match = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
        if not match:
            return None
        found, changed = found / match[0], True
    if not changed:
        return None
    text = str(found)
    return f".{os.sep}{text}" if not found.is_absolute() and spec.startswith(("./", f".{os.sep}")) else text
