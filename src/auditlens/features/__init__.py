"""Dictionary features for the audits: what a latent reads (its top-activating examples among the
audit's concepts) and dictionaries fitted to a model of one's own (a TopK SAE trained on a site's
activations, cached per model and site). Naming and attaching feature sites is part of ``sites``."""

from .examples import feature_examples
from .fit import Evaluation, cached_dictionary, cached_directory, evaluate, fit_dictionary

__all__ = ["Evaluation", "cached_dictionary", "cached_directory", "evaluate", "feature_examples", "fit_dictionary"]
