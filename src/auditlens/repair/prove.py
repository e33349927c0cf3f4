"""Proving a cure. The repaired model is measured against the original:
- reliance on the shortcut: accuracy on the pairs' sources (the nuisance changed), expected the bases' labels;
- task accuracy on clean data, with a paired bootstrap interval of the change;
- next-token cross-entropy on reference text, for a causal LM.
It is re-audited by the same suite, and the exported directory is checked against the hooked edits. The gate
accepts a repair only when every audit passes and the clean-accuracy interval lies above ``-max_loss``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..checks.behaviour_change import behaviour
from ..sites.hooks import intervene
from ..stats import Interval, paired_difference
from .evidence import FAILED, short_name


@dataclass(frozen=True)
class BeforeAfter:
    """A measure of the original and the repaired model; ``interval``: of after - before (paired), if any."""

    before: float
    after: float
    interval: Interval | None = None

    @property
    def change(self) -> float:
        return self.after - self.before

    def to_dict(self) -> dict:
        return {"before": self.before, "after": self.after, "change": self.change,
                "interval": None if self.interval is None else self.interval.to_dict()}


@dataclass(frozen=True)
class AuditOutcome:
    name: str
    before: str
    after: str


def accuracy_change(original, repaired, inputs, labels, answers, seed: int) -> BeforeAfter:
    """Accuracy of both models on the same labelled inputs, with the paired interval of the change."""
    before = behaviour(original, inputs, labels, answer_tokens=answers).correct
    after = behaviour(repaired, inputs, labels, answer_tokens=answers).correct
    return BeforeAfter(float(before.mean()), float(after.mean()),
                       paired_difference(before.numpy(), after.numpy(), seed))


def cross_entropy(subject, texts) -> float:
    """Mean next-token cross-entropy (nats per predicted token) of a causal LM on ``texts`` (texts, token
    lists or Inputs, as ``Subject.encode`` takes them)."""
    inputs = subject.encode(texts)
    ids, mask = inputs.input_ids.to(subject.device), inputs.attention_mask.to(subject.device)
    with torch.no_grad():
        logits = subject.model(input_ids=ids, attention_mask=mask).logits.float()
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    weights = (mask[:, :-1] * mask[:, 1:]).flatten().float()
    return float((losses * weights).sum() / weights.sum())


def exported_gap(original, edits, directory: Path, inputs) -> dict[str, float]:
    """Largest |logit| difference between the model reloaded from ``directory`` with plain transformers and the
    original with the edits hooked, on ``inputs``: in float64 (the fold's algebra) and in float32 (as run; an
    oblique clamp's reading amplifies float32 rounding of either side)."""
    import copy

    import transformers

    from .search import as_subject

    config = transformers.AutoConfig.from_pretrained(directory)
    model_class = getattr(transformers, (config.architectures or ["AutoModel"])[0])
    exported_model = model_class.from_pretrained(directory).eval()  # read from disk once
    gaps = {}
    for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        reloaded = copy.deepcopy(exported_model).to(original.device, dtype)
        hooked = as_subject(original, copy.deepcopy(original.model).to(dtype), "hooked")
        ids, mask = inputs.input_ids.to(original.device), inputs.attention_mask.to(original.device)
        with torch.no_grad():
            exported = reloaded(input_ids=ids, attention_mask=mask).logits
            with intervene(hooked, *edits):
                expected = hooked.model(input_ids=ids, attention_mask=mask).logits
        real = mask.bool() if exported.ndim == 3 else torch.ones(len(ids), dtype=torch.bool)
        gaps[name] = float((exported - expected)[real].abs().max())
    return gaps


def audit_outcomes(before: dict, after: dict) -> list[AuditOutcome]:
    """Each audit's outcome on the original (the report repaired from) and on the repair (its re-audit)."""
    after_by_name = {short_name(a, after["id"]): a["outcome"] for a in after.get("audits") or []}
    names = list(dict.fromkeys([short_name(a, before["id"]) for a in before.get("audits") or []] + list(after_by_name)))
    before_by_name = {short_name(a, before["id"]): a["outcome"] for a in before.get("audits") or []}
    return [AuditOutcome(n, before_by_name.get(n, "not run"), after_by_name.get(n, "not run")) for n in names]


def gate(audits: list[AuditOutcome], clean: BeforeAfter, max_loss: float) -> tuple[bool, str]:
    """Accept when every audit passes on the repair and the clean-accuracy interval lies above -max_loss."""
    failing = [a.name for a in audits if a.after in (*FAILED, "not run")]
    if failing:
        return False, (f"{len(failing)} audit(s) do not pass on the repaired model: " + "; ".join(failing))
    if clean.interval is None:
        return False, "the clean accuracy change has no interval (too few clean examples)"
    if clean.interval.low < -max_loss:
        return False, (f"clean accuracy {clean.before:.3f} -> {clean.after:.3f}: the change's interval "
                       f"{clean.interval} reaches below the allowed loss of {max_loss:.3f}")
    return True, (f"every audit passes, and clean accuracy {clean.before:.3f} -> {clean.after:.3f} (change interval "
                  f"{clean.interval}, allowed loss {max_loss:.3f})")
