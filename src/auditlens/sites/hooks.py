"""Low-level hook plumbing shared by capture and interventions.

Every hook auditlens adds goes through :func:`hooked`, which removes it on exit whatever
raised inside (KeyboardInterrupt included), and counts what is live so leaks are visible.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import CaptureError
from .resolve import Site, get_module


@dataclass(frozen=True)
class Batch:
    """Which examples the current forward pass holds: global indices and the attention mask."""

    indices: torch.Tensor
    attention_mask: torch.Tensor | None


current_batch: contextvars.ContextVar[Batch | None] = contextvars.ContextVar("auditlens_batch", default=None)
_live_hooks: weakref.WeakKeyDictionary[nn.Module, int] = weakref.WeakKeyDictionary()

# fn(activation [b, t, d] or [b, d], batch) -> replacement activation, or None to leave it. A reader may
# carry ``on_unreadable() -> bool``: called when the module's output holds no tensor; True skips the site.
ActivationFn = Callable[[torch.Tensor, Batch], "torch.Tensor | None"]


def live_hook_count(model: nn.Module) -> int:
    """Hooks auditlens currently holds on ``model`` (0 outside any capture or intervention)."""
    return _live_hooks.get(model, 0)


def batch_for(activation: torch.Tensor) -> Batch:
    batch = current_batch.get()
    if batch is not None and batch.indices.numel() == activation.shape[0]:
        return batch
    # A forward pass run by the user directly: the examples are 0..b-1, no padding known.
    return Batch(torch.arange(activation.shape[0]), None)


def primary(value) -> torch.Tensor:
    """The activation tensor in a module's output (first element of a tuple)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    raise CaptureError(f"module output of type {type(value).__name__} holds no activation tensor")


def _replace_primary(value, new: torch.Tensor):
    if isinstance(value, torch.Tensor):
        return new
    return type(value)((new, *value[1:])) if isinstance(value, tuple) else [new, *value[1:]]


def _sliced(site: Site, fn: ActivationFn) -> ActivationFn:
    """``fn`` on the site's slice of the last axis (one head's part of the projection's input); what it
    returns replaces that slice only."""
    start, stop = site.features

    def on_slice(activation: torch.Tensor, batch: Batch):
        new = fn(activation[..., start:stop], batch)
        if new is None:
            return None
        whole = activation.clone()
        whole[..., start:stop] = new
        return whole

    return on_slice


def _in_latents(site: Site, fn: ActivationFn, inputs: dict | None = None) -> ActivationFn:
    """``fn`` on the dictionary's latents f (or a range of them); what it returns, f', is written back as
    x + decode(f') - decode(f): the reconstruction error stays. A transcoder's latents come from its
    input, which ``inputs`` holds from the same pass."""
    dictionary = site.dictionary

    def on_latents(activation: torch.Tensor, batch: Batch):
        source = activation if inputs is None else inputs.get("x")
        if source is None:
            raise CaptureError(f"site {site.name!r}: the transcoder's input at {site.module_path} was not seen "
                               "before its output in this forward pass")
        local = dictionary.to(device=activation.device)
        latents = local.encode(source)
        part = latents if site.features is None else latents[..., site.features[0]:site.features[1]]
        new = fn(part, batch)
        if new is None:
            return None
        change = new.to(latents.dtype) - part
        weights = local.W_dec if site.features is None else local.W_dec[site.features[0]:site.features[1]]
        return activation + (change @ weights.to(change.dtype)).to(activation.dtype)

    return on_latents


def _stash(inputs: dict) -> ActivationFn:
    def keep(activation: torch.Tensor, batch: Batch):
        inputs["x"] = activation
        return None
    return keep


def _hook_for(site: Site, fn: ActivationFn):
    if site.dictionary is not None:
        fn = _in_latents(site, fn)
    elif site.features is not None:
        fn = _sliced(site, fn)
    if site.reads_input:

        def pre_hook(module, args, kwargs):
            if args:
                current = args[0]
            elif "hidden_states" in kwargs:
                current = kwargs["hidden_states"]
            else:
                raise CaptureError(f"site {site.name!r}: {site.module_path} was called without hidden states")
            new = fn(current, batch_for(current))
            if new is None:
                return None
            if args:
                return (new, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": new}

        return pre_hook

    def hook(module, args, output):
        try:
            current = primary(output)
        except CaptureError as exc:
            unreadable = getattr(fn, "on_unreadable", None)  # a reader whose reads are all optional may skip it
            if unreadable is not None and unreadable():
                return None
            raise CaptureError(f"site {site.name!r} ({site.module_path}): {exc}; choose a module whose output is "
                               "a tensor or a tuple that starts with one, such as an alias (layer:N, attn:N, mlp:N) "
                               "or one of its submodules") from None
        new = fn(current, batch_for(current))
        return None if new is None else _replace_primary(output, new)

    return hook


@contextmanager
def intervene(subject_or_model, *interventions) -> Iterator[None]:
    """Apply ``interventions`` (each a ``site`` and an ``edit``; in order) to every forward pass inside
    the block, on a Subject or a bare model; hooks always removed."""
    model = subject_or_model if isinstance(subject_or_model, nn.Module) else subject_or_model.model
    with hooked(model, [(iv.site, iv.edit) for iv in interventions]):
        yield


def _transcoders_split(hooks: list[tuple[Site, ActivationFn]]) -> list[tuple[Site, ActivationFn]]:
    """An edit of a transcoder's latents becomes two hooks: one keeps its input, one edits its output."""
    split = []
    for site, fn in hooks:
        if site.dictionary is None or site.writes_to is None:
            split.append((site, fn))
            continue
        inputs: dict = {}
        output = site.writes_to
        split += [(site.module_site, _stash(inputs)),
                  (Site(output.name, output.module_path, output.reads_input), _in_latents(site, fn, inputs))]
    return split


@contextmanager
def hooked(model: nn.Module, hooks: list[tuple[Site, ActivationFn]]) -> Iterator[None]:
    """Install ``fn`` at each site for the duration of the block, in order; always remove them."""
    handles = []
    try:
        for site, fn in _transcoders_split(hooks):
            module = get_module(model, site)
            if site.reads_input:
                handle = module.register_forward_pre_hook(_hook_for(site, fn), with_kwargs=True)
            else:
                handle = module.register_forward_hook(_hook_for(site, fn))
            handles.append(handle)
            _live_hooks[model] = _live_hooks.get(model, 0) + 1
        yield
    finally:
        for handle in reversed(handles):
            handle.remove()
            count = _live_hooks.get(model)  # None only at interpreter exit, once weak references are cleared
            if count:
                _live_hooks[model] = count - 1
