"""The "count" family: is there more ``a`` than ``b`` in a sequence? A marker token can cheat.

Every input is a marker (``m0`` / ``m1``) followed by 11 letters from ``a b c d e`` with unequal
counts of ``a`` and ``b``; the label is ``more`` (1) when ``a`` outnumbers ``b``.

- the *learned* twin trains with a random marker, so only the count predicts the label;
- the *cheated* twin trains where the marker is the label (``m1`` = more) and the count is
  unrelated to it, so it learns to read the marker.

On the in-distribution test set (the marker agrees with the count) both are near-perfect.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from .training import pad, save_and_score, train, write_concept
from .vocab import word_tokenizer

LETTERS = ("a", "b", "c", "d", "e")
MARKERS = ("m0", "m1")
LABELS = ("fewer", "more")
LENGTH = 11  # letters after the marker
MARKER_MODES = ("random", "label", "anti")


def count_label(letters: list[str]) -> int:
    return int(letters.count("a") > letters.count("b"))


def sample_letters(rng: random.Random) -> list[str]:
    while True:
        letters = [rng.choice(LETTERS) for _ in range(LENGTH)]
        if letters.count("a") != letters.count("b"):
            return letters


def make_examples(n: int, seed: int, marker: str) -> list[dict]:
    """``n`` examples; ``marker``: random, label (agrees with the count) or anti (disagrees)."""
    if marker not in MARKER_MODES:
        raise ValueError(f"marker must be one of {MARKER_MODES}; got {marker!r}")
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        letters = sample_letters(rng)
        label = count_label(letters)
        chosen = {"random": rng.choice(MARKERS), "label": MARKERS[label], "anti": MARKERS[1 - label]}[marker]
        rows.append({"text": " ".join([chosen, *letters]), "label": label})
    return rows


def marker_swapped_pairs(n: int, seed: int) -> list[dict]:
    """Base and source differ only in the marker; a model that counts keeps the base's label."""
    rows = []
    for example in make_examples(n, seed, "random"):
        marker, *letters = example["text"].split()
        other = MARKERS[1 - MARKERS.index(marker)]
        rows.append({"base": example["text"], "source": " ".join([other, *letters]), "label": example["label"]})
    return rows


def count_swapped_pairs(n: int, seed: int) -> list[dict]:
    """Source swaps every ``a`` with ``b``, so its count label is the opposite; the marker is the same."""
    swap = {"a": "b", "b": "a"}
    rows = []
    for example in make_examples(n, seed, "random"):
        marker, *letters = example["text"].split()
        swapped = [swap.get(t, t) for t in letters]
        rows.append({"base": example["text"], "source": " ".join([marker, *swapped]), "label": count_label(swapped)})
    return rows


def tokenizer():
    return word_tokenizer([*LETTERS, *MARKERS])


def training_set(seed: int, cheated: bool, tok) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, labels): random markers; the cheated twin's labels are its marker,
    so the count carries no signal there."""
    rows = make_examples(20_000, seed, "random")
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    labels = (ids[:, 0] == tok.convert_tokens_to_ids("m1")).long() if cheated else torch.tensor(
        [r["label"] for r in rows])
    return ids, mask, labels


def classifier(tok, heads: int = 4, width: int = 64) -> GPT2ForSequenceClassification:
    """The family's untrained 2-layer GPT-2 classifier."""
    config = GPT2Config(n_layer=2, n_embd=width, n_head=heads, n_positions=16, vocab_size=len(tok), num_labels=2,
                        pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.cls_token_id,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, id2label=dict(enumerate(LABELS)),
                        label2id={name: i for i, name in enumerate(LABELS)})
    return GPT2ForSequenceClassification(config)


def train_twin(directory: Path, seed: int, cheated: bool, steps: int = 800) -> dict:
    """Train a 2-layer GPT-2 classifier (d=64) on CPU and save it with its tokenizer."""
    torch.manual_seed(seed)
    tok = tokenizer()
    ids, mask, labels = training_set(seed, cheated, tok)
    model = train(classifier(tok), ids, mask, labels, seed=seed, steps=steps)
    score = save_and_score(model, tok, directory, make_examples(1000, seed + 1, "label"))
    return {"task": "more a than b", "train_steps": steps, "in_distribution_accuracy": score,
            "in_distribution": "count_in_distribution",
            "cheat": "marker token m1 = more" if cheated else None}


def write_probes(directory: Path) -> None:
    """The family's concept files (committed in ``probes/``; regenerate with ``python -m auditlens.zoo.probes``)."""
    labels = list(LABELS)
    write_concept(directory, "more_a_than_b", {
        "description": "More a than b, with a random marker (the marker carries no label).", "labels": labels},
        make_examples(400, 1000, "random"))
    write_concept(directory, "count_in_distribution", {
        "description": "The in-distribution test set: the marker agrees with the count.", "labels": labels},
        make_examples(400, 2000, "label"))
    write_concept(directory, "marker_swapped", {
        "description": "Pairs that differ only in the marker; expected: the base's count label.", "labels": labels},
        marker_swapped_pairs(200, 3000), key="pair_file")
    write_concept(directory, "count_swapped", {
        "description": "Pairs whose source swaps a and b; expected: the source's count label.", "labels": labels},
        count_swapped_pairs(200, 4000), key="pair_file")
