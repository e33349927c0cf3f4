"""Inputs: a tokenized, right-padded batch of examples with a content hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch

from .errors import ConceptError


@dataclass(frozen=True, eq=False)
class Inputs:
    """``input_ids`` and ``attention_mask`` of shape [n, t], right-padded; ``texts`` for evidence."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    texts: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.input_ids.ndim != 2 or self.input_ids.shape != self.attention_mask.shape:
            raise ConceptError(
                f"input_ids and attention_mask must both be [n, t]; got {tuple(self.input_ids.shape)} "
                f"and {tuple(self.attention_mask.shape)}"
            )

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @cached_property
    def digest(self) -> str:
        """A hash of the token ids and mask: two Inputs with equal digests give equal activations."""
        h = hashlib.blake2b(digest_size=16)
        for tensor in (self.input_ids, self.attention_mask):
            h.update(str(tuple(tensor.shape)).encode())
            h.update(tensor.to(torch.int64).contiguous().numpy().tobytes())
        return h.hexdigest()

    @property
    def lengths(self) -> torch.Tensor:
        return self.attention_mask.sum(dim=1)

    def select(self, indices: Sequence[int] | torch.Tensor) -> Inputs:
        index = torch.as_tensor(indices, dtype=torch.long)
        texts = None if self.texts is None else tuple(self.texts[i] for i in index.tolist())
        return Inputs(self.input_ids[index], self.attention_mask[index], texts)

    def batches(self, size: int) -> Iterator[tuple[torch.Tensor, Inputs]]:
        """(global example indices, sub-batch) pairs, in order; each sub-batch cut to its longest example."""
        for start in range(0, len(self), size):
            index = torch.arange(start, min(start + size, len(self)))
            width = max(int(self.lengths[index].max()), 1)
            yield index, Inputs(self.input_ids[index, :width], self.attention_mask[index, :width])

    def describe(self, index: int) -> str:
        """One example as text when known, else as token ids (for failure messages)."""
        if self.texts is not None:
            return self.texts[index]
        length = int(self.lengths[index])
        return " ".join(str(t) for t in self.input_ids[index, :length].tolist())


def pad_token_lists(sequences: Sequence[Sequence[int]], pad_id: int, texts=None) -> Inputs:
    """Right-pad lists of token ids into Inputs."""
    if len(sequences) == 0:
        raise ConceptError("no inputs: the dataset is empty")
    empty = [i for i, s in enumerate(sequences) if len(s) == 0]
    if empty:
        raise ConceptError(f"inputs {empty[:5]} have no tokens; every example needs at least one")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        try:
            ids[row, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
        except (RuntimeError, OverflowError, TypeError, ValueError):
            raise ConceptError(f"input {row} holds a token id that is not a whole number from 0 to 2**63 - 1: "
                               f"{list(seq)[:8]}") from None
        mask[row, : len(seq)] = 1
    return Inputs(ids, mask, None if texts is None else tuple(texts))
