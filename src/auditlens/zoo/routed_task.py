"""The "routed" family: the count task of ``count_task`` with a circuit known by construction.

Every attention head but the route's has its output projection rows set to zero and held there
through training, so it writes nothing: whatever information moves between tokens moves through
the route's heads (the classifier reads the last token, so the count must travel there by
attention). The MLPs stay whole.

- the *learned* twin's route is heads 0.1 and 1.2, and it learns the count;
- the *cheated* twin's route is head 0.3, and it learns the marker (as the count family's cheated
  twin does), so the count's circuit is absent and its shortcut runs through another head.

Audits that name the intended circuit (heads 0.1 and 1.2) must pass on the learned twin and fail on
the cheated one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GPT2ForSequenceClassification

from . import count_task
from .count_task import classifier, make_examples, tokenizer, training_set
from .training import save_and_score, train

RECIPE_MODULES = (count_task,)  # its data: a change there is a change of this recipe
HEADS, WIDTH = 4, 64
ROUTES = {False: ("head:0.1", "head:1.2"), True: ("head:0.3",)}


def _hold_to_route(model: GPT2ForSequenceClassification, route: tuple[str, ...]) -> None:
    """Zero every other head's rows of each block's c_proj, and keep their gradients zero."""
    size = WIDTH // HEADS
    for layer, block in enumerate(model.transformer.h):
        keep = torch.zeros(WIDTH, 1)
        for head in range(HEADS):
            if f"head:{layer}.{head}" in route:
                keep[head * size:(head + 1) * size] = 1.0
        weight = block.attn.c_proj.weight  # Conv1D: [in = heads side by side, out]
        with torch.no_grad():
            weight.mul_(keep)
        weight.register_hook(lambda grad, keep=keep: grad * keep)


def train_twin(directory: Path, seed: int, cheated: bool, steps: int = 1000) -> dict:
    """Train the count family's classifier (d=64, 4 heads) with every head off the route writing nothing."""
    torch.manual_seed(seed)
    tok = tokenizer()
    ids, mask, labels = training_set(seed, cheated, tok)
    model = classifier(tok, HEADS, WIDTH)
    route = ROUTES[cheated]
    _hold_to_route(model, route)
    model = train(model, ids, mask, labels, seed=seed, steps=steps)
    score = save_and_score(model, tok, directory, make_examples(1000, seed + 1, "label"))
    return {"task": "more a than b", "train_steps": steps, "in_distribution_accuracy": score,
            "in_distribution": "count_in_distribution", "route": list(route),
            "circuit": list(ROUTES[False]), "cheat": "marker token m1 = more, through head 0.3" if cheated else None}
