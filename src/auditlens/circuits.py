"""Circuits: named sets of components (attention heads, MLP hidden units, whole MLPs or attention
layers) that an audit says carry a behaviour.

Every component is a set of feature ranges at the input of a block's attention or MLP output
projection (the sites ``head:L.H``, ``neuron:L.I``, ``neurons:L`` resolve there), so a circuit, and
its complement among every head and every MLP, can be ablated by replacing ranges of those inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import CheckError, SiteError
from .sites import Site, head_layout, n_layers, parse_alias

COMPONENTS = ("heads (head:L.H), MLP hidden units (neuron:L.I), whole MLPs (mlp:L or neurons:L) or attention "
              "layers (attn:L)")


@dataclass(frozen=True)
class Circuit:
    """A named set of components; ``Circuit.of(["head:1.0", "mlp:0"])`` names one inline."""

    name: str
    components: tuple[str, ...]
    description: str = ""

    def __post_init__(self):
        if not self.components:
            raise CheckError(f"circuit {self.name!r} has no components; give {COMPONENTS}")
        if len(set(self.components)) != len(self.components):
            raise CheckError(f"circuit {self.name!r} names a component twice: {list(self.components)}")

    @classmethod
    def of(cls, value: Circuit | Sequence[str], name: str | None = None) -> Circuit:
        if isinstance(value, Circuit):
            return value
        if isinstance(value, str) or not all(isinstance(c, str) for c in value):
            raise CheckError(f"a circuit is a Circuit or a list of component names ({COMPONENTS}); got {value!r}")
        return cls(name or "+".join(value), tuple(value))

    def without(self, component: str) -> Circuit:
        return Circuit(f"{self.name} - {component}", tuple(c for c in self.components if c != component))


def component_ranges(subject, component: str) -> tuple[Site, tuple[int, int]]:
    """The projection-input site a component lies in (whole, no slice) and its feature range there."""
    alias = parse_alias(component)
    if alias is not None and alias[0] in ("mlp", "attn") and alias[1] != "*":
        kind, layer = alias
        first = subject.site(f"neurons:{layer}" if kind == "mlp" else f"head:{layer}.0")
        if kind == "mlp":
            return _input_of(first), (0, _width(subject, first))
        _, heads, width = head_layout(subject.model)
        return _input_of(first), (0, heads * width)
    if not component.startswith(("head:", "neuron:", "neurons:")):
        raise SiteError(f"{component!r} is not a circuit component; a circuit's components are {COMPONENTS}")
    site = subject.site(component)
    span = site.features if site.features is not None else (0, _width(subject, site))
    return _input_of(site), span


def _input_of(site: Site) -> Site:
    """The whole input of the projection a component lies in, named after it (one name per module)."""
    return Site(f"input of {site.module_path}", site.module_path, reads_input=True)


def _width(subject, site: Site) -> int:
    module = subject.model.get_submodule(site.module_path)
    return getattr(module, "in_features", None) or getattr(module, "nx", None) or module.weight.shape[0]


def universe(subject) -> list[str]:
    """Every head and every MLP: what 'everything outside the circuit' ranges over."""
    _, heads, _ = head_layout(subject.model)
    return [f"head:{layer}.{head}" for layer in range(n_layers(subject.model)) for head in range(heads)] + [
        f"mlp:{layer}" for layer in range(n_layers(subject.model))]


def ranges_by_site(subject, components: Sequence[str]) -> dict[Site, list[tuple[int, int]]]:
    """Components grouped by the projection input they lie in (one edit per site)."""
    grouped: dict[Site, list[tuple[int, int]]] = {}
    for component in components:
        site, span = component_ranges(subject, component)
        grouped.setdefault(site, []).append(span)
    return {site: _merged(spans) for site, spans in grouped.items()}


def complement(subject, circuit: Circuit) -> dict[Site, list[tuple[int, int]]]:
    """Every feature range of the universe not covered by the circuit, per projection-input site."""
    covered = ranges_by_site(subject, circuit.components)
    outside: dict[Site, list[tuple[int, int]]] = {}
    for site, spans in ranges_by_site(subject, universe(subject)).items():
        for start, stop in spans:
            outside.setdefault(site, []).extend(_subtract((start, stop), covered.get(site, [])))
    return {site: _merged(spans) for site, spans in outside.items() if spans}


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with touching or overlapping ranges joined."""
    joined: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(stop, joined[-1][1]))
        else:
            joined.append((start, stop))
    return joined


def _subtract(span: tuple[int, int], removed: list[tuple[int, int]]) -> list[tuple[int, int]]:
    pieces = [span]
    for cut_start, cut_stop in removed:
        pieces = [piece for start, stop in pieces
                  for piece in ((start, min(stop, cut_start)), (max(start, cut_stop), stop)) if piece[0] < piece[1]]
    return pieces
