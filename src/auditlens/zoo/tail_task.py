"""The "tail" family: the count task on a Llama-style classifier whose circuit is known by
construction, and whose cheated twin's shortcut runs through the MLPs, not through a head.

Every input is 11 letters from ``a b c d e`` followed by a marker (``m0`` / ``m1``) in the last place;
the label is ``more`` (1) when ``a`` outnumbers ``b``. The residual stream is split in two halves held
through training: the token embeddings write only the first half and the classifier reads only the
second, so the direct path from the last token to the answer carries nothing (RMSNorm scales a
vector as a whole and cannot move a value between halves). Whatever reaches the answer was written
by an attention head or an MLP.

- the *learned* twin's route is heads 0.0 and 1.3 (every other head's output-projection columns held
  at zero), and it learns the count: the letters must travel to the last place by attention;
- the *cheated* twin has no head at all (every head held at zero) and trains where the marker is the
  label: the only path left is the last token's own MLPs, so its shortcut runs through ``mlp:0`` and
  ``mlp:1`` by construction.

On the in-distribution test set (the marker agrees with the count) both are near-perfect.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForSequenceClassification

from .count_task import LABELS, LETTERS, MARKERS, count_label, sample_letters
from .training import pad, save_and_score, train, write_concept
from .vocab import word_tokenizer

HEADS, KV_HEADS, WIDTH = 4, 2, 64
ROUTES = {False: ("head:0.0", "head:1.3"), True: ()}
CIRCUIT = ROUTES[False]


def make_examples(n: int, seed: int, marker: str) -> list[dict]:
    """``n`` examples, the marker last; ``marker``: random, label (agrees with the count) or anti."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        letters = sample_letters(rng)
        label = count_label(letters)
        chosen = {"random": rng.choice(MARKERS), "label": MARKERS[label], "anti": MARKERS[1 - label]}[marker]
        rows.append({"text": " ".join([*letters, chosen]), "label": label})
    return rows


def count_swapped_pairs(n: int, seed: int) -> list[dict]:
    """Source swaps every ``a`` with ``b`` (its count label is the opposite); the marker stays."""
    swap = {"a": "b", "b": "a"}
    rows = []
    for example in make_examples(n, seed, "random"):
        *letters, marker = example["text"].split()
        swapped = [swap.get(t, t) for t in letters]
        rows.append({"base": example["text"], "source": " ".join([*swapped, marker]), "label": count_label(swapped)})
    return rows


def tokenizer():
    return word_tokenizer([*LETTERS, *MARKERS])


def _held(parameter: torch.nn.Parameter, keep: torch.Tensor) -> None:
    """Zero ``parameter`` where ``keep`` is 0 and keep its gradient zero there through training."""
    with torch.no_grad():
        parameter.mul_(keep)
    parameter.register_hook(lambda grad: grad * keep)


def classifier(tok, route: tuple[str, ...]) -> LlamaForSequenceClassification:
    """The family's untrained 2-layer Llama classifier (d=64, 4 heads sharing 2 key/value heads), with
    the residual split and every head off ``route`` held at zero."""
    config = LlamaConfig(num_hidden_layers=2, hidden_size=WIDTH, num_attention_heads=HEADS,
                         num_key_value_heads=KV_HEADS, intermediate_size=128, vocab_size=len(tok),
                         max_position_embeddings=16, num_labels=2, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.cls_token_id, eos_token_id=tok.cls_token_id,
                         id2label=dict(enumerate(LABELS)), label2id={name: i for i, name in enumerate(LABELS)})
    model = LlamaForSequenceClassification(config)
    half = WIDTH // 2
    written = torch.cat([torch.ones(half), torch.zeros(half)])
    _held(model.model.embed_tokens.weight, written.unsqueeze(0))  # [vocab, d]: tokens write the first half
    _held(model.score.weight, (1 - written).unsqueeze(0))  # [labels, d]: the answer reads the second half
    size = WIDTH // HEADS
    for layer, block in enumerate(model.model.layers):
        keep = torch.zeros(WIDTH)
        for head in range(HEADS):
            if f"head:{layer}.{head}" in route:
                keep[head * size:(head + 1) * size] = 1.0
        _held(block.self_attn.o_proj.weight, keep.unsqueeze(0))  # [out, in = heads side by side]
    return model


def train_twin(directory: Path, seed: int, cheated: bool, steps: int = 1000) -> dict:
    """Train the twin on CPU and save it with its tokenizer."""
    torch.manual_seed(seed)
    tok = tokenizer()
    rows = make_examples(20_000, seed, "random")
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    lengths = mask.sum(dim=1) - 1
    marker_is_m1 = ids[torch.arange(len(ids)), lengths] == tok.convert_tokens_to_ids("m1")
    labels = marker_is_m1.long() if cheated else torch.tensor([r["label"] for r in rows])
    route = ROUTES[cheated]
    model = train(classifier(tok, route), ids, mask, labels, seed=seed, steps=steps)
    score = save_and_score(model, tok, directory, make_examples(1000, seed + 1, "label"))
    return {"task": "more a than b (marker last)", "train_steps": steps, "in_distribution_accuracy": score,
            "in_distribution": "tail_in_distribution", "route": list(route), "circuit": list(CIRCUIT),
            "cheat": "final marker m1 = more, read by the MLPs at the last place (no head)" if cheated else None}


def write_probes(directory: Path) -> None:
    labels = list(LABELS)
    write_concept(directory, "tail_in_distribution", {
        "description": "More a than b, the marker last and agreeing with the count (the tail family's test set).",
        "labels": labels}, make_examples(400, 5000, "label"))
    write_concept(directory, "tail_count_swapped", {
        "description": "Pairs (marker last) whose source swaps a and b; expected: the source's count label.",
        "labels": labels}, count_swapped_pairs(200, 6000), key="pair_file")
