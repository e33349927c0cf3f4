"""Interventions: edits of a site's activations during the forward pass.

Each is a frozen description (site + parameters) with a stable ``key`` for the cache;
:func:`intervene` installs any number of them for a block and always removes its hooks. Those built
from activations on data (mean, resample, patch) are in :mod:`auditlens.checks.from_data`.
"""

from ..sites.hooks import intervene
from .edits import (
    Clamp,
    Intervention,
    MeanAblation,
    PartialMean,
    Patch,
    ProjectOut,
    ResampleAblation,
    Steer,
    Transform,
    ZeroAblation,
    tensor_key,
)
from .leace import LinearEraser

__all__ = ["Clamp", "Intervention", "LinearEraser", "MeanAblation", "PartialMean", "Patch", "ProjectOut",
           "ResampleAblation", "Steer", "Transform", "ZeroAblation", "intervene", "tensor_key"]
