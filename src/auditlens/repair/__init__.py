"""Model medicine: fold an audit's edits (ablations, projections, LEACE erasure) into a copy of the model's
weights and export it as a plain transformers model that needs no auditlens at run time."""

from .export import FoldedEdit, HookedEdit, RepairedModel
from .fold import repair
from .options import RepairOptions

__all__ = ["FoldedEdit", "HookedEdit", "RepairOptions", "RepairedModel", "repair"]
