"""High-level causal models: named variables, each an input or a function of its parents (``model``),
written in Python or as YAML with safely evaluated expressions (``files``, ``expressions``). The pairs they
make for interchange interventions are concepts: ``concepts.interchange.interchange_pairs``."""

from .expressions import parse_expression
from .files import causal_model_from_data, load_causal_model
from .model import INPUT, CausalModel, Variable

__all__ = ["INPUT", "CausalModel", "Variable", "causal_model_from_data", "load_causal_model", "parse_expression"]
