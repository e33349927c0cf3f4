"""Tensors a result keeps (a DAS's learned directions: its class's ``saved_tensors``), saved beside the
report as safetensors when the result is recorded, so that the record itself stays plain, small data.

Each result (and each site of a sweep) with such tensors gets one file,
``<report dir>/<check>/<audit node id>__<site>.safetensors``, holding every tensor it names under its
field name, with the result's identifying fields and metrics as metadata (``format``:
``auditlens.<check>/1``, as ``save_directions`` writes). Its record gets ``tensors_file`` (the path
relative to the report directory, which the HTML links) and ``tensors`` (name -> shape)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from .check_tags import curve_points

LONGEST_NAME = 100  # characters of a node id or site kept in a file name; a digest stands for the rest


def recorded_results(results, report_dir: str | Path, nodeid: str) -> tuple[dict, ...]:
    """Each result's ``to_dict()``, with the tensors it keeps written under ``report_dir`` and named in it."""
    records, used = [], set()
    for result in results:
        record = result.to_dict()
        parts = zip(getattr(result, "results", ()), curve_points(record))  # a sweep's sites and their records
        for part, part_record in [(result, record), *parts]:
            if getattr(part, "saved_tensors", ()):
                _save(part, part_record, Path(report_dir), nodeid, used)
        records.append(record)
    return tuple(records)


def _save(result, record: dict, report_dir: Path, nodeid: str, used: set[str]) -> None:
    tensors = {name: getattr(result, name) for name in result.saved_tensors if getattr(result, name) is not None}
    if not tensors:
        return
    relative = _file_name(record["check"], nodeid, record["site"], used)
    metadata = {key: str(value) for key, value in record.items()
                if isinstance(value, (str, int)) and not isinstance(value, bool)}
    metadata.update({name: f"{value:.6f}" for name, value in record["metrics"].items()})
    metadata.update({"format": f"auditlens.{record['check']}/1", "audit": nodeid})
    try:
        _write(report_dir / relative, tensors, metadata)
    except OSError as exc:  # the audit's finding stands; the report says what could not be kept
        record["tensors_not_saved"] = f"{report_dir / relative}: {exc.strerror or exc}"
        return
    record["tensors_file"] = relative
    record["tensors"] = {name: list(tensor.shape) for name, tensor in tensors.items()}


def _write(path: Path, tensors: dict, metadata: dict[str, str]) -> None:
    """Write the file whole or not at all: a reader never finds half of one."""
    import torch
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".tensors-", suffix=".safetensors", dir=path.parent)
    os.close(handle)
    try:
        save_file({name: tensor.detach().to("cpu", torch.float32).contiguous() for name, tensor in tensors.items()},
                  staging, metadata=metadata)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)


def _file_name(check: str, nodeid: str, site: str, used: set[str]) -> str:
    """``check/<node id>__<site>.safetensors`` with only letters, digits, ``.``, ``_`` and ``-``; a second
    file of the same audit and site (two DAS in one audit) gets ``-2``."""
    stem = f"{_safe(nodeid)}__{_safe(site)}"
    name, number = stem, 1
    while name in used:
        number += 1
        name = f"{stem}-{number}"
    used.add(name)
    return f"{_safe(check)}/{name}.safetensors"


def _safe(text: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"
    if len(safe) <= LONGEST_NAME:
        return safe
    return f"{safe[:LONGEST_NAME - 9]}-{hashlib.blake2b(text.encode(), digest_size=4).hexdigest()}"
