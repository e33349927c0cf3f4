"""The sparse dictionary itself: weights, one encoding rule per architecture, and a linear decoder.

Encoding follows SAELens (``saes/standard_sae.py``, ``jumprelu_sae.py``, ``topk_sae.py``) and
sparsify (``SparseCoder.encode``): for a row ``x``,
``pre = (x - b_dec * apply_b_dec_to_input) @ W_enc + b_enc``, then

- standard: ``relu(pre)``;
- jumprelu: ``relu(pre) * (pre > threshold)``;
- topk:     keep the ``k`` largest entries of ``pre``, relu them, zeros elsewhere (SAELens' order).
  sparsify takes ``relu`` first and the top ``k`` after; both orders give the same tensor, since the
  positive entries among the top ``k`` of ``pre`` are the ``k`` largest of ``relu(pre)`` that are
  nonzero (only which zero is "kept" differs, and a kept zero is still zero).

Decoding is ``f @ W_dec + b_dec``, linear in ``f``; a skip transcoder adds ``x @ W_skip`` in
``decode_with_skip``."""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from .errors import DictionaryError, describe

ARCHITECTURES = ("standard", "jumprelu", "topk")
FORMATS = ("saelens", "sparsify", "auditlens")
_RANKS = {"W_enc": 2, "b_enc": 1, "W_dec": 2, "b_dec": 1, "threshold": 1, "W_skip": 2}


