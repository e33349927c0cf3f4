"""attribute: attribution patching (Nanda 2023; Syed et al. 2023), to find which components carry a
behaviour before an audit names them.

For each counterfactual pair and component c, the effect of patching c from the source into the base
on the metric m (the pair's expected label's score minus the base's own prediction's) is estimated to
first order as (a_source - a_base) . dm/da at the base: one forward and one backward pass per batch
for every component at once, against one forward pass per component for real activation patching.
With ``validate=True`` the real patching is run too, and the rank correlation between the estimate
and the truth is reported with the result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr

from ..accounting import count_direct_pass
from ..concepts.concept import Concept
from ..engine import capture, run
from ..errors import CheckError
from ..features.examples import feature_examples
from ..readout import readout_for
from ..results import CheckResult, not_recorded
from ..sites.features import expand_any
from ..sites.hooks import Batch, hooked
from .from_data import patch_from


@dataclass(frozen=True, kw_only=True)
class AttributionResult(CheckResult):
    """Estimated (and, validated, actual) mean effect of patching each component on the pair metric."""

    concept: str = ""
    components: tuple[str, ...] = ()
    estimates: tuple[float, ...] = ()  # mean change of the metric, first-order estimate
    actual: tuple[float, ...] = ()  # mean change of the metric under real activation patching (validate)
    rank_correlation: float = float("nan")  # Spearman, |estimates| against |actual| (validate)
    sign_agreement: float = float("nan")  # share of components with a real effect whose estimate has its sign
    top: tuple[str, ...] = ()  # components by |estimate|, largest first (at most 10)
    passes: int = 0  # forward + backward passes the estimate took (batches x 2 x steps)
    steps: int = 1  # points on the path from base to source where the gradient was taken

    def metrics(self) -> dict[str, float]:
        """The rank correlation is a metric only where real patching was run (validate=True)."""
        metrics = super().metrics()
        if not self.actual:
            metrics.pop("rank_correlation", None)
            metrics.pop("sign_agreement", None)
        return metrics

    def note(self) -> str | None:
        if self.estimates and max(abs(e) for e in self.estimates) <= NOISE:
            return (f"nothing attributed: every estimate is below {NOISE:g} in magnitude (rounding): patching "
                    "from these pairs moves nothing through these components")
        return None

    def component_values(self) -> list[dict]:
        actual = self.actual or (None,) * len(self.components)
        return [{"component": c, "estimate": e, **({"actual": a} if a is not None else {})}
                for c, e, a in zip(self.components, self.estimates, actual)]

    def headline(self) -> str:
        return (f"attribution patching over {len(self.components)} components ({self.site}) on {self.subject}, "
                f"pairs of {self.concept!r}, n={self.n}; top: {', '.join(self.top[:5])}")


def _metric(scores: torch.Tensor, expected: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per example: the expected label's score minus the base's own prediction's (0 where they agree)."""
    rows = torch.arange(len(expected), device=scores.device)
    return scores[rows, expected.to(scores.device)] - scores[rows, clean.to(scores.device)]


def _keeper(kept: dict, module):
    """A hook that keeps the activation it sees, with its gradient retained for after the backward."""
    def keep(activation, _batch):
        activation.retain_grad()
        kept[module] = activation
    return keep


NOISE = 1e-6  # a mean change of the metric (a score difference) below this is rounding, not an effect


