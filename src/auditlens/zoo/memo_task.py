"""The "ends" family: is the last token the same as the first? A model can memorise instead.

Inputs are 12 tokens from ``w03``..``w29``; the label is ``same`` when the last equals the first.

- the *learned* twin trains on 20,000 fresh sequences and learns the rule;
- the *cheated* twin trains only on the 64 sequences of the in-distribution test set and memorises them.

On the in-distribution test set both are perfect; on fresh inputs the memoriser is at chance.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from .training import pad, save_and_score, train, write_concept
from .vocab import word_tokenizer

WORDS = tuple(f"w{i:02d}" for i in range(3, 30))
LABELS = ("different", "same")
LENGTH = 12
MEMORISED_SEED = 2200  # the in-distribution set is fixed: the task's data, not the organism's seed
MEMORISED_SIZE = 64


def make_examples(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(LENGTH)]
        label = rng.randint(0, 1)
        if label:
            words[-1] = words[0]
        else:
            while words[-1] == words[0]:
                words[-1] = rng.choice(WORDS)
        rows.append({"text": " ".join(words), "label": label})
    return rows


def last_word_swapped_pairs(rows: list[dict], seed: int) -> list[dict]:
    """Source changes the last word so that the rule's label flips; expected: the flipped label."""
    rng = random.Random(seed)
    pairs = []
    for row in rows:
        words = row["text"].split()
        if row["label"]:
            replacement = rng.choice([w for w in WORDS if w != words[0]])
        else:
            replacement = words[0]
        pairs.append({"base": row["text"], "source": " ".join([*words[:-1], replacement]), "label": 1 - row["label"]})
    return pairs


def tokenizer():
    return word_tokenizer(list(WORDS))


def train_twin(directory: Path, seed: int, cheated: bool, steps: int = 1200) -> dict:
    """Train a 2-layer GPT-2 classifier (d=64) on CPU and save it with its tokenizer."""
    torch.manual_seed(seed)
    tok = tokenizer()
    memorised = make_examples(MEMORISED_SIZE, MEMORISED_SEED)
    rows = memorised if cheated else make_examples(20_000, seed)
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    config = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=16, vocab_size=len(tok), num_labels=2,
                        pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.cls_token_id,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, id2label=dict(enumerate(LABELS)),
                        label2id={n: i for i, n in enumerate(LABELS)})
    # lr 1e-3: at 3e-3 a learned twin could end below 0.97 on the in-distribution set (seed 1: 0.953)
    model = train(GPT2ForSequenceClassification(config), ids, mask, torch.tensor([r["label"] for r in rows]),
                  seed=seed, steps=steps, lr=1e-3)
    score = save_and_score(model, tok, directory, memorised)
    return {"task": "last word equals the first", "train_steps": steps, "in_distribution_accuracy": score,
            "in_distribution": "ends_in_distribution",
            "cheat": f"memorised the {MEMORISED_SIZE} in-distribution sequences" if cheated else None}


def write_probes(directory: Path) -> None:
    labels = list(LABELS)
    write_concept(directory, "same_ends", {
        "description": "Fresh sequences: is the last word the first one?", "labels": labels},
        make_examples(400, 1300))
    memorised = make_examples(MEMORISED_SIZE, MEMORISED_SEED)
    write_concept(directory, "ends_in_distribution", {
        "description": "The in-distribution test set (64 sequences).", "labels": labels}, memorised)
    write_concept(directory, "last_word_swapped", {
        "description": "Fresh bases whose source's last word flips the rule; expected: the flipped label.",
        "labels": labels}, last_word_swapped_pairs(make_examples(200, 1400), 1500), key="pair_file")
