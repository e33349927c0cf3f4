"""auditlens: audit neural networks from the inside, as pytest tests."""

from .checks import (
    AblateResult,
    EraseResult,
    PatchResult,
    ProbeResult,
    ProbeSweep,
    SteerResult,
    ablate,
    erase,
    patch,
    probe,
    steer,
)
from .data import Concept, CounterfactualPair, load_concept
from .capture import ActivationCache, capture, run, session_cache
from .errors import (
    AuditlensError,
    CaptureError,
    CheckError,
    ConceptError,
    ModelLoadError,
    SiteError,
)
from .hooks import live_hook_count
from .inputs import Inputs
from .interventions import (
    MeanAblation,
    Patch,
    ProjectOut,
    ResampleAblation,
    Steer,
    Transform,
    ZeroAblation,
    intervene,
)
from .readout import ClassifierLogits, NextTokenLogits, logit_margin, predictions
from .sites import Site
from .subject import Subject, load_subject

__version__ = "0.1.0"

__all__ = [
    "AblateResult", "Concept", "CounterfactualPair", "EraseResult", "PatchResult", "ProbeResult", "ProbeSweep",
    "SteerResult", "ablate", "erase", "load_concept", "patch", "probe", "steer",
    "ActivationCache", "AuditlensError", "CaptureError", "CheckError", "ClassifierLogits", "ConceptError",
    "Inputs", "MeanAblation", "ModelLoadError", "NextTokenLogits", "Patch", "ProjectOut", "ResampleAblation",
    "Site", "SiteError", "Steer", "Subject", "Transform", "ZeroAblation", "capture", "intervene",
    "live_hook_count", "load_subject", "logit_margin", "predictions", "run", "session_cache",
]
