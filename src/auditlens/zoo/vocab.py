"""Word-level tokenizers for the zoo's toy tasks: one token per whitespace-separated word."""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIALS = ("[PAD]", "[UNK]", "[CLS]")


def word_tokenizer(words: Sequence[str], add_cls: bool = False) -> PreTrainedTokenizerFast:
    """A fast tokenizer over ``SPECIALS + words``; ``add_cls`` prepends [CLS] to every input."""
    vocab = {token: index for index, token in enumerate([*SPECIALS, *words])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if add_cls:
        from tokenizers.processors import TemplateProcessing

        backend.post_processor = TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", vocab["[CLS]"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        padding_side="right",
    )
