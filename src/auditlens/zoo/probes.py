"""Write every family's concept files: ``python -m auditlens.zoo.probes [DIRECTORY]`` (default probes/)."""

from __future__ import annotations

import sys
from pathlib import Path

from . import (
    backdoor_task,
    count_task,
    counterfactuals,
    length_task,
    memo_task,
    phrase_task,
    superposition_task,
    tail_task,
)

TASKS = (count_task, length_task, backdoor_task, memo_task, tail_task, phrase_task, superposition_task, counterfactuals)


def write_all(directory: Path) -> None:
    for task in TASKS:
        task.write_probes(directory)


if __name__ == "__main__":
    write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "probes"))
