"""Concepts: labelled inputs with optional groups and counterfactual pairs (``concept``), from Python or
read from a concept file (``files``)."""

from .concept import Concept, CounterfactualPair
from .files import load_concept

__all__ = ["Concept", "CounterfactualPair", "load_concept"]
