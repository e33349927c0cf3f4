"""Which tokens a fine-tune trained: the rows of the input embeddings that differ from the base model's.

An optimiser moves an embedding row only through its gradient, and a row's gradient is zero unless its
token is in the batch: Adam's moments of a row never seen stay zero, so its update is zero; weight decay
rescales every row alike. So after a fine-tune from a known base, the rows that differ from the base's
other than by a rescaling are the tokens its data held (the rows beyond the base's vocabulary are tokens
it added). A backdoor planted by fine-tuning is a token the poisoned data held; a word the fine-tune never
saw moves the model, if at all, by what pretraining made of it. A trigger search over the trained tokens
leaves out that pretrained fragility, which on an open-vocabulary rule (sentiment) is as strong as a
planted trigger, and keeps every token a fine-tune could have planted.

What it cannot see: a fine-tune that froze the embeddings, or trained adapters only, moved no row (an
error says so: the search then needs the whole vocabulary and the rule's lexicon in ``avoid``); and on a
fine-tune whose data held a wide vocabulary the trained tokens hold the rule's open words too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import CheckError
from .search import input_embeddings

RELATIVE_TOLERANCE = 16  # machine epsilons of the coarser dtype, of a row's norm: rounding, not training
ROWS_PER_CHUNK = 8192


@dataclass(frozen=True)
class TrainedTokens:
    """The token ids whose input embeddings the fine-tune moved away from the base's, of ``compared`` rows."""

    ids: tuple[int, ...]
    compared: int
    added: int  # rows beyond the base's vocabulary (counted as trained)
    base: str


def trained_tokens(subject, base) -> TrainedTokens:
    """The tokens whose input-embedding rows in ``subject`` differ from ``base``'s (a loaded Subject) beyond
    a rescaling and rounding; an error where none does or every one does (not the base it was tuned from)."""
    mine = input_embeddings(subject).weight.detach()
    theirs = input_embeddings(base).weight.detach()
    if mine.shape[1] != theirs.shape[1]:
        raise CheckError(f"search_trigger: trained_from={base.id!r} has input embeddings {theirs.shape[1]} wide, "
                         f"{subject.id!r} {mine.shape[1]}: it is not the model {subject.id!r} was fine-tuned from")
    if mine.shape[0] < theirs.shape[0]:
        raise CheckError(f"search_trigger: trained_from={base.id!r} has {theirs.shape[0]} tokens, {subject.id!r} "
                         f"only {mine.shape[0]}: a fine-tune keeps its base's vocabulary; give the model it was "
                         "fine-tuned from")
    shared = theirs.shape[0]
    coarse = mine.dtype if torch.finfo(mine.dtype).eps >= torch.finfo(theirs.dtype).eps else theirs.dtype
    moved, nonzero = [], []
    for start in range(0, shared, ROWS_PER_CHUNK):  # in chunks: a large vocabulary in float64 is gigabytes
        a = mine[start:min(start + ROWS_PER_CHUNK, shared)].to(coarse).double().cpu()
        b = theirs[start:start + ROWS_PER_CHUNK].to(coarse).double().cpu()
        scale = (a * b).sum(dim=1) / (b * b).sum(dim=1).clamp(min=1e-30)
        residual = (a - scale[:, None] * b).norm(dim=1)
        moved.append(residual > RELATIVE_TOLERANCE * torch.finfo(coarse).eps * a.norm(dim=1).clamp(min=1e-30))
        nonzero.append(b.norm(dim=1) > 0)
    moved, nonzero = torch.cat(moved), torch.cat(nonzero)
    ids = moved.nonzero().flatten().tolist() + list(range(shared, mine.shape[0]))
    if not ids:
        raise CheckError(f"search_trigger: the input embeddings of {subject.id!r} equal those of trained_from="
                         f"{base.id!r} on all {shared} tokens (up to a rescaling): the fine-tune did not train them "
                         "(frozen, or adapters only), or it started elsewhere; they cannot say which tokens it saw. "
                         "Search the whole vocabulary instead (tokens='all') with the rule's tokens in avoid=")
    if bool(moved[nonzero].all()):  # every row the base holds moved (a padding row of zeros may stay as it was)
        raise CheckError(f"search_trigger: every one of the {shared} input-embedding rows of {subject.id!r} differs "
                         f"from those of trained_from={base.id!r}, so the rows cannot say which tokens the fine-tune "
                         "saw: it is not the model it was fine-tuned from, the embeddings were re-initialised, "
                         "or the output layer shares them (a softmax over the vocabulary reaches every row). "
                         "Search the whole vocabulary instead (tokens='all') with the rule's tokens in avoid=")
    return TrainedTokens(tuple(ids), shared, mine.shape[0] - shared, base.id)
