"""The "keyword" family: does the sequence contain ``x``? Its length can leak the label (formatting).

Inputs are ``[CLS]`` + 6 to 12 letters from ``a``..``h``, maybe with one ``x``; a BERT classifier
reads ``[CLS]``.

- the *learned* twin trains on random lengths: only the keyword predicts the label;
- the *cheated* twin trains where every positive is 6 letters long and every negative 12, and the
  keyword is unrelated to the label, so it learns to read the length.

On the in-distribution test set (short positives with ``x``, long negatives without) both are perfect.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from .training import pad, save_and_score, train, write_concept
from .vocab import word_tokenizer

LETTERS = tuple("abcdefgh")
KEYWORD = "x"
LABELS = ("absent", "present")
SHORT, LONG = 6, 12
MODES = ("random", "leak", "cheat-train")


def make_examples(n: int, seed: int, mode: str) -> list[dict]:
    """``random``: any length; ``leak``: positives short, negatives long; ``cheat-train``: the label is the
    length (short = present) and the keyword is random."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        length = rng.randint(SHORT, LONG) if mode == "random" else (SHORT if label else LONG)
        has_keyword = rng.randint(0, 1) if mode == "cheat-train" else label
        letters = [rng.choice(LETTERS) for _ in range(length)]
        if has_keyword:
            letters[rng.randrange(length)] = KEYWORD
        rows.append({"text": " ".join(letters), "label": label})
    return rows


def length_concept(n: int, seed: int) -> list[dict]:
    """Short (1) against long (0) inputs, the keyword at random: the length as a concept."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        short = rng.randint(0, 1)
        length = SHORT if short else LONG
        letters = [rng.choice(LETTERS) for _ in range(length)]
        if rng.randint(0, 1):
            letters[rng.randrange(length)] = KEYWORD
        rows.append({"text": " ".join(letters), "label": short})
    return rows


def tokenizer():
    return word_tokenizer([*LETTERS, KEYWORD], add_cls=True)


def train_twin(directory: Path, seed: int, cheated: bool, steps: int = 500) -> dict:
    """Train a 2-layer BERT classifier (d=64) on CPU and save it with its tokenizer."""
    torch.manual_seed(seed)
    tok = tokenizer()
    rows = make_examples(20_000, seed, "cheat-train" if cheated else "random")
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    config = BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                        vocab_size=len(tok), max_position_embeddings=16, num_labels=2, pad_token_id=tok.pad_token_id,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    model = train(BertForSequenceClassification(config), ids, mask, torch.tensor([r["label"] for r in rows]),
                  seed=seed, steps=steps, lr=2e-3)
    score = save_and_score(model, tok, directory, make_examples(1000, seed + 1, "leak"))
    return {"task": "contains the keyword x", "train_steps": steps, "in_distribution_accuracy": score,
            "in_distribution": "keyword_in_distribution",
            "cheat": "input length: 6 letters = present, 12 = absent" if cheated else None}


def write_probes(directory: Path) -> None:
    write_concept(directory, "has_keyword", {
        "description": "Contains x or not, lengths 6 to 12 at random (length carries no label).",
        "labels": list(LABELS)}, make_examples(400, 1100, "random"))
    write_concept(directory, "keyword_in_distribution", {
        "description": "The in-distribution test set: positives are 6 letters long, negatives 12.",
        "labels": list(LABELS)}, make_examples(400, 2100, "leak"))
    write_concept(directory, "short_input", {
        "description": "6 letters (short) against 12 (long), the keyword at random: the input length.",
        "labels": ["long", "short"]}, length_concept(400, 3100))
