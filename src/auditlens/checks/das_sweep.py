"""A DAS at every site of a sweep (``layer:*``): the per-layer curve and the most selective site, as
``probe`` reports its sweep."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..progress import report
from ..results import CheckResult, not_recorded
from ..sites.features import expand_any
from ..sites.resolve import alias_table

BASELINE = "embed"  # in a layer:* sweep: the input to the first block, shown, never the best site


def sweep_sites(subject, at: str) -> list:
    """The sites ``at`` names: one site, or every site of a pattern (``layer:*`` with ``embed`` first)."""
    if "*" not in at:
        return [subject.site(at)]
    sites = expand_any(subject.model, at)
    if at == "layer:*" and BASELINE in alias_table(subject.model):
        sites = [subject.site(BASELINE), *sites]
    return sites


@dataclass(frozen=True, kw_only=True)
class DASSweep(CheckResult):
    """DAS at every site of a sweep. ``best_site`` is the most selective (IIA minus the shuffled-label
    control's; ties by IIA), never the ``embed`` baseline; ``best_iia`` and ``best_selectivity`` are its."""

    mechanistic = True
    figure_metrics = ("best_iia", "best_selectivity")
    curve_series = (("iia", "IIA (held-out pairs)"), ("control_iia", "control (shuffled labels)"))
    selection_rule = "the most selective site (IIA minus the shuffled-label control's; ties by IIA)"

    concept: str = ""
    dim: int = 1
    position: str = "last"
    results: tuple = ()  # DASResult per site, in sweep order
    best_iia: float = 0.0
    best_selectivity: float = 0.0
    best_site: str = ""

    @classmethod
    def of(cls, subject, pairs, at: str, dim: int, position, sites: list, at_site: Callable) -> DASSweep:
        """Run ``at_site(site)`` for each site (its results not recorded alone) and choose the best."""
        with not_recorded():  # the sweep is the result; its per-site parts live inside it
            results = []
            for number, site in enumerate(sites, 1):
                report(f"das {pairs.name!r} on {subject.id}: training at {site.name} ({number}/{len(sites)})",
                       detail=True)
                results.append(at_site(site))
        candidates = [r for r in results if r.site != BASELINE] or results
        best = max(candidates, key=lambda r: (float(r.selectivity), float(r.iia)))
        return cls(check="das", subject=subject.id, site=at, n=len(pairs.pairs), concept=pairs.name, dim=dim,
                   position=str(position), results=tuple(results), best_iia=float(best.iia),
                   best_selectivity=float(best.selectivity), best_site=best.site, data_digest=best.data_digest,
                   per_example={"best_iia": best.per_example["iia"],
                                "best_selectivity": best.per_example["selectivity"]})

    def headline(self) -> str:
        return (f"DAS sweep (dim {self.dim}, position {self.position}) for {self.concept!r} at {self.site} on "
                f"{self.subject}; best site by selectivity: {self.best_site} (selectivity "
                f"{self.best_selectivity:.3f}, IIA {self.best_iia:.3f} there)")

    def __getitem__(self, site: str):
        for result in self.results:
            if result.site == site:
                return result
        raise KeyError(f"no site {site!r} in this sweep; it has {[r.site for r in self.results]}")

    def explain(self) -> str:
        lines = [self.headline(),
                 f"  {'site':<12}{'IIA':>8}{'control':>10}{'selectivity':>13}{'dormant':>10}   95% CI of IIA"]
        for r in self.results:
            note = "   (input to block 0: a baseline)" if r.site == BASELINE else ""
            lines.append(f"  {r.site:<12}{r.iia:>8.3f}{r.control_iia:>10.3f}{r.selectivity:>13.3f}"
                         f"{r.dormant_share:>10.3f}   {r.iia_ci}{note}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = super().to_dict()
        data["per_site"] = [r.to_dict() for r in self.results]  # drawn as a curve of curve_series
        return data
