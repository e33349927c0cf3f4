"""Sparse dictionaries (SAEs and transcoders): read SAELens and sparsify folders, write SAELens,
train a TopK SAE, and map a file's hook name to an auditlens site."""

from .dictionary import Dictionary
from .errors import DictionaryError
from .hook_names import site_for_hook
from .load import load_dictionary
from .recovery import max_cosine_recovery
from .saelens import save_saelens
from .train import TrainingStats, train_topk

__all__ = ["Dictionary", "DictionaryError", "TrainingStats", "load_dictionary", "max_cosine_recovery",
           "save_saelens", "site_for_hook", "train_topk"]
