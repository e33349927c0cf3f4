"""What a repair is asked, besides the report and the audit that name the shortcut: each option of
``auditlens repair`` checked once, when the options are made, before any model is loaded. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import AuditlensError

DEFAULT_MAX_LOSS = 0.01  # one point of clean accuracy


@dataclass(frozen=True)
class RepairOptions:
    """``model``: the model the report audited (a directory, hub id or fixture:NAME); ``out``: a new directory
    for the repaired model and its report; ``probes``: the concept directory the audits read; ``clean``: the
    labelled concept the task is scored on (None: the organism's in-distribution concept, else the bases of the
    audit's pairs); ``max_loss``: the share of clean accuracy the repair may cost; ``reference``: a text file
    for a causal LM's cross-entropy (None: the clean texts); ``seed``: of the bootstrap intervals and the
    re-audit. Paths may be given as strings."""

    model: str
    out: Path
    probes: Path = Path("probes")
    clean: str | None = None
    max_loss: float = DEFAULT_MAX_LOSS
    reference: Path | None = None
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model:
            raise AuditlensError(f"--model names the model the report audited (a directory, hub id or "
                                 f"fixture:NAME); got {self.model!r}")
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "probes", Path(self.probes))
        if self.reference is not None:
            object.__setattr__(self, "reference", Path(self.reference))
        if self.out.exists():
            raise AuditlensError(f"--out {self.out}: it exists; give a new directory (repair never writes over a "
                                 "model)")
        if isinstance(self.max_loss, bool) or not isinstance(self.max_loss, (int, float)) or \
                not 0 <= self.max_loss < 1:
            raise AuditlensError(f"--max-loss is a share of clean accuracy from 0 to 1 (0.01 is one point); got "
                                 f"{self.max_loss!r}")
        if not self.probes.is_dir():
            raise AuditlensError(f"--probes {self.probes}: no such directory (the concept files the audits name)")
        if self.clean is not None and (not isinstance(self.clean, str) or not self.clean):
            raise AuditlensError(f"--clean names a labelled concept of the task (a concept file in --probes); got "
                                 f"{self.clean!r}")
        if self.reference is not None and not self.reference.is_file():
            raise AuditlensError(f"--reference {self.reference}: no such file; give a text file, one text per line")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise AuditlensError(f"--seed is a whole number (of the bootstrap intervals and the re-audit); got "
                                 f"{self.seed!r}")
