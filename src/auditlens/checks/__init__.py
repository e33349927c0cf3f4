"""The audit API: each check returns a frozen result with its evidence and an ``explain()``."""

from .ablate import AblateResult, ablate
from .attribute import AttributionResult, attribute
from .circuit import FaithfulnessResult, MinimalityResult, NecessityResult, faithfulness, minimality, necessity
from .das import DASResult, das, save_directions
from .das_sweep import DASSweep
from .erase import EraseResult, erase
from .patch import PatchResult, patch
from .probe import ProbeResult, ProbeSweep, probe
from .spurious import SpuriousRemovalResult, remove_spurious
from .steer import SteerResult, concept_direction, steer
from .tied import AblateTiedResult, ablate_tied, tied_units
from .trigger import TriggerResult, search_trigger

__all__ = ["AblateResult", "AttributionResult", "EraseResult", "FaithfulnessResult", "MinimalityResult",
           "NecessityResult", "PatchResult", "ProbeResult", "ProbeSweep", "SteerResult", "ablate", "attribute",
           "concept_direction", "erase", "faithfulness", "minimality", "necessity", "patch", "probe", "steer",
           "TriggerResult", "search_trigger", "AblateTiedResult", "ablate_tied", "tied_units", "SpuriousRemovalResult",
           "remove_spurious", "DASResult", "DASSweep", "das", "save_directions"]
