"""How well a dictionary's decoder found known directions (planted features in synthetic data)."""

from __future__ import annotations

import torch

from .dictionary import Dictionary
from .errors import DictionaryError, describe


def max_cosine_recovery(planted: torch.Tensor, dictionary: Dictionary) -> float:
    """Mean over the rows of ``planted`` [m, d_out] of the best cosine similarity with any decoder row
    (signed: a latent's activation is non-negative, so a feature is found only with its own sign).
    1.0 means every planted direction is some decoder row; an unrelated random dictionary scores near 0."""
    if not isinstance(planted, torch.Tensor) or planted.ndim != 2 or planted.shape[0] == 0 \
            or planted.shape[1] != dictionary.d_out:
        shape = tuple(planted.shape) if isinstance(planted, torch.Tensor) else type(planted).__name__
        raise DictionaryError(f"planted directions must be a tensor [m >= 1, d_out={dictionary.d_out}] to compare "
                              f"with the decoder of {describe(dictionary.source)}; got {shape}")
    decoder = torch.nn.functional.normalize(dictionary.W_dec.detach().float().cpu(), dim=-1)
    directions = torch.nn.functional.normalize(planted.detach().float().cpu(), dim=-1)
    return float((directions @ decoder.T).max(dim=-1).values.mean())
