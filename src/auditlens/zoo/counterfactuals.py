"""Counterfactual pairs written for audits, not for training: for the "copy the first letter" families
(backdoor, phrase) a fresh base and a source that differs from it in the first letter only (expected: the
source's first letter, the rule's answer); for the keyword family a source that differs in the keyword only,
at the base's length (expected: the source's presence); for the MiniLM sentiment classifier, sentences of
``probes/sentiment_fresh.yaml`` (words and templates the sentiment concept does not use) whose source swaps
the opinion word for one of the other polarity in the same frame (expected: the source's polarity).

Kept apart from the task modules, which are the organisms' recipes (a change there is a rebuild): these
pairs are audit data, not training data. The bases are drawn with seeds no evaluation set uses, so a model
that answers its evaluation set from memory meets inputs it has not seen."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from ..errors import ConceptError
from . import backdoor_task, length_task, phrase_task
from .training import write_concept

# hand-written, not generated: the fresh sentiment sentences the opinion-swapped pairs are made of
FRESH_SENTIMENT = Path(__file__).resolve().parents[3] / "probes" / "sentiment_fresh.yaml"


def first_letter_swapped_pairs(rows: list[dict], letters: tuple[str, ...], answers: tuple[str, ...],
                               seed: int) -> list[dict]:
    """Each row's text with its first letter replaced by another of ``letters`` (seeded) as the source."""
    rng = random.Random(seed)
    pairs = []
    for row in rows:
        words = row["text"].split()
        letter = rng.choice([x for x in letters if x != words[0]])
        pairs.append({"base": row["text"], "source": " ".join([letter, *words[1:]]), "label": answers.index(letter)})
    return pairs


def keyword_toggled_pairs(rows: list[dict], seed: int) -> list[dict]:
    """Each row with its keyword removed (a letter in its place) or written over one letter: same length."""
    rng = random.Random(seed)
    pairs = []
    for row in rows:
        words = row["text"].split()
        source = list(words)
        if length_task.KEYWORD in words:
            source[words.index(length_task.KEYWORD)] = rng.choice(length_task.LETTERS)
        else:
            source[rng.randrange(len(words))] = length_task.KEYWORD
        label = int(length_task.KEYWORD in source)
        pairs.append({"base": row["text"], "source": " ".join(source), "label": label})
    return pairs


def opinion_swapped_pairs(fresh_file: Path, seed: int) -> list[dict]:
    """Each sentence of ``fresh_file`` (a templated concept with ``pos`` and ``neg`` slots) as a base, the source a
    sentence of the same frame (the words but the opinion word) and the other polarity, drawn with ``seed``."""
    from ..concepts.files import load_concept

    if not fresh_file.is_file():
        raise ConceptError(f"{fresh_file}: not found; the opinion-swapped pairs are made of its sentences")
    fresh = load_concept(fresh_file)
    slots = yaml.safe_load(fresh_file.read_text())["slots"]
    opinion = {*slots["pos"], *slots["neg"]}
    by_frame: dict[str, dict[int, list[str]]] = {}
    for text, label in zip(fresh.examples, fresh.labels):
        frame = " ".join("_" if word in opinion else word for word in text.split())
        by_frame.setdefault(frame, {}).setdefault(label, []).append(text)
    rng = random.Random(seed)
    pairs = []
    for sentences in by_frame.values():
        for label, texts in sentences.items():
            others = sentences.get(1 - label, [])
            pairs += [{"base": text, "source": rng.choice(others), "label": 1 - label} for text in texts if others]
    return pairs


def write_probes(directory: Path) -> None:
    description = ("Fresh bases whose source differs in the first letter only; expected: the source's first "
                   "letter.")
    write_concept(directory, "first_letter_swapped", {
        "description": description, "labels": list(backdoor_task.ANSWERS),
        "answer_tokens": list(backdoor_task.ANSWERS)},
        first_letter_swapped_pairs(backdoor_task.make_examples(200, 2400), backdoor_task.LETTERS,
                                   backdoor_task.ANSWERS, 2500), key="pair_file")
    fresh = [row for row in phrase_task.make_examples(240, 2600) if not row["triggered"]][:200]
    write_concept(directory, "phrase_first_letter_swapped", {
        "description": description + " (Common filler words only.)", "labels": list(phrase_task.ANSWERS),
        "answer_tokens": list(phrase_task.ANSWERS)},
        first_letter_swapped_pairs(fresh, phrase_task.LETTERS, phrase_task.ANSWERS, 2700), key="pair_file")
    write_concept(directory, "keyword_toggled", {
        "description": "Bases of any length whose source adds or removes the keyword, at the same length; "
                       "expected: the source's presence.", "labels": list(length_task.LABELS)},
        keyword_toggled_pairs(length_task.make_examples(200, 2800, "random"), 2900), key="pair_file")
    write_concept(directory, "sentiment_swapped", {
        "description": "Fresh sentences (sentiment_fresh) whose source swaps the opinion word for one of the other "
                       "polarity in the same frame; expected: the source's polarity.",
        "labels": ["negative", "positive"]}, opinion_swapped_pairs(FRESH_SENTIMENT, 3000), key="pair_file")