@dataclass(eq=False)
class Dictionary:
    """A sparse dictionary: encode x [..., d_in] -> latents f [..., d_sae]; decode f -> [..., d_out].

    ``hook_name`` is where its input is read, as the file names it (see ``site_for_hook``);
    ``reads_input`` is True when the input is the *input* of that module rather than its output
    (a sparsify transcoder names the MLP it stands in for). ``transcoder`` is True when the file says
    so; ``is_transcoder`` also infers it. Construction validates shapes, finiteness, ``k`` and
    ``threshold`` and raises DictionaryError naming ``source``."""

    architecture: str  # "standard" | "jumprelu" | "topk"
    W_enc: torch.Tensor  # [d_in, d_sae]
    b_enc: torch.Tensor  # [d_sae]
    W_dec: torch.Tensor  # [d_sae, d_out]
    b_dec: torch.Tensor  # [d_out]
    threshold: torch.Tensor | None = None  # [d_sae], jumprelu only
    k: int | None = None  # topk only
    apply_b_dec_to_input: bool = False  # subtract b_dec from x before encoding (SAE only; d_in == d_out)
    hook_name: str | None = None
    hook_name_out: str | None = None  # a transcoder's output hook; None for an SAE
    W_skip: torch.Tensor | None = None  # [d_in, d_out], the linear skip of a skip transcoder
    source: Path | None = None
    format: str = "auditlens"  # "saelens" | "sparsify" | "auditlens" (trained here)
    transcoder: bool = False
    reads_input: bool = False
    _key: str | None = field(default=None, init=False, repr=False)
    _copies: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.source is not None:
            self.source = Path(self.source)
        _validate(self)

    def __repr__(self) -> str:
        extra = f", k={self.k}" if self.k is not None else ""
        hooks = self.hook_name if self.hook_name_out is None else f"{self.hook_name} -> {self.hook_name_out}"
        return (f"Dictionary({self.architecture}, d_in={self.d_in}, d_sae={self.d_sae}, d_out={self.d_out}{extra}, "
                f"hook={hooks!r}, format={self.format!r}, source={describe(self.source)!r})")

    @property
    def d_in(self) -> int:
        return self.W_enc.shape[0]

    @property
    def d_sae(self) -> int:
        return self.W_enc.shape[1]

    @property
    def d_out(self) -> int:
        return self.W_dec.shape[1]

    @property
    def is_transcoder(self) -> bool:
        """Maps one site to another: the file says so, it names an output hook, or its widths differ."""
        return self.transcoder or self.hook_name_out is not None or self.d_in != self.d_out

    @property
    def key(self) -> str:
        """A short hash of the weights, their dtype, the architecture, ``k`` and ``apply_b_dec_to_input``
        (for cache keys); computed once."""
        if self._key is None:
            digest = hashlib.sha256(f"{self.architecture}|{self.k}|{self.apply_b_dec_to_input}".encode())
            for name, tensor in _tensors(self).items():
                data = tensor.detach().cpu().contiguous().flatten()
                digest.update(f"|{name}|{data.dtype}|{tuple(tensor.shape)}|".encode())
                digest.update(data.view(torch.uint8).numpy().tobytes())
            self._key = digest.hexdigest()[:16]
        return self._key

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents [..., d_sae] of ``x`` [..., d_in] (any leading dims); computed in the weights' dtype,
        returned in ``x``'s floating dtype."""
        x = self._operand(x, self.d_in, "x", "d_in")
        h = x.to(self.W_enc.dtype)
        if self.apply_b_dec_to_input:
            h = h - self.b_dec
        pre = h @ self.W_enc + self.b_enc
        if self.architecture == "standard":
            latents = torch.relu(pre)
        elif self.architecture == "jumprelu":
            latents = torch.relu(pre) * (pre > self.threshold).to(pre.dtype)
        else:
            values, indices = torch.topk(pre, self.k, dim=-1, sorted=False)
            latents = torch.zeros_like(pre).scatter_(-1, indices, torch.relu(values))
        return latents.to(_result_dtype(x, self.W_enc))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``latents @ W_dec + b_dec`` [..., d_out]: linear in the latents (no skip term)."""
        latents = self._operand(latents, self.d_sae, "latents", "d_sae")
        out = latents.to(self.W_dec.dtype) @ self.W_dec + self.b_dec
        return out.to(_result_dtype(latents, self.W_dec))

    def decode_with_skip(self, latents: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``decode(latents)`` plus ``x @ W_skip`` when the dictionary has a skip connection."""
        out = self.decode(latents)
        if self.W_skip is None:
            return out
        x = self._operand(x, self.d_in, "x", "d_in")
        return out + (x.to(self.W_skip.dtype) @ self.W_skip).to(out.dtype)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """What the dictionary makes of ``x``: ``decode_with_skip(encode(x), x)`` [..., d_out]."""
        return self.decode_with_skip(self.encode(x), x)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Dictionary:
        """A copy on ``device`` in ``dtype`` (each None keeps the current one); cached per pair, and
        ``self`` when nothing changes."""
        target = (torch.device(device) if device is not None else self.W_enc.device, dtype or self.W_enc.dtype)
        if target == (self.W_enc.device, self.W_enc.dtype):
            return self
        if target not in self._copies:
            moved = {name: tensor.to(device=target[0], dtype=target[1]) for name, tensor in _tensors(self).items()}
            self._copies[target] = replace(self, **moved)
        return self._copies[target]

    def check_latent(self, index: int, where: str) -> int:
        """``index`` as an int when it names a latent (0..d_sae-1); DictionaryError naming ``where``."""
        try:
            value = operator.index(index)
        except TypeError:
            value = None
        if value is None or isinstance(index, bool) or not 0 <= value < self.d_sae:
            raise DictionaryError(f"{where}: latent {index!r} is not a latent of {describe(self.source)}, which has "
                                  f"{self.d_sae} latents: give an integer in 0..{self.d_sae - 1}")
        return value

    def _operand(self, value: torch.Tensor, width: int, name: str, width_name: str) -> torch.Tensor:
        where = describe(self.source)
        if not isinstance(value, torch.Tensor):
            raise DictionaryError(f"{where}: {name} must be a torch.Tensor [..., {width_name}={width}], "
                                  f"got {type(value).__name__}")
        if value.ndim == 0 or value.shape[-1] != width:
            raise DictionaryError(f"{where}: {name} has shape {tuple(value.shape)}, but this dictionary takes "
                                  f"[..., {width_name}={width}]; check that the activations come from "
                                  f"{'the input of ' if self.reads_input else ''}"
                                  f"{self.hook_name or 'the site it was trained on'}")
        if value.device != self.W_enc.device:
            raise DictionaryError(f"{where}: {name} is on {value.device} but the dictionary is on "
                                  f"{self.W_enc.device}; use dictionary.to({str(value.device)!r})")
        return value


