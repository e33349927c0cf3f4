"""Progress on long work (a zoo organism trained on first use, a probe sweep's fits): one line per step,
to the sink the running session set (the pytest plugin writes past output capture), and always to
the ``auditlens.progress`` logger, so a script sees it with ``logging.basicConfig(level="INFO")``. Our progress is
our own: transformers' progress bars are silenced while auditlens loads or saves."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LOGGER = logging.getLogger("auditlens.progress")
_sink: contextvars.ContextVar[Callable[[str, bool], None] | None] = contextvars.ContextVar("auditlens_progress",
                                                                                        default=None)


def report(message: str, *, detail: bool = False) -> None:
    """Say ``message``; ``detail`` marks steps of a check (shown by a session only when asked to be verbose)."""
    LOGGER.info(message)
    sink = _sink.get()
    if sink is not None:
        sink(message, detail)


def use_sink(sink: Callable[[str, bool], None] | None) -> contextvars.Token:
    return _sink.set(sink)


def restore_sink(token: contextvars.Token) -> None:
    _sink.reset(token)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' own progress bars inside the block (loading, saving)."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()
