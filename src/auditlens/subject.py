"""The model under audit: its model and tokenizer, site map, fingerprint, and input encoding."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import ConceptError
from .inputs import Inputs, pad_token_lists
from .sites.features import attach, attached, resolve_any
from .sites.resolve import Site, alias_table, config_int, n_layers

KINDS = ("classifier", "causal-lm", "encoder")


@dataclass(eq=False)
class Subject:
    """A model ready to audit: eval mode, on its device, with its tokenizer and site map.

    ``forward_passes`` counts the batched forward passes auditlens ran on it; ``needs`` logs, per
    ``run()`` call, the (inputs, interventions, batch) combinations asked for (see ``accounting``).
    """

    model: nn.Module
    tokenizer: Any | None
    id: str
    kind: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    metadata: dict = field(default_factory=dict)
    forward_passes: int = 0
    needs: list[str] = field(default_factory=list, repr=False)
    # passes run again on inputs and interventions a pass already ran (above the lower bound):
    # {"why": what was read and why it was not kept, "passes": how many}; accounting.note_pass writes them
    repeats: list[dict] = field(default_factory=list, repr=False)
    ran_scopes: set = field(default_factory=set, repr=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False)
    _fingerprint_of: tuple = field(default=(), init=False, repr=False)  # the weights' state it was computed on

    def __repr__(self) -> str:
        return f"Subject({self.id!r}, kind={self.kind!r}, layers={self.n_layers}, device={self.device})"

    @property
    def n_layers(self) -> int:
        return n_layers(self.model)

    def site(self, name: str | Site) -> Site:
        return resolve_any(self.model, name)

    def attach_dictionary(self, at: str | None, dictionary, writes_to: str | None = None) -> Site:
        """Attach a sparse dictionary (a directory in SAELens or sparsify format, or a loaded
        ``Dictionary``) at site ``at`` (None: the site its file names, e.g. ``blocks.3.hook_resid_post``
        is ``layer:3``), so ``features:AT`` and ``feature:AT/F`` name its latents. A transcoder reads
        ``at`` and writes ``writes_to`` (default: the site its file names). Returns the ``features:AT`` site."""
        from .dictionaries import Dictionary, DictionaryError, load_dictionary

        if isinstance(dictionary, (str, os.PathLike)):  # not hasattr(encode): every str has an encode
            dictionary = load_dictionary(dictionary)
        elif not isinstance(dictionary, Dictionary):
            raise DictionaryError(f"attach_dictionary({at!r}, ...): the dictionary must be a directory (str or "
                                  "os.PathLike) in SAELens or sparsify format, or a Dictionary from "
                                  f"load_dictionary; got {type(dictionary).__name__}")
        return attach(self.model, at, dictionary.to(device=self.device), writes_to)

    @property
    def dictionaries(self) -> dict:
        """The attached dictionaries, by the site they were attached at."""
        return attached(self.model)

    def aliases(self) -> list[str]:
        return list(alias_table(self.model))

    @property
    def fingerprint(self) -> str:
        """Hash of what the model computes with: its class, its config (less paths and bookkeeping, so a
        moved or copied model directory keeps its fingerprint) and every parameter and buffer. Equal
        fingerprints, equal model.

        Recomputed when a weight changed since it was last computed: an in-place edit (torch's version
        counter of the tensor moves: ``mul_`` under ``no_grad``, an optimizer step, ``load_state_dict``)
        or a parameter swapped for another tensor. So an edited model re-keys the activation cache and
        never serves the old model's activations. (An edit through ``.data`` bypasses the version
        counter; edit under ``torch.no_grad()`` instead.) Weights accelerate offloaded to disk
        (device_map) are read back one module at a time, so a sharded or offloaded load has the
        fingerprint of the same weights loaded whole.
        """
        state = _weights_state(self.model)
        if self._fingerprint is None or state != self._fingerprint_of:
            self._fingerprint, self._fingerprint_of = _fingerprint(self.model), state
        return self._fingerprint

    @property
    def pad_id(self) -> int:
        config = getattr(self.model, "config", None)
        for candidate in (getattr(config, "pad_token_id", None), getattr(self.tokenizer, "pad_token_id", None)):
            if isinstance(candidate, int):
                return candidate
        return 0

    @property
    def max_length(self) -> int | None:
        return config_int(self.model, "max_position_embeddings", "n_positions")

    @property
    def vocab_size(self) -> int | None:
        return config_int(self.model, "vocab_size")

    @property
    def hidden_size(self) -> int | None:
        return config_int(self.model, "hidden_size", "n_embd", "d_model", "dim")

    def encode(self, examples: Sequence[str] | Sequence[Sequence[int]] | Inputs) -> Inputs:
        """Texts (needs a tokenizer) or token-id lists to right-padded Inputs, validated."""
        if isinstance(examples, Inputs):
            inputs = examples
        else:
            examples = list(examples)
            if not examples:
                raise ConceptError("no inputs: the dataset is empty")
            if all(isinstance(e, str) for e in examples):
                if self.tokenizer is None:
                    raise ConceptError(
                        f"subject {self.id!r} has no tokenizer, so text inputs cannot be encoded; "
                        "pass token-id lists, or load the subject with tokenizer=..."
                    )
                ids = [self.tokenizer(text, add_special_tokens=True)["input_ids"] for text in examples]
                inputs = pad_token_lists(ids, self.pad_id, texts=examples)
            else:
                inputs = pad_token_lists([list(map(int, e)) for e in examples], self.pad_id)
        self._check_fits(inputs)
        return inputs

    def _check_fits(self, inputs: Inputs) -> None:
        vocab, limit = self.vocab_size, self.max_length
        real = inputs.input_ids[inputs.attention_mask.bool()]
        if vocab is not None and real.numel() and (real.max() >= vocab or real.min() < 0):
            bad = int(((inputs.input_ids >= vocab) | (inputs.input_ids < 0)).any(dim=1).nonzero()[0])
            raise ConceptError(
                f"example {bad} has token ids outside the vocabulary of {self.id!r} (0..{vocab - 1}); "
                "was it encoded with another model's tokenizer?"
            )
        if limit is not None and inputs.input_ids.shape[1] > limit:
            too_long = (inputs.lengths > limit).nonzero().flatten().tolist()
            raise ConceptError(
                f"examples {too_long[:5]} are longer than the context of {self.id!r} "
                f"({limit} tokens); shorten them"
            )


# config keys that say where a model came from or how it was saved, not what it computes
_BOOKKEEPING = frozenset({"_name_or_path", "_commit_hash", "transformers_version", "_attn_implementation_autoset",
                          "_attn_implementation_internal", "torch_dtype", "dtype", "architectures"})


def _fingerprint(model: nn.Module) -> str:
    h = hashlib.blake2b(digest_size=16)
    config = getattr(model, "config", None)
    h.update(type(model).__name__.encode())
    if config is not None and hasattr(config, "to_dict"):
        computed = {k: v for k, v in config.to_dict().items() if k not in _BOOKKEEPING}
        h.update(json.dumps(computed, sort_keys=True, default=str).encode())
    state = model.state_dict()
    offloaded = _offloaded_digests(model, state)
    for name, tensor in state.items():  # the dtype is here, per tensor
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        h.update(offloaded[name] if tensor.device.type == "meta" else _tensor_digest(tensor))
    return h.hexdigest()


def _weights_state(model: nn.Module) -> tuple:
    """Which tensors the model holds and how often each was changed in place (microseconds to read)."""
    return tuple((id(t), _version(t), t.data_ptr()) for t in (*model.parameters(), *model.buffers()))


def _version(tensor: torch.Tensor) -> int | None:
    """torch's count of in-place changes; None for an inference tensor (made under inference_mode, which
    keeps no count and cannot be changed in place outside it)."""
    return None if tensor.is_inference() else tensor._version


def _tensor_digest(tensor: torch.Tensor) -> bytes:
    data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    return hashlib.blake2b(data.tobytes(), digest_size=16).digest()


def _offloaded_digests(model: nn.Module, state: dict) -> dict[str, bytes]:
    """Digests of the tensors accelerate keeps off the model (on the meta device), by state-dict name."""
    if not any(t.device.type == "meta" for t in state.values()):
        return {}
    from accelerate.utils import align_module_device

    digests = {}
    for prefix, module in model.named_modules():
        own = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
        if not any(t.device.type == "meta" for _, t in own):
            continue
        with align_module_device(module, execution_device="cpu"):  # onloads, then offloads again
            for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
                digests[f"{prefix}.{name}" if prefix else name] = _tensor_digest(tensor)
    return digests
