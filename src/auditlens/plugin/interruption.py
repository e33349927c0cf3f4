"""Runs that stop before their end: SIGTERM ends a run as Ctrl-C does (so its report says it was
interrupted instead of leaving the previous one in place, stale), and why a run stopped early."""

from __future__ import annotations

import signal
import threading

import pytest

_received: list[str] = []  # the signal that stopped this run, if one did


def _terminate(signum, frame):
    _received.append(signal.Signals(signum).name)
    raise KeyboardInterrupt(f"auditlens: {signal.Signals(signum).name} received")


def handle_sigterm():
    """From now on SIGTERM interrupts the run like Ctrl-C; returns what to restore (None: left alone,
    because another handler was installed or this is not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    _received.clear()
    return signal.signal(signal.SIGTERM, _terminate)


def restore_sigterm(previous) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


def why_interrupted(session, exitstatus, interrupt: BaseException | None) -> str | None:
    """Why ``session`` stopped before running everything it collected (``interrupt``: the
    KeyboardInterrupt pytest caught, if any), or None when it did not."""
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        message = str(interrupt or "").strip()
        if _received:
            return f"{_received[-1]} received"
        return f"stopped early: {message}" if message else "interrupted by the user (Ctrl-C)"
    stopped = session.shouldfail or session.shouldstop
    return f"stopped early: {stopped}" if stopped else None
