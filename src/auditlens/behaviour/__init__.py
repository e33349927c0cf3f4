"""Behavioural checks on generated inputs (CheckList's MFT, INV and DIR, driven by hypothesis)."""

from .checks import BehaviourResult, expect_direction, expect_invariant, expect_label
from .strategies import (
    add_negation,
    from_concept,
    insert_words,
    remove_negation,
    replace_words,
    rewrite,
    substitute_words,
    swap_words,
    templated_text,
    token_sequences,
    vocabulary_of,
)

__all__ = ["BehaviourResult", "add_negation", "expect_direction", "expect_invariant", "expect_label",
           "from_concept", "insert_words", "remove_negation", "replace_words", "rewrite", "substitute_words",
           "swap_words",
           "templated_text", "token_sequences", "vocabulary_of"]