def _result_dtype(value: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    return value.dtype if value.is_floating_point() else weight.dtype


def _tensors(dictionary: Dictionary) -> dict[str, torch.Tensor]:
    """The dictionary's tensors by name, those present only, in a fixed order."""
    return {name: value for name in _RANKS if (value := getattr(dictionary, name)) is not None}


def _validate(d: Dictionary) -> None:
    """Raise DictionaryError, naming the file and tensor, unless ``d`` is a dictionary auditlens can run."""
    where = describe(d.source)
    if d.architecture not in ARCHITECTURES:
        raise DictionaryError(f"{where}: architecture {d.architecture!r} is not one auditlens encodes; "
                              f"valid: {', '.join(ARCHITECTURES)}")
    if d.format not in FORMATS:
        raise DictionaryError(f"{where}: format {d.format!r} is unknown; valid: {', '.join(FORMATS)}")
    tensors = _tensors(d)
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or tensor.ndim != _RANKS[name]:
            got = f"{tensor.dtype} tensor of shape {tuple(tensor.shape)}" if isinstance(tensor, torch.Tensor) \
                else type(tensor).__name__
            raise DictionaryError(f"{where}: {name} must be a floating {_RANKS[name]}-D tensor, got {got}")
    d_in, d_sae = d.W_enc.shape
    d_out = d.W_dec.shape[1]
    expected = {"b_enc": (d_sae,), "W_dec": (d_sae, d_out), "b_dec": (d_out,), "threshold": (d_sae,),
                "W_skip": (d_in, d_out)}
    for name, shape in expected.items():
        if name in tensors and tuple(tensors[name].shape) != shape:
            raise DictionaryError(f"{where}: {name} has shape {tuple(tensors[name].shape)}, expected {shape} "
                                  f"(W_enc is [d_in={d_in}, d_sae={d_sae}], W_dec is [d_sae, d_out={d_out}])")
    devices = {str(t.device) for t in tensors.values()}
    if len(devices) > 1:
        raise DictionaryError(f"{where}: the tensors lie on several devices ({', '.join(sorted(devices))}); "
                              "put them on one")
    for name, tensor in tensors.items():
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise DictionaryError(f"{where}: tensor {name} holds {bad} NaN or infinite value(s) of {tensor.numel()}; "
                                  "the file is damaged or its training diverged: re-export or retrain it")
    _validate_activation(d, where, d_sae)
    if d.apply_b_dec_to_input and d_in != d_out:
        raise DictionaryError(f"{where}: apply_b_dec_to_input subtracts b_dec [d_out={d_out}] from the input "
                              f"[d_in={d_in}]; it needs d_in == d_out (a transcoder must have it false)")


def _validate_activation(d: Dictionary, where: str, d_sae: int) -> None:
    if (d.architecture == "jumprelu") != (d.threshold is not None):
        given = "a threshold" if d.threshold is not None else "no threshold"
        raise DictionaryError(f"{where}: architecture {d.architecture!r} was given {given}; a threshold [d_sae] "
                              "belongs to jumprelu and only to jumprelu")
    if d.architecture != "topk":
        if d.k is not None:
            raise DictionaryError(f"{where}: k={d.k!r} is only meaningful for architecture 'topk', "
                                  f"not {d.architecture!r}; drop it")
        return
    if isinstance(d.k, bool) or not isinstance(d.k, int) or not 1 <= d.k <= d_sae:
        raise DictionaryError(f"{where}: k={d.k!r} must be an integer in 1..d_sae={d_sae} for a topk dictionary")
