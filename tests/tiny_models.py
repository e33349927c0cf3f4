"""Tiny random-init models of four architectures, built in memory (no download)."""

from __future__ import annotations

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    LlamaConfig,
    LlamaForCausalLM,
)

VOCAB = 40
LAYERS = 3


def gpt2():
    return GPT2ForSequenceClassification(GPT2Config(
        n_layer=LAYERS, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=32, pad_token_id=0,
        bos_token_id=1, eos_token_id=1, num_labels=2))


def bert():
    return BertForSequenceClassification(BertConfig(
        num_hidden_layers=LAYERS, hidden_size=32, num_attention_heads=2, intermediate_size=64,
        vocab_size=VOCAB, max_position_embeddings=32, pad_token_id=0, num_labels=2))


def llama():
    return LlamaForCausalLM(LlamaConfig(
        num_hidden_layers=LAYERS, hidden_size=32, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=64, vocab_size=VOCAB, max_position_embeddings=32, pad_token_id=0,
        bos_token_id=1, eos_token_id=1))


def distilbert():
    return DistilBertForSequenceClassification(DistilBertConfig(
        n_layers=LAYERS, dim=32, n_heads=2, hidden_dim=64, vocab_size=VOCAB, max_position_embeddings=32,
        pad_token_id=0, num_labels=2))


BUILDERS = {"gpt2": gpt2, "bert": bert, "llama": llama, "distilbert": distilbert}
ARCHS = tuple(BUILDERS)

# The module each alias must resolve to, per architecture (block 1).
EXPECTED_SITES = {
    "gpt2": {"embed": "transformer.h.0", "layer:1": "transformer.h.1", "attn:1": "transformer.h.1.attn",
             "mlp:1": "transformer.h.1.mlp"},
    "bert": {"embed": "bert.encoder.layer.0", "layer:1": "bert.encoder.layer.1",
             "attn:1": "bert.encoder.layer.1.attention.output.dense", "mlp:1": "bert.encoder.layer.1.output.dense"},
    "llama": {"embed": "model.layers.0", "layer:1": "model.layers.1", "attn:1": "model.layers.1.self_attn",
              "mlp:1": "model.layers.1.mlp"},
    "distilbert": {"embed": "distilbert.transformer.layer.0", "layer:1": "distilbert.transformer.layer.1",
                   "attn:1": "distilbert.transformer.layer.1.attention",
                   "mlp:1": "distilbert.transformer.layer.1.ffn"},
}

# Whether the model's last hidden state has a final norm applied after the last block.
FINAL_NORM = {"gpt2": True, "bert": False, "llama": True, "distilbert": False}


def build(arch: str, seed: int = 0):
    torch.manual_seed(seed)
    return BUILDERS[arch]().eval()


def ragged_token_lists(seed: int = 0, n: int = 10, low: int = 3, high: int = 12):
    """Token-id lists of varied lengths (so padding matters), ids in 2..VOCAB-1."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(low, high, (n,), generator=generator).tolist()
    return [torch.randint(2, VOCAB, (length,), generator=generator).tolist() for length in lengths]
