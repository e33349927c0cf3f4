"""Build several organisms at once, one process each: training is single-threaded (for the same
weights on every run on one kind of CPU), so independent organisms fill the cores instead of waiting."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from ..errors import ModelLoadError


def _build_one(name: str, force: bool) -> tuple[str, str, float]:
    from ..zoo.registry import build, get

    started = time.perf_counter()
    directory = build(get(name), force=force)
    return name, str(directory), time.perf_counter() - started


def default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores)


def build_many(names: Sequence[str], force: bool = False, workers: int | None = None,
               done: Callable[[str, Path, float], None] | None = None) -> dict[str, Path]:
    """Build the organisms ``names`` (as ``get`` reads them: ``NAME`` or ``NAME@SEED``) in up to
    ``workers`` processes (default: one per core); ``done(name, directory, seconds)`` as each ends.
    An organism that fails to build raises its error here, after the others have finished."""
    workers = min(workers or default_workers(), len(names)) or 1
    built, errors = {}, []
    if workers == 1:
        for name in names:
            _, directory, seconds = _build_one(name, force)
            built[name] = Path(directory)
            if done:
                done(name, built[name], seconds)
        return built
    context = multiprocessing.get_context("spawn")  # no forked torch state
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_build_one, name, force): name for name in names}
        for future in as_completed(futures):
            try:
                name, directory, seconds = future.result()
            except Exception as exc:  # noqa: BLE001 (re-raised below, once the others are done)
                errors.append((futures[future], exc))
                continue
            built[name] = Path(directory)
            if done:
                done(name, built[name], seconds)
    if errors:
        name, exc = errors[0]
        raise ModelLoadError(f"building fixture:{name} failed: {type(exc).__name__}: {exc}") from exc
    return built


def build_missing(names: Sequence[str], workers: int | None = None,
                  done: Callable[[str, Path, float], None] | None = None) -> list[str]:
    """Build, as ``build_many`` does, those of ``names`` that loading would train (not shipped in
    fixtures/, or $AUDITLENS_ZOO_SOURCE=rebuild, and not in the cache); the names it built."""
    from ..zoo.registry import get, needs_training

    missing = [name for name in names if needs_training(get(name))]
    if missing:
        build_many(missing, workers=workers, done=done)
    return missing
