"""Defaults every check reads when the caller gives none: the seed, and the activation store capture
keeps results in. Nothing is built at import: the store is made on first use. An audit session sets
both for its run with :func:`use_defaults` and restores the previous ones when it ends, so a session
run inside another (pytester) leaves the outer one's defaults as they were."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from .storage import ActivationStore

_seed: contextvars.ContextVar[int] = contextvars.ContextVar("auditlens_seed", default=0)
_store: contextvars.ContextVar[ActivationStore | None] = contextvars.ContextVar("auditlens_store", default=None)
_process_store: ActivationStore | None = None


def seed_or_default(seed: int | None) -> int:
    return _seed.get() if seed is None else int(seed)


def default_store() -> ActivationStore:
    """The store set by the running session, else one for the whole process (made on first use)."""
    global _process_store
    store = _store.get()
    if store is not None:
        return store
    if _process_store is None:
        _process_store = ActivationStore()
    return _process_store


@dataclass(frozen=True)
class _Tokens:
    seed: contextvars.Token
    store: contextvars.Token


def use_defaults(seed: int | None = None, store: ActivationStore | None = None) -> _Tokens:
    """Set the defaults (None keeps the current one); pass the result to :func:`restore_defaults`."""
    seed = _seed.get() if seed is None else int(seed)
    store = _store.get() if store is None else store  # not `or`: an empty store is falsy (it has a len)
    return _Tokens(_seed.set(seed), _store.set(store))


def restore_defaults(tokens: _Tokens) -> None:
    _store.reset(tokens.store)
    _seed.reset(tokens.seed)
