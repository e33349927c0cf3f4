"""Shards as Ray tasks: one ``pytest ... --audit-shard K/N`` per task on the cluster, the shard reports
brought back through Ray's object store (the nodes need not share a disk), then merged here.

Ray schedules; we do not. Each task asks for ``cpus`` CPUs (torch gets as many threads) and ``gpus`` GPUs
(Ray sets the task's CUDA_VISIBLE_DEVICES; pass ``--audit-device cuda`` in the pytest arguments). The task
runs pytest in ``cwd`` on its node (the same checkout path on every node, as on a local instance), or,
with ``upload=True``, in a copy of ``cwd`` Ray ships to the nodes (its ``runtime_env`` working_dir).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AuditlensError
from ..report.suite_process import run_pytest

LOCAL = "local"  # --address local: start a Ray instance on this machine


@dataclass
class ShardRun:
    """What one task did: pytest's exit status, its report.json's text (None when it wrote none), its
    output's tail. The text travels, not the parsed report: parsed here, NaN metrics are json's one NaN
    (a pickled NaN is another object, and a NaN is equal only to itself)."""

    index: int
    returncode: int
    report_text: str | None
    output: str = ""

    @property
    def report(self) -> dict | None:
        import json

        return None if self.report_text is None else json.loads(self.report_text)


@dataclass
class RayOutcome:
    runs: list[ShardRun] = field(default_factory=list)

    @property
    def broken(self) -> list[ShardRun]:
        """Shards whose pytest did not finish its run (exit above 1: usage error, crash, no report)."""
        return [r for r in self.runs if r.report_text is None or r.returncode > 1]


def shard_arguments(pytest_args: list[str]) -> tuple[list[str], str | None]:
    """The pytest arguments without ``--audit-report``/``--audit-shard`` (each task sets its own), and the
    report directory they named (the merged report's default home)."""
    kept, report, skip = [], None, False
    for index, arg in enumerate(pytest_args):
        if skip:
            skip = False
            continue
        for flag in ("--audit-report", "--audit-shard"):
            if arg == flag:
                if index + 1 >= len(pytest_args):
                    raise AuditlensError(f"{flag} needs a value")
                report = pytest_args[index + 1] if flag == "--audit-report" else report
                skip = True
                break
            if arg.startswith(f"{flag}="):
                report = arg.split("=", 1)[1] if flag == "--audit-report" else report
                break
        else:
            kept.append(arg)
    return kept, report


def run_shard(index: int, count: int, args: list[str], cwd: str | None, cpus: int) -> ShardRun:
    """Run shard ``index`` of ``count`` with pytest in a subprocess; its report read back as data."""
    done = run_pytest([*args, "--audit-shard", f"{index}/{count}"], cwd=cwd, env={"OMP_NUM_THREADS": str(cpus)})
    return ShardRun(index, done.returncode, done.report_text, done.output[-4000:])


def run_on_ray(address: str, shards: int, pytest_args: list[str], cpus: int = 1, upload: bool = False,
               cwd: str | None = None, init_options: dict | None = None, gpus: float = 0) -> RayOutcome:
    """Run ``shards`` shards of ``pytest *pytest_args`` as Ray tasks on the cluster at ``address`` (``local``:
    a Ray instance started here; an already initialised Ray is used as it is), each asking for ``cpus``
    CPUs and ``gpus`` GPUs."""
    if shards < 1 or cpus < 1 or gpus < 0:
        raise AuditlensError(f"--shards and --cpus-per-shard must be 1 or more, --gpus-per-shard 0 or more; got "
                             f"{shards}, {cpus} and {gpus}")
    try:
        import ray
    except ImportError:
        raise AuditlensError("run-ray needs Ray: pip install 'auditlens[ray]'") from None
    args, _ = shard_arguments(pytest_args)
    cwd = str(Path(cwd or os.getcwd()).resolve())
    started_here = not ray.is_initialized()
    if started_here:
        options = dict(init_options or {})
        if address != LOCAL:
            options["address"] = address
        if upload:
            options["runtime_env"] = {"working_dir": cwd}
        try:
            ray.init(log_to_driver=False, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise AuditlensError(f"cannot reach the Ray cluster at {address!r}: {exc}; give its address "
                                 "(ray://HOST:10001, HOST:6379, auto) or 'local'") from None
    try:
        task = ray.remote(num_cpus=cpus, num_gpus=gpus)(run_shard)
        pending = [task.remote(k, shards, args, None if upload else cwd, cpus) for k in range(1, shards + 1)]
        return RayOutcome(sorted(ray.get(pending), key=lambda r: r.index))
    finally:
        if started_here:
            ray.shutdown()
