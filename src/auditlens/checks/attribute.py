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

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr

from ..concepts import Concept
from ..data_interventions import patch_from
from ..engine import capture, run
from ..errors import CheckError
from ..hooks import Batch, hooked
from ..readout import readout_for
from ..results import CheckResult, not_recorded
from ..sites import expand_sites


@dataclass(frozen=True, kw_only=True)
class AttributionResult(CheckResult):
    """Estimated (and, validated, actual) mean effect of patching each component on the pair metric."""

    concept: str = ""
    components: tuple[str, ...] = ()
    estimates: tuple[float, ...] = ()  # mean change of the metric, first-order estimate
    actual: tuple[float, ...] = ()  # mean change of the metric under real activation patching (validate)
    rank_correlation: float = float("nan")  # Spearman, estimates against actual
    top: tuple[str, ...] = ()  # components by |estimate|, largest first (at most 10)
    passes: int = 0  # forward + backward passes the estimate took (batches x 2)

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


def attribute(subject, pairs: Concept, over: str = "head:*.*", *, validate: bool = False,
              batch_size: int = 32) -> AttributionResult:
    """Score every component of ``over`` (a pattern: ``head:*.*``, ``head:L.*``, ``neurons:*``,
    ``layer:*``, ...) by attribution patching on ``pairs``."""
    sites = expand_sites(subject.model, over)
    base, source, expected = pairs.pair_inputs(subject)
    readout = readout_for(subject, pairs.answer_token_ids(subject))
    clean = run(subject, base, readout=readout).scores.argmax(dim=1)
    with not_recorded():
        sources = capture(subject, source, [s.name for s in sites], position="all")
    estimates = torch.zeros(len(sites), dtype=torch.float64)
    modules = list(dict.fromkeys(site.module_site for site in sites))  # heads of a block share one input
    kept: dict = {}
    hooks = [(module, _keeper(kept, module)) for module in modules]
    batches = 0
    embeddings = subject.model.get_input_embeddings()
    for indices, batch in base.batches(batch_size):
        kept.clear()
        grad_from_here = embeddings.register_forward_hook(lambda module, args, output: output.requires_grad_(True))
        try:
            with torch.enable_grad(), hooked(subject.model, hooks):
                ids, mask = batch.input_ids.to(subject.device), batch.attention_mask.to(subject.device)
                output = subject.model(input_ids=ids, attention_mask=mask)
                scores = readout.reduce(output, Batch(indices, mask))
                _metric(scores, expected[indices], clean[indices]).sum().backward()
        finally:
            grad_from_here.remove()
        batches += 1
        real = mask.unsqueeze(-1).float()
        for number, site in enumerate(sites):
            activation = kept.get(site.module_site)
            if activation is None or activation.grad is None:
                raise CheckError(f"attribution at {site.name!r}: no gradient reached it; is it on the path from "
                                 "the input to the output?")
            value, grad = activation.detach(), activation.grad
            if site.features is not None:
                value, grad = value[..., slice(*site.features)], grad[..., slice(*site.features)]
            donor = sources[site.name][indices].to(value.device)
            width = min(donor.shape[1], value.shape[1])
            difference = (donor[:, :width] - value[:, :width]) * real[:, :width]
            estimates[number] += float((difference * grad[:, :width]).sum())
    estimates /= len(expected)
    actual, correlation = (), float("nan")
    if validate:
        before = _metric(run(subject, base, readout=readout).scores, expected, clean)
        effects = []
        with not_recorded():
            for site in sites:
                patched = run(subject, base, readout=readout, interventions=[patch_from(subject, site, source)]).scores
                effects.append(float((_metric(patched, expected, clean) - before).mean()))
        actual = tuple(effects)
        if len(effects) > 1 and np.ptp(effects) > 0 and np.ptp(estimates.numpy()) > 0:
            correlation = float(spearmanr(estimates.numpy(), np.array(effects)).statistic)
        # else undefined (NaN): one component, or patching no component changes anything
    order = np.argsort(-np.abs(estimates.numpy()), kind="stable")
    return AttributionResult(check="attribute", subject=subject.id, site=over, n=len(expected), concept=pairs.name,
                             components=tuple(s.name for s in sites), estimates=tuple(map(float, estimates)),
                             actual=actual, rank_correlation=correlation,
                             top=tuple(sites[i].name for i in order[:10]), passes=2 * batches,
                             data_digest=base.digest)
