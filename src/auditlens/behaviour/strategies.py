"""Hypothesis strategies for model inputs and their perturbations. Inputs are whitespace-separated
text; every strategy shrinks toward short inputs and the first entries of its word lists.

A *perturbation* is a function ``text -> SearchStrategy[str]``: the perturbed versions of one input.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence

from hypothesis import strategies as st

from ..errors import CheckError

Perturbation = Callable[[str], st.SearchStrategy]
AUXILIARIES = ("is", "was", "are", "were", "do", "does", "did", "can", "will", "has", "have")


def vocabulary_of(subject, exclude: Sequence[str] = ()) -> list[str]:
    """The tokenizer's ordinary tokens (no special tokens, no word pieces), sorted by id."""
    if subject.tokenizer is None:
        raise CheckError(f"{subject.id!r} has no tokenizer: there is no vocabulary to draw words from")
    special = set(subject.tokenizer.all_special_tokens) | set(exclude)
    vocabulary = subject.tokenizer.get_vocab()
    words = [t for t, _ in sorted(vocabulary.items(), key=lambda kv: kv[1])
             if t not in special and not t.startswith("##") and t.strip()]
    if not words:
        raise CheckError(f"{subject.id!r}: every token of the vocabulary was excluded")
    return words


def token_sequences(words: Sequence[str], min_size: int = 1, max_size: int = 12) -> st.SearchStrategy:
    """Sequences of ``words`` (e.g. ``vocabulary_of(subject)``), joined by spaces."""
    if not words:
        raise CheckError("token_sequences needs at least one word")
    return st.lists(st.sampled_from(list(words)), min_size=min_size, max_size=max_size).map(" ".join)


def templated_text(template: str, slots: Mapping[str, Sequence[str]]) -> st.SearchStrategy:
    """``template`` with each ``{slot}`` filled from its lexicon (CheckList templates)."""
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    missing = [f for f in fields if not slots.get(f)]
    if missing:
        raise CheckError(f"template {template!r} uses slot {{{missing[0]}}}, which has no fillers; "
                         f"slots given: {sorted(slots)}")
    return st.fixed_dictionaries({f: st.sampled_from(list(slots[f])) for f in fields}).map(
        lambda fill: template.format(**fill))


def from_concept(concept) -> st.SearchStrategy:
    """The concept's examples (text), drawn with replacement; shrinks toward the first example."""
    texts = [e for e in concept.examples if isinstance(e, str)]
    if not texts:
        raise CheckError(f"concept {concept.name!r} has no text examples to draw from")
    return st.sampled_from(texts)


def _words(text: str) -> list[str]:
    return text.split()


def swap_words(mapping: Mapping[str, str]) -> Perturbation:
    """Replace every word found in ``mapping`` by its image (e.g. a nuisance marker swap)."""
    mapping = dict(mapping)
    return lambda text: st.just(" ".join(mapping.get(w, w) for w in _words(text)))


def insert_words(words: Sequence[str], min_count: int = 1, max_count: int = 1,
                 keep_last: int = 0) -> Perturbation:
    """Insert ``min_count``..``max_count`` words from ``words`` at positions drawn among the first
    ``len - keep_last`` gaps (a distractor; ``keep_last`` protects e.g. a final '=')."""
    words = list(words)

    def perturb(text):
        tokens = _words(text)
        slots = max(len(tokens) - keep_last, 0)
        insertion = st.tuples(st.integers(0, slots), st.sampled_from(words))
        return st.lists(insertion, min_size=min_count, max_size=max_count).map(
            lambda inserts: " ".join(_insert(tokens, inserts)))

    return perturb


def _insert(tokens, inserts):
    out = list(tokens)
    for position, word in sorted(inserts, reverse=True):
        out.insert(position, word)
    return out


def substitute_words(words: Sequence[str], keep_first: int = 0, keep_last: int = 0) -> Perturbation:
    """Overwrite one token, outside the first ``keep_first`` and last ``keep_last``, with a word from
    ``words`` (a single-token edit that keeps the length; e.g. a trigger scan)."""
    words = list(words)

    def perturb(text):
        tokens = _words(text)
        positions = list(range(keep_first, len(tokens) - keep_last))
        if not positions:
            return st.just(text)
        return st.tuples(st.sampled_from(positions), st.sampled_from(words)).map(
            lambda choice: " ".join(tokens[: choice[0]] + [choice[1]] + tokens[choice[0] + 1:]))

    return perturb


def replace_words(targets: Sequence[str], replacements: Sequence[str]) -> Perturbation:
    """Replace one occurrence of a word from ``targets`` by one of ``replacements`` (change a name)."""
    targets, replacements = set(targets), list(replacements)

    def perturb(text):
        tokens = _words(text)
        where = [i for i, w in enumerate(tokens) if w in targets]
        if not where:
            return st.just(text)
        return st.tuples(st.sampled_from(where), st.sampled_from(replacements)).map(
            lambda choice: " ".join(tokens[: choice[0]] + [choice[1]] + tokens[choice[0] + 1:]))

    return perturb


def rewrite(paraphrases: Mapping[str, Sequence[str]]) -> Perturbation:
    """Paraphrase by template: a phrase found in the text becomes one of its alternatives."""
    table = {phrase: list(alternatives) for phrase, alternatives in paraphrases.items()}

    def perturb(text):
        found = [p for p in table if re.search(rf"\b{re.escape(p)}\b", text)]
        if not found:
            return st.just(text)
        return st.sampled_from(found).flatmap(lambda phrase: st.sampled_from(table[phrase]).map(
            lambda alternative: re.sub(rf"\b{re.escape(phrase)}\b", alternative, text, count=1)))

    return perturb


def add_negation() -> Perturbation:
    """'the film was good' -> 'the film was not good' (after the first auxiliary verb)."""
    def perturb(text):
        tokens = _words(text)
        for i, word in enumerate(tokens):
            if word in AUXILIARIES and (i + 1 == len(tokens) or tokens[i + 1] != "not"):
                return st.just(" ".join(tokens[: i + 1] + ["not"] + tokens[i + 1:]))
        return st.just(text)

    return perturb


def remove_negation() -> Perturbation:
    """'the film was not good' -> 'the film was good'."""
    return lambda text: st.just(re.sub(r"\s+not\b", "", text, count=1))


def check_perturbation(perturb, check: str) -> None:
    """A perturbation takes one text; a factory passed uncalled (``add_negation``) is named, not run."""
    import inspect

    name = getattr(perturb, "__name__", type(perturb).__name__)
    if not callable(perturb):
        raise CheckError(f"{check}: perturb must be a perturbation (text -> strategy), such as swap_words({{...}}) "
                         f"or add_negation(); got {name}")
    try:
        inspect.signature(perturb).bind("text")
    except TypeError:
        raise CheckError(f"{check}: perturb={name} does not take a text; is it a factory? Call it: "
                         f"perturb={name}(...)") from None
    except ValueError:  # no signature to read (a builtin): let it run
        return


def pairs(inputs: st.SearchStrategy, perturb: Perturbation) -> st.SearchStrategy:
    """(input, perturbed input) pairs."""
    return inputs.flatmap(lambda text: perturb(text).map(lambda changed: (text, changed)))
