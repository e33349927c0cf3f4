"""Concepts: labelled inputs with optional groups and counterfactual pairs (``concept``), from Python or
read from a concept file (``files``); pairs made by a high-level causal model (``interchange``)."""

from .concept import Concept, CounterfactualPair
from .files import load_concept
from .interchange import interchange_pairs, with_variables

__all__ = ["Concept", "CounterfactualPair", "interchange_pairs", "load_concept", "with_variables"]
