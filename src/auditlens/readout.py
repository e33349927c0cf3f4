"""Behaviour readouts: what a model's output says about each example, as class scores [n, C].

- a classifier: its logits over labels;
- a causal LM: the next-token logits, at the last real token, of a few candidate tokens
  (a target and its foils), so the same label metrics serve both kinds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import CheckError
from .hooks import Batch


@dataclass(frozen=True)
class ClassifierLogits:
    key: str = "classifier-logits"

    def reduce(self, output, batch: Batch) -> torch.Tensor:
        return output.logits.float()


def _last_token_logits(output, batch: Batch) -> torch.Tensor:
    logits = output.logits
    mask = batch.attention_mask.to(logits.device)
    last = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(dim=1)
    return logits[torch.arange(logits.shape[0], device=logits.device), last]


@dataclass(frozen=True)
class LastTokenLogits:
    """A causal LM's logits over the whole vocabulary for the token after the last real one ([n, V]).

    Every :class:`NextTokenLogits` is a choice of its columns, so a pass that kept these answers
    any later question about candidate tokens on the same inputs.
    """

    key: str = "last-token-logits"

    def reduce(self, output, batch: Batch) -> torch.Tensor:
        return _last_token_logits(output, batch).float()


@dataclass(frozen=True)
class NextTokenLogits:
    """Logits of ``candidates`` (token ids, one per class) for the token after the last real one."""

    candidates: tuple[int, ...]
    base = LastTokenLogits()  # what these scores can be derived from

    @property
    def key(self) -> str:
        return f"next-token{self.candidates}"

    def reduce(self, output, batch: Batch) -> torch.Tensor:
        return _last_token_logits(output, batch)[:, list(self.candidates)].float()

    def from_base(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, list(self.candidates)]


def readout_for(subject, candidates: Sequence[int] | None = None):
    """The default readout of ``subject``; a causal LM needs the candidate token ids."""
    if subject.kind == "classifier":
        return ClassifierLogits()
    if subject.kind == "causal-lm":
        if not candidates:
            raise CheckError(
                f"{subject.id!r} is a causal LM: its behaviour is read as the logits of candidate next tokens, "
                "so the concept needs answer_tokens (one token per label, e.g. [' yes', ' no'])"
            )
        return NextTokenLogits(tuple(int(c) for c in candidates))
    raise CheckError(
        f"{subject.id!r} is an {subject.kind} without an output head, so it has no behaviour to read; "
        "probe checks work on it, behaviour checks need a classifier or a causal LM"
    )


def predictions(scores: torch.Tensor) -> torch.Tensor:
    return scores.argmax(dim=1)


def logit_margin(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Score of the true label minus the best other score ([n]); for two classes the logit difference."""
    labels = labels.long()
    true = scores.gather(1, labels[:, None]).squeeze(1)
    others = scores.clone()
    others.scatter_(1, labels[:, None], float("-inf"))
    return true - others.max(dim=1).values
