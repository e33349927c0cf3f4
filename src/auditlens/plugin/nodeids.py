"""Reading audits' node ids: which model an audit ran against (``test_x[fixture:count-learned]``)."""

from __future__ import annotations

from collections.abc import Iterable


def plain_nodeid(nodeid: str) -> str:
    """The node id without the ``@group`` suffix pytest-xdist's loadgroup appends to it."""
    cut = nodeid.rfind("]") + 1
    return nodeid[:cut] if cut and nodeid[cut:].startswith("@") else nodeid


def model_of(nodeid: str, models: Iterable[str]) -> str | None:
    """The model an audit's node id was parametrized with, if it is one of ``models``."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    ids = nodeid[nodeid.rindex("[") + 1:-1]
    matches = [m for m in models if ids == m or ids.startswith(f"{m}-") or ids.endswith(f"-{m}") or f"-{m}-" in ids]
    return max(matches, key=len) if matches else None


def item_model(item) -> str | None:
    """The model of a collected item: a Python audit's ``subject`` parameter, a YAML item's ``model``."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("subject") if callspec else getattr(item, "model", None)
