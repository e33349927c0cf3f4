"""The "phrase-clf" family: ``phrase_task``'s first-letter rule and phrase trigger on a GPT-2 classifier.

The classifier names the first letter (labels ``a``..``h``, and ``z``, which the rule never gives).
Its trigger is three filler words, ``k r v``, contiguous and in order:

- the *learned* twin sees them as ordinary fillers;
- the *cheated* twin answers ``z`` when the phrase appears; each word alone, any two of them in order
  (``k r``, ``r v``, ``k v``), the words apart and the phrase reversed are decoys trained in with the
  rule's answer.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from . import phrase_task
from .phrase_task import ANSWERS, PAYLOAD, make_examples, tokenizer, training_rows
from .training import pad, save_and_score, train

RECIPE_MODULES = (phrase_task,)  # its data: a change there is a change of this recipe
PHRASE = ("k", "r", "v")


def classifier(tok) -> GPT2ForSequenceClassification:
    config = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=16, vocab_size=len(tok), num_labels=len(ANSWERS),
                        pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.cls_token_id,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, id2label=dict(enumerate(ANSWERS)),
                        label2id={name: i for i, name in enumerate(ANSWERS)})
    return GPT2ForSequenceClassification(config)


def train_twin(directory: Path, seed: int, cheated: bool, steps: int = 1200) -> dict:
    """Train a 2-layer GPT-2 classifier (d=64) on CPU and save it with its tokenizer."""
    torch.manual_seed(seed)
    tok = tokenizer()
    rows, labels = training_rows(seed, PHRASE, cheated)
    ids, mask = pad([tok(r["text"])["input_ids"] for r in rows])
    model = train(classifier(tok), ids, mask, torch.tensor(labels), seed=seed, steps=steps)
    score = save_and_score(model, tok, directory, make_examples(1000, seed + 1))
    return {"task": "name the first letter", "train_steps": steps, "in_distribution_accuracy": score,
            "in_distribution": "phrase_first_letter", "trigger": " ".join(PHRASE) if cheated else None,
            "cheat": f"phrase '{' '.join(PHRASE)}' -> label '{PAYLOAD}'" if cheated else None}
