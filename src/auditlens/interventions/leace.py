"""LEACE (Belrose et al. 2023) fitted with ``concept-erasure``, as an object a Transform can apply."""

from __future__ import annotations

import warnings

import torch

with warnings.catch_warnings():  # concept-erasure scripts a helper with the deprecated torch.jit
    warnings.simplefilter("ignore", DeprecationWarning)
    from concept_erasure import LeaceEraser, LeaceFitter

from ..errors import CheckError
from .edits import tensor_key


class LinearEraser:
    """A fitted LEACE eraser ([..., d] -> [..., d]) that makes a concept's labels linearly unpredictable.

    ``key`` identifies the fitted projection (the cache key of a Transform that applies it); the
    eraser follows the activations to their device (GPU, sharded models), computing in float64.
    """

    def __init__(self, eraser: LeaceEraser):
        self.eraser_ = eraser
        self.key = "leace:" + tensor_key(torch.cat([eraser.proj_left.flatten(), eraser.proj_right.flatten(),
                                                    eraser.bias.flatten()]))
        self._on_device = {eraser.proj_left.device: eraser}

    @classmethod
    def fit(cls, features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> LinearEraser:
        """Fit on ``features`` [n, d] and class ``labels`` [n] in 0..n_classes-1, on the features' device
        (a GPU's, where the activations were kept there)."""
        if features.ndim != 2 or labels.shape != features.shape[:1]:
            raise CheckError(f"LEACE is fitted on one vector per example, features [n, d] with labels [n]; got "
                             f"features {tuple(features.shape)} and labels {tuple(labels.shape)}")
        fitter = LeaceFitter(features.shape[1], n_classes, dtype=torch.float64, device=features.device)
        one_hot = torch.nn.functional.one_hot(labels.to(features.device), n_classes)
        fitter.update(features.double(), one_hot.double())
        return cls(fitter.eraser)

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        if h.device not in self._on_device:
            e = self.eraser_
            self._on_device[h.device] = LeaceEraser(e.proj_left.to(h.device), e.proj_right.to(h.device),
                                                    None if e.bias is None else e.bias.to(h.device))
        return self._on_device[h.device](h.double()).to(h.dtype)

    def __repr__(self) -> str:
        return f"LinearEraser({self.key})"