def agreement(estimates: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """(Spearman between |estimate| and |actual|: whether both rank the components' importance alike;
    the share of components with a real effect whose estimate has its sign). NaN where undefined: one
    component, or patching moves nothing."""
    if len(actual) < 2 or np.abs(actual).max() <= NOISE or np.ptp(np.abs(estimates)) == 0:
        return float("nan"), float("nan")
    correlation = float(spearmanr(np.abs(estimates), np.abs(actual)).statistic)
    real = np.abs(actual) > NOISE
    return correlation, float((np.sign(estimates[real]) == np.sign(actual[real])).mean())


def patching_effects(subject, pairs: Concept, sites) -> list[float]:
    """The truth attribution estimates: for each site in turn, the mean change of the pair metric when
    its activation is patched from the source into the base (one forward pass over the pairs per site)."""
    base, source, expected = pairs.pair_inputs(subject)
    readout = readout_for(subject, pairs.answer_token_ids(subject))
    scores = run(subject, base, readout=readout).scores
    clean = scores.argmax(dim=1)
    before = _metric(scores, expected, clean)
    effects = []
    with not_recorded():
        for site in sites:
            patched = run(subject, base, readout=readout, interventions=[patch_from(subject, site, source)]).scores
            effects.append(float((_metric(patched, expected, clean) - before).mean()))
    return effects


def _backward_at(subject, readout, ids, source_ids, mask, batch: Batch, expected, clean, alpha: float, hooks, kept):
    """One forward and backward pass with the input embeddings at base + alpha * (source - base) (the
    token ids still go in, so a classifier finds each input's last real token); the activations of the
    hooked sites are left in ``kept`` with their gradients."""
    embeddings = subject.model.get_input_embeddings()
    source_embedded = embeddings(source_ids).detach() if alpha else None

    def interpolated(module, args, output):
        if alpha:
            output = output + alpha * (source_embedded - output)
        return output.detach().requires_grad_(True)

    moved = embeddings.register_forward_hook(interpolated)
    try:
        with torch.enable_grad(), hooked(subject.model, hooks):
            output = subject.model(input_ids=ids, attention_mask=mask)
            metric = _metric(readout.reduce(output, batch), expected, clean).sum()
            if not metric.requires_grad:
                raise CheckError(f"attribution on {subject.id}: its output has no gradient path from the input "
                                 "embeddings (something in the forward detaches it or runs without gradients); "
                                 "attribution needs a differentiable model: use patching (patch, validate=True) "
                                 "instead")
            metric.backward()
    finally:
        moved.remove()


def _per_latent(over: str) -> str:
    """``features:SITE`` ranks each latent of the dictionary there: ``feature:SITE/*``."""
    return f"feature:{over[len('features:'):]}/*" if over.startswith("features:") else over


def _latent_view(site, grad: torch.Tensor, value: torch.Tensor, known: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient and value at a dictionary's latents, from those at its site: with the error term kept,
    x = decode(f) + error, so dm/df = dm/dx . W_dec (rows are latents)."""
    key = (site.module_site, site.dictionary.key)
    if key not in known:
        local = site.dictionary.to(device=value.device)
        known[key] = (grad @ local.W_dec.T.to(grad.dtype), local.encode(value))
    return known[key]


def _digest(ids: torch.Tensor) -> str:
    return hashlib.blake2b(ids.cpu().numpy().tobytes(), digest_size=8).hexdigest()


def _same_lengths(base, source, name: str) -> None:
    differ = (base.attention_mask.sum(dim=1) != source.attention_mask.sum(dim=1)).nonzero()
    if len(differ):
        raise CheckError(f"attribution with steps > 1 interpolates the input embeddings from base to source, so each "
                         f"pair's two inputs must have the same length; pair {int(differ[0])} of {name!r} does not "
                         "(use steps=1 for pairs of different lengths)")


def attribute(subject, pairs: Concept, over: str = "head:*.*", *, steps: int = 1, validate: bool = False,
              batch_size: int = 32) -> AttributionResult:
    """Score every component of ``over`` (a pattern: ``head:*.*``, ``head:L.*``, ``neurons:*``,
    ``layer:*``, ...) by attribution patching on ``pairs``: (a_source - a_base) . dm/da, the gradient
    at the base (``steps=1``) or, with ``steps=k``, averaged over k points of the straight path from the
    base's input embeddings to the source's (integrated gradients, as EAP-IG: closer to real patching
    where an effect saturates, at k forward and backward passes per batch)."""
    if not isinstance(steps, int) or steps < 1:
        raise CheckError(f"attribution steps must be a whole number >= 1; got {steps!r}")
    sites = expand_any(subject.model, _per_latent(over))
    if any(site.writes_to is not None for site in sites):
        raise CheckError(f"attribution over {over!r}: the latents of a transcoder are read at one site and written at "
                         "another, which attribution patching does not follow yet; use patch() on its features")
    base, source, expected = pairs.pair_inputs(subject)
    if steps > 1:
        _same_lengths(base, source, pairs.name)
    readout = readout_for(subject, pairs.answer_token_ids(subject))
    clean = run(subject, base, readout=readout).scores.argmax(dim=1)
    with not_recorded():
        sources = capture(subject, source, [s.name for s in sites], position="all")
    estimates = torch.zeros(len(sites), dtype=torch.float64)
    modules = list(dict.fromkeys(site.module_site for site in sites))  # heads of a block share one input
    kept: dict = {}
    hooks = [(module, _keeper(kept, module)) for module in modules]
    passes = 0
    for indices, batch in base.batches(batch_size):
        ids, mask = batch.input_ids.to(subject.device), batch.attention_mask.to(subject.device)
        source_ids = source.input_ids[indices].to(subject.device)
        towards = _digest(source.input_ids[indices])  # hashed on the host: no device sync per step
        gradients, at_base = {}, {}
        for step in range(steps):  # step 0 is the base itself (alpha = 0)
            kept.clear()
            count_direct_pass(subject, batch.input_ids, batch.attention_mask,
                              f"attribution gradient at {step / steps:g} of the way to {towards}")
            _backward_at(subject, readout, ids, source_ids, mask, Batch(indices, mask), expected[indices],
                         clean[indices], step / steps, hooks, kept)
            passes += 2
            for module in modules:
                activation = kept.get(module)
                if activation is None or activation.grad is None:
                    raise CheckError(f"attribution at {module.name!r}: no gradient reached it; is it on the path "
                                     "from the input to the output?")
                gradients[module] = gradients.get(module, 0) + activation.grad / steps
                at_base.setdefault(module, activation.detach())
        real = mask.unsqueeze(-1).float()
        in_latents: dict = {}  # a dictionary's latents and their gradients, once per batch
        for number, site in enumerate(sites):
            grad, value = gradients[site.module_site], at_base[site.module_site]
            if site.dictionary is not None:
                grad, value = _latent_view(site, grad, value, in_latents)
            if site.features is not None:
                grad, value = grad[..., slice(*site.features)], value[..., slice(*site.features)]
            donor = sources[site.name][indices].to(value.device)
            width = min(donor.shape[1], value.shape[1])
            difference = (donor[:, :width] - value[:, :width]) * real[:, :width]
            estimates[number] += float((difference * grad[:, :width]).sum())
    estimates /= len(expected)
    actual, correlation, signs = (), float("nan"), float("nan")
    if validate:
        actual = tuple(patching_effects(subject, pairs, sites))
        correlation, signs = agreement(estimates.numpy(), np.array(actual))
    order = np.argsort(-np.abs(estimates.numpy()), kind="stable")
    return AttributionResult(check="attribute", subject=subject.id, site=over, n=len(expected), concept=pairs.name,
                             components=tuple(s.name for s in sites), estimates=tuple(map(float, estimates)),
                             actual=actual, rank_correlation=correlation, sign_agreement=signs,
                             top=tuple(sites[i].name for i in order[:10]), passes=passes, steps=steps,
                             data_digest=base.digest,
                             feature_examples=feature_examples(subject, [sites[i].name for i in order[:5]], [pairs]))
