"""Behaviour readouts: what a model's output says about each example, as scores [n, C].

- a classifier: its logits over labels;
- a causal LM: the next-token logits, at the last real token, of a few candidate tokens (a target
  and its foils, one per label), so the same label metrics serve both kinds; the candidates are
  columns of the vocabulary logits (``LastTokenLogits``), from which any of them can be derived;
- an encoder: its mean-pooled last hidden state (for invariance checks on embeddings).

Answer tokens given as text resolve here, and only here: ``answer_token_ids``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import CheckError, ConceptError
from .sites.hooks import Batch
from .sites.positions import last_index, reduce
from .sites.resolve import config_int


def _last_token_logits(output, batch: Batch) -> torch.Tensor:
    logits = output.logits
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, last_index(batch.attention_mask.to(logits.device))]


@dataclass(frozen=True)
class ClassifierLogits:
    key: str = "classifier-logits"

    def reduce(self, output, batch: Batch) -> torch.Tensor:
        return output.logits.float()

    def columns(self, subject) -> int | None:
        return config_int(subject.model, "num_labels")


@dataclass(frozen=True)
class LastTokenLogits:
    """A causal LM's logits over the whole vocabulary for the token after the last real one ([n, V]).

    Every :class:`NextTokenLogits` is a choice of its columns, so a pass that kept these answers
    any later question about candidate tokens on the same inputs.
    """

    key: str = "last-token-logits"

    def reduce(self, output, batch: Batch) -> torch.Tensor:
        return _last_token_logits(output, batch).float()

    def columns(self, subject) -> int | None:
        return subject.vocab_size


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

    def columns(self, subject) -> int:
        return len(self.candidates)


@dataclass(frozen=True)
class EmbeddingMean:
    """An encoder's behaviour: its last hidden state averaged over the real tokens."""

    key: str = "embedding-mean"

    def reduce(self, output, batch: Batch) -> torch.Tensor:
        hidden = output.last_hidden_state.float()
        return reduce(hidden, batch.attention_mask.to(hidden.device), "mean", "the output", batch.indices)

    def columns(self, subject) -> int | None:
        return subject.hidden_size


def default_readout(subject):
    """What ``subject``'s output says without being asked about particular tokens (None: an encoder)."""
    return {"classifier": ClassifierLogits(), "causal-lm": LastTokenLogits()}.get(subject.kind)


def readout_for(subject, candidates: Sequence[int] | None = None):
    """The readout label checks use on ``subject``; a causal LM needs the candidate token ids."""
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


def answer_token_ids(subject, tokens: Sequence[str | int] | None, owner: str = "the check") -> list[int] | None:
    """Token ids of answers given as ids or as text (``" yes"``: encoded without special tokens,
    exactly one token each); ``owner`` names who asked, for the error."""
    if tokens is None:
        return None
    ids = []
    for token in tokens:
        if isinstance(token, int):
            ids.append(token)
            continue
        if subject.tokenizer is None:
            raise ConceptError(f"{owner} names answer tokens as text; {subject.id!r} has no tokenizer")
        pieces = subject.tokenizer(token, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            raise ConceptError(f"answer token {token!r} of {owner} is {len(pieces)} tokens for "
                               f"{subject.id!r}; each answer must be exactly one token")
        ids.append(pieces[0])
    return ids


def predictions(scores: torch.Tensor) -> torch.Tensor:
    """The predicted class of each example ([n])."""
    return scores.argmax(dim=1)


def logit_margin(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Score of the true label minus the best other score ([n]); for two classes the logit difference."""
    labels = labels.long()
    true = scores.gather(1, labels[:, None]).squeeze(1)
    others = scores.clone()
    others.scatter_(1, labels[:, None], float("-inf"))
    return true - others.max(dim=1).values
