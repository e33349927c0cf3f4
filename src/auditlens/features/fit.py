"""Dictionaries for a model of one's own: collect a site's activations on concepts, train a TopK SAE on
them (``dictionaries.train_topk``), measure how well it stands in for the site, and keep it in a cache
keyed by what made it, so an audit that names ``train:`` in its ``dictionaries:`` map pays once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..engine import capture, run
from ..errors import CheckError
from ..interventions import Transform
from ..progress import report
from ..readout import readout_for

POSITIONS = ("all", "last")  # which tokens a dictionary is trained on: every real token, or the last


@dataclass(frozen=True)
class Evaluation:
    """How a dictionary stands in for its site on labelled data."""

    explained_variance: float  # of the site's activations, by the reconstruction
    l0: float  # mean number of active latents per vector
    dead_fraction: float  # latents never active on the data
    loss_clean: float  # cross-entropy of the model's answers against the labels
    loss_spliced: float  # the same with the reconstruction in place of the site (error not kept)

    @property
    def loss_increase(self) -> float:
        return self.loss_spliced - self.loss_clean

    def lines(self) -> list[str]:
        return [f"explained variance {self.explained_variance:.3f}", f"L0 {self.l0:.2f}",
                f"dead latents {self.dead_fraction:.1%}",
                f"loss {self.loss_clean:.4f} -> {self.loss_spliced:.4f} with the reconstruction in place "
                f"(+{self.loss_increase:.4f})"]


def site_activations(subject, at: str, concepts: Sequence, position: str = "all") -> torch.Tensor:
    """The site's activations on every concept's inputs ([rows, d]): one row per real token (``all``) or
    per example (``last``)."""
    if position not in POSITIONS:
        raise CheckError(f"a dictionary is trained on position all or last; got {position!r}")
    site = subject.site(at)
    rows = []
    for concept in concepts:
        inputs = concept.inputs(subject)
        values = capture(subject, inputs, site, position=position)
        rows.append(values[inputs.attention_mask.bool()] if position == "all" else values)
    return torch.cat(rows).float()


@contextlib.contextmanager
def one_thread():
    """One thread: a reduction split over threads sums in another order, and weights drift apart."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_dictionary(subject, at: str, concepts: Sequence, *, width: int, k: int, seed: int = 0,
                   position: str = "all", progress: Callable | None = None):
    """Train a TopK SAE on the site's activations over ``concepts`` (deterministic under ``seed`` on one
    kind of CPU); returns (the dictionary, its training stats)."""
    from ..dictionaries import train_topk

    site = subject.site(at)
    activations = site_activations(subject, at, concepts, position)
    device = subject.device if subject.device.type != "cpu" else None
    with one_thread():
        return train_topk(activations, width=width, k=k, seed=seed, device=device, progress=progress,
                          hook_name=site.name)


def evaluate(subject, at: str, dictionary, concept, position: str = "all") -> Evaluation:
    """Explained variance, L0 and dead latents on ``concept``'s activations at ``at``, and the loss
    increase when the reconstruction replaces the site (on the concept's labels)."""
    site = subject.site(at)
    activations = site_activations(subject, at, [concept], position)
    latents = dictionary.encode(activations)
    error = activations - dictionary.decode(latents)
    variance = float(((activations - activations.mean(0)) ** 2).sum())
    splice = Transform(site, _Splice(dictionary))
    inputs, labels = concept.inputs(subject), concept.label_tensor()
    readout = readout_for(subject, concept.answer_token_ids(subject))
    clean = run(subject, inputs, readout=readout).scores
    spliced = run(subject, inputs, readout=readout, interventions=[splice]).scores
    loss = torch.nn.functional.cross_entropy
    return Evaluation(1 - float((error ** 2).sum()) / variance if variance else float("nan"),
                      float((latents != 0).sum(-1).float().mean()), float(((latents != 0).sum(0) == 0).float().mean()),
                      float(loss(clean, labels)), float(loss(spliced, labels)))


class _Splice:
    """x -> decode(encode(x)): the dictionary in place of the site, its error dropped."""

    def __init__(self, dictionary):
        self.dictionary, self.key = dictionary, f"splice:{dictionary.key}"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        local = self.dictionary.to(device=x.device)
        return local.decode(local.encode(x))


def cache_root() -> Path:
    """Where trained dictionaries are kept: $AUDITLENS_DICTIONARY_CACHE, else ~/.cache/auditlens/dictionaries."""
    env = os.environ.get("AUDITLENS_DICTIONARY_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "auditlens" / "dictionaries"


def cached_dictionary(subject, at: str, concepts: Sequence, *, width: int, k: int, seed: int = 0,
                      position: str = "all"):
    """The dictionary ``fit_dictionary`` trains, from the cache when this model, site, data and settings
    made one before (the model by its fingerprint, the data by its digest)."""
    from ..dictionaries import load_dictionary

    return load_dictionary(cached_directory(subject, at, concepts, width=width, k=k, seed=seed, position=position))


def cached_directory(subject, at: str, concepts: Sequence, *, width: int, k: int, seed: int = 0,
                     position: str = "all") -> Path:
    """The cache directory of the dictionary ``cached_dictionary`` returns, trained into it first if needed."""
    from ..dictionaries import save_saelens

    site = subject.site(at)
    made_of = json.dumps({"model": subject.fingerprint, "site": [site.module_path, site.reads_input],
                          "data": [c.inputs(subject).digest for c in concepts], "width": width, "k": k, "seed": seed,
                          "position": position, "capability": torch.backends.cpu.get_cpu_capability()})
    directory = cache_root() / hashlib.blake2b(made_of.encode(), digest_size=12).hexdigest()
    if (directory / "cfg.json").is_file():
        return directory
    report(f"training a dictionary at {site.name} of {subject.id} (width {width}, k {k}) on "
           f"{', '.join(c.name for c in concepts)} ...")
    dictionary, stats = fit_dictionary(subject, at, concepts, width=width, k=k, seed=seed, position=position)
    report(f"dictionary at {site.name}: explained variance {stats.explained_variance:.3f}, L0 {stats.l0:.2f}, "
           f"{stats.seconds:.1f} s")
    staging = directory.with_name(directory.name + f".part-{os.getpid()}")
    save_saelens(dictionary, staging, hook_name=site.name, extra_metadata={"model": subject.id, "made_of": made_of})
    if directory.exists():  # another process made it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    else:
        staging.replace(directory)
    return directory
