"""A repaired model: the subject's weights with an audit's edits folded in, what each edit changed, the
edits left as hooks, and the export as a plain transformers model directory (safetensors + config)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import CheckError


@dataclass(frozen=True)
class FoldedEdit:
    """What one edit changed: the edit in words, the state-dict names of the weights it wrote, a note."""

    edit: str
    parameters: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class HookedEdit:
    """An edit that no weight can hold, kept as a hook: apply it with
    ``intervene(repaired.model, *(h.edit for h in repaired.hooked))``; ``reason`` says why."""

    edit: Any
    reason: str

    def __str__(self) -> str:
        return f"{describe(self.edit)}: {self.reason}"


@dataclass
class RepairedModel:
    """``model``: a deep copy of the subject's model with ``folded`` written into its weights (the subject's
    model is never changed); ``hooked``: the edits that stay hooks, each with its reason."""

    model: nn.Module
    folded: tuple[FoldedEdit, ...]
    hooked: tuple[HookedEdit, ...]

    def save_pretrained(self, directory: str | os.PathLike, tokenizer: Any | None = None) -> Path:
        """Write the repaired model to a new ``directory`` (safetensors weights, config, and ``tokenizer`` when
        given) that plain transformers loads; returns its path. CheckError when the directory exists, when
        edits stay hooks (the exported model would silently lack them), or the model is no transformers model."""
        path = Path(directory)
        if self.hooked:
            kept = "\n".join(f"  - {hooked}" for hooked in self.hooked)
            raise CheckError(f"cannot export to {path}: {len(self.hooked)} edit(s) could not be folded into the "
                             f"weights, and an exported model runs without auditlens hooks:\n{kept}\n"
                             "repair without them, or keep using the model with intervene()")
        if path.exists():
            raise CheckError(f"cannot export to {path}: it exists; give a new directory (nothing is overwritten)")
        if not hasattr(self.model, "save_pretrained"):
            raise CheckError(f"cannot export a {type(self.model).__name__}: it is no transformers model (it has no "
                             "save_pretrained); save its state_dict with safetensors.torch.save_file")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)
        return path

    def summary(self) -> str:
        """One line per folded and per hooked edit, for a report."""
        lines = [f"folded {f.edit} into {len(f.parameters)} weight(s)" + (f" ({f.note})" if f.note else "")
                 for f in self.folded]
        return "\n".join(lines + [f"kept as a hook: {h}" for h in self.hooked])


def describe(edit) -> str:
    """An edit in words, e.g. ``zero head:1.0``."""
    site = getattr(edit, "site", None)
    kind = type(edit).__name__
    words = {"ZeroAblation": "zero", "MeanAblation": "mean-ablate", "ResampleAblation": "resample-ablate",
             "Patch": "patch", "PartialMean": "mean-ablate ranges of"}
    if kind == "ProjectOut":
        count = edit.basis.shape[0]
        return f"project out {count} direction{'s' * (count != 1)} at {site}"
    if kind == "Clamp":
        count = edit.directions.shape[0]
        return f"clamp {count} direction{'s' * (count != 1)} at {site} to a fixed value"
    if kind == "Steer":
        return f"steer {site} by {edit.alpha:g} x a vector"
    if kind == "Transform":
        return f"transform {site} with {edit.name}"
    return f"{words.get(kind, kind)} {site}"
