"""A sentiment classifier built on the shipped MiniLM (fixture:minilm): BERT, 6 layers, d=384, a new
two-class head fine-tuned with the encoder on probes/sentiment (seeded, on this machine's kernels).
bench/mutation.py mutation-tests audits/test_minilm_sentiment.py on it.

    python bench/minilm_classifier.py [--out DIR]    # prints the directory
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "minilm-sentiment"  # audits/test_minilm_sentiment.py selects models whose spec holds this name


def default_dir() -> Path:
    return Path(os.environ.get("AUDITLENS_ZOO_CACHE", Path.home() / ".cache" / "auditlens" / "zoo")) / NAME


def build(out: Path | None = None, seed: int = 0, steps: int = 150) -> Path:
    import torch
    from transformers import BertForSequenceClassification
    from transformers.utils import logging

    from auditlens import load_subject
    from auditlens.concepts.files import load_concept
    from auditlens.mutation.task import agreement
    from auditlens.mutation.training import fine_tune, predict

    out = Path(out or default_dir())
    if (out / "model.safetensors").is_file():
        return out
    minilm = load_subject("fixture:minilm")
    source = Path(minilm.model.name_or_path) if Path(str(minilm.model.name_or_path)).is_dir() else None
    concept = load_concept(ROOT / "probes" / "sentiment.yaml")
    torch.manual_seed(seed)
    logging.set_verbosity_error()  # the new head's "newly initialized" warning is what we want here
    model = BertForSequenceClassification.from_pretrained(source, num_labels=2)
    rows = [tuple(r) for r in minilm.tokenizer(list(concept.examples))["input_ids"]]
    tuned, training = fine_tune(model, rows, list(concept.labels), (0, 1), kind="classifier",
                                pad_id=minilm.pad_id, seed=seed, max_steps=steps, budget_s=600, what=NAME)
    accuracy = agreement(predict(tuned, rows, (0, 1), "classifier", minilm.pad_id), concept.labels)
    out.mkdir(parents=True, exist_ok=True)
    tuned.save_pretrained(out)
    minilm.tokenizer.save_pretrained(out)
    print(f"{NAME}: {training.steps} steps, {training.seconds:.0f} s, accuracy {accuracy:.3f} on sentiment")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    print(build(parser.parse_args().out))
