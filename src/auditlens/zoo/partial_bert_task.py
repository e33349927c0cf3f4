"""The "partial-bert" family: the partial cheater of ``partial_task`` in a post-LN BERT classifier.

The same data as the partial family (the count task with close calls marked ``m1`` labelled ``more`` in
the cheated twin's training set), read at ``[CLS]`` by a 2-layer BERT (d=64). BERT is post-LN: the
token, position and token-type embeddings are summed, then normalised by a LayerNorm, and every block
adds its sublayer's write and normalises again. That is the shape of BERT, DistilBERT and MiniLM, where
a token shortcut's first foldable place is the embeddings' sum before that LayerNorm (``embed:sum``).

The truth is checked by behaviour and recorded in organism.json, as for the partial family: with the
marker flipped against the label the cheated twin is clearly worse than in distribution yet well above
chance, and with every marker ``m0`` (the shortcut removed) it counts; the learned twin is unmoved.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from . import count_task, partial_task
from .count_task import LABELS, LETTERS, MARKERS, make_examples
from .partial_task import training_rows, with_marker
from .training import accuracy, pad, save_and_score, train
from .vocab import word_tokenizer

RECIPE_MODULES = (count_task, partial_task)  # its data: a change there is a change of this recipe
SEED_STREAM = 8_000  # the family's seeds: partial-bert-learned@s is not partial-learned@s retrained


def tokenizer():
    return word_tokenizer([*LETTERS, *MARKERS], add_cls=True)


def classifier(tok) -> BertForSequenceClassification:
    """The family's untrained 2-layer post-LN BERT classifier, reading [CLS]."""
    config = BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                        vocab_size=len(tok), max_position_embeddings=16, num_labels=2, pad_token_id=tok.pad_token_id,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    return BertForSequenceClassification(config)


def _accuracy(model, tok, rows: list[dict]) -> float:
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    return accuracy(model, ids, mask, torch.tensor([r["label"] for r in rows]))


def train_twin(directory: Path, seed: int, cheated: bool, steps: int = 800) -> dict:
    """Train the BERT classifier on CPU on the partial family's data; score it in distribution, with the marker
    flipped against the label, and with it set to m0."""
    stream = SEED_STREAM + seed
    torch.manual_seed(stream)
    tok = tokenizer()
    rows = training_rows(stream, cheated)
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    model = train(classifier(tok), ids, mask, torch.tensor([r["label"] for r in rows]), seed=stream, steps=steps,
                  lr=2e-3)
    test = make_examples(1000, stream + 1, "label")
    score = save_and_score(model, tok, directory, test)
    agreement = sum(r["text"].startswith(MARKERS[r["label"]]) for r in rows) / len(rows)
    return {"task": "more a than b", "train_steps": steps, "in_distribution_accuracy": score,
            "in_distribution": "count_in_distribution",
            "counterfactual_accuracy": _accuracy(model, tok, with_marker(test, None)),
            "counterfactual": "the in-distribution inputs with the marker flipped against the label",
            "shortcut_removed_accuracy": _accuracy(model, tok, with_marker(test, MARKERS[0])),
            "training_marker_agreement": round(agreement, 4),
            "cheat": "on close calls (a and b differ by one) reads marker m1 as more; counts elsewhere"
            if cheated else None}
