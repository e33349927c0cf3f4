"""auditlens: audit neural networks from the inside, as pytest tests."""

from .capture import capture, run
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
from .concepts import Concept, CounterfactualPair, load_concept
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
    LinearEraser,
    MeanAblation,
    Patch,
    ProjectOut,
    ResampleAblation,
    Steer,
    Transform,
    ZeroAblation,
    intervene,
)
from .loading import load_subject
from .readout import ClassifierLogits, NextTokenLogits, logit_margin, predictions
from .sites import Site
from .storage import ActivationStore
from .subject import Subject

__version__ = "0.1.0"

ActivationCache = ActivationStore  # the name before 0.2: an LRU store, not TransformerLens' per-run cache

__all__ = [
    "AblateResult", "Concept", "CounterfactualPair", "EraseResult", "PatchResult", "ProbeResult", "ProbeSweep",
    "SteerResult", "ablate", "erase", "load_concept", "patch", "probe", "steer",
    "ActivationCache", "ActivationStore", "AuditlensError", "CaptureError", "CheckError", "ClassifierLogits",
    "ConceptError", "Inputs", "LinearEraser", "MeanAblation", "ModelLoadError", "NextTokenLogits", "Patch",
    "ProjectOut", "ResampleAblation", "Site", "SiteError", "Steer", "Subject", "Transform", "ZeroAblation",
    "capture", "intervene", "live_hook_count", "load_subject", "logit_margin", "predictions", "run",
    "session_cache",
]


def __getattr__(name: str):
    # ``session_cache``: the store capture uses by default (the running session's), made on first use
    if name == "session_cache":
        from .settings import default_store

        return default_store()
    raise AttributeError(f"module 'auditlens' has no attribute {name!r}")
