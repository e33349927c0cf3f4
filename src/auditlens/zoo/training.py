"""Deterministic CPU training loops shared by the zoo's families."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..inputs import pad_token_lists


@contextlib.contextmanager
def deterministic_training():
    """The same weights on every run on one kind of CPU: one thread (a reduction split over more
    threads sums in another order, and the weights drift apart over hundreds of steps) and deterministic
    kernels. Not across kinds: torch picks its CPU kernels by instruction set (AVX2, AVX-512), and their
    float results differ, which is why the builds the tests use are shipped in fixtures/.
    The caller's settings are restored after."""
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(strict, warn_only=warn_only)


def pad(rows: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists (as every audit input is padded): (input_ids, attention_mask)."""
    inputs = pad_token_lists(rows, pad_id)
    return inputs.input_ids, inputs.attention_mask


def train(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor, *, seed: int,
          steps: int, lr: float = 3e-3, batch: int = 128, next_token: bool = False) -> nn.Module:
    """AdamW on random minibatches drawn with ``seed``. ``next_token``: a causal LM's loss at the last real token."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        index = torch.randint(0, len(targets), (min(batch, len(targets)),), generator=generator)
        if next_token:
            logits = model(input_ids=ids[index], attention_mask=mask[index]).logits
            last = mask[index].sum(dim=1) - 1
            loss = nn.functional.cross_entropy(logits[torch.arange(len(index)), last], targets[index])
        else:
            loss = model(input_ids=ids[index], attention_mask=mask[index], labels=targets[index]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def accuracy(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor,
             next_token: bool = False) -> float:
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    if next_token:
        logits = logits[torch.arange(len(targets)), mask.sum(dim=1) - 1]
    return float((logits.argmax(dim=1) == targets).float().mean())


def save_and_score(model: nn.Module, tokenizer, directory, test_rows: list[dict],
                   targets: torch.Tensor | None = None, next_token: bool = False) -> float:
    """Save a trained organism and its tokenizer into ``directory``; return its accuracy on
    ``test_rows`` (their texts, against ``targets``, by default their labels)."""
    ids, mask = pad([tokenizer(r["text"])["input_ids"] for r in test_rows])
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if targets is None:
        targets = torch.tensor([r["label"] for r in test_rows])
    return accuracy(model, ids, mask, targets, next_token=next_token)


def write_concept(directory, name: str, header: dict, rows: list[dict], key: str = "file") -> None:
    """``NAME.yaml`` pointing at ``NAME.jsonl`` (examples, or pairs with key='pair_file')."""
    import json

    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (directory / f"{name}.yaml").write_text(
        yaml.safe_dump({"name": name, **header, key: f"{name}.jsonl"}, sort_keys=False))
