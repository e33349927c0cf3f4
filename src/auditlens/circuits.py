"""Circuits: named sets of components (attention heads, MLP hidden units, whole MLPs or attention
layers) that an audit says carry a behaviour.

Every component is a set of feature ranges at the input of a block's attention or MLP output
projection (the sites ``head:L.H``, ``neuron:L.I``, ``neurons:L`` resolve there), so a circuit, and
its complement among every head and every MLP, can be ablated by replacing ranges of those inputs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import CheckError, SiteError, closest
from .safe_files import safe_yaml
from .sites.features import is_feature_name, parse_feature_name
from .sites.names import parse_alias
from .sites.resolve import Site, head_layout, input_width, n_layers

METRICS = ("accuracy", "logit_difference")  # what faithfulness and minimality score a circuit on

COMPONENT_PATTERN = (r"^(head:-?\d+\.-?\d+|neuron:-?\d+\.-?\d+|neurons:-?\d+|mlp:-?\d+|attn:-?\d+"
                     r"|feature:[^/]+/\d+|features:[^/]+)$")
CIRCUIT_KEYS = ("name", "description", "components")

COMPONENTS = ("heads (head:L.H), MLP hidden units (neuron:L.I), whole MLPs (mlp:L or neurons:L), attention "
              "layers (attn:L) or latents of an attached dictionary (feature:SITE/F, features:SITE)")


@dataclass(frozen=True)
class Circuit:
    """A named set of components; ``Circuit.of(["head:1.0", "mlp:0"])`` names one inline, ``Circuit.of(path)``
    reads a circuit file."""

    name: str
    components: tuple[str, ...]
    description: str = ""

    def __post_init__(self):
        if not self.components:
            raise CheckError(f"circuit {self.name!r} has no components; give {COMPONENTS}")
        if len(set(self.components)) != len(self.components):
            raise CheckError(f"circuit {self.name!r} names a component twice: {list(self.components)}")

    @classmethod
    def of(cls, value: Circuit | Sequence[str] | str | os.PathLike, name: str | None = None) -> Circuit:
        if isinstance(value, Circuit):
            return value
        if isinstance(value, os.PathLike) or (isinstance(value, str) and value.endswith((".yaml", ".yml"))):
            return load_circuit(value)  # a circuit file, as YAML's circuit: names one
        if isinstance(value, str) or not hasattr(value, "__iter__") or not all(isinstance(c, str) for c in value):
            raise CheckError(f"a circuit is a Circuit, a circuit file (.yaml) or a list of component names "
                             f"({COMPONENTS}); got {value!r}")
        return cls(name or "+".join(value), tuple(value))

    def without(self, component: str) -> Circuit:
        return Circuit(f"{self.name} - {component}", tuple(c for c in self.components if c != component))


def load_circuit(path: str | Path) -> Circuit:
    """A circuit file: ``name`` (default: the file's stem), ``description``, ``components`` (a list of
    head:L.H, neuron:L.I, neurons:L, mlp:L, attn:L). Errors name the file and the key."""
    path = Path(path)
    try:
        raw = safe_yaml.load(safe_yaml.read_utf8(path))
    except FileNotFoundError:
        raise CheckError(f"no circuit file at {path}") from None
    except safe_yaml.NotTextError as exc:
        raise CheckError(f"{path}:{exc.line}: {exc}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise CheckError(f"{path}: not a readable YAML file: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(raw, dict):
        raise CheckError(f"{path}: a circuit file is a mapping of {', '.join(CIRCUIT_KEYS)}; got {type(raw).__name__}")
    for key in raw:
        if key not in CIRCUIT_KEYS:
            near = closest(str(key), CIRCUIT_KEYS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise CheckError(f"{path}: unknown key {key!r}{hint} Allowed: {', '.join(CIRCUIT_KEYS)}")
    components = raw.get("components")
    if not isinstance(components, list) or not components or not all(isinstance(c, str) for c in components):
        raise CheckError(f"{path}: components must be a non-empty list of component names ({COMPONENTS})")
    for index, component in enumerate(components):
        if not re.match(COMPONENT_PATTERN, component):
            raise CheckError(f"{path}: components[{index}] {component!r} is not a component; give {COMPONENTS}")
        if component in components[:index]:
            raise CheckError(f"{path}: components[{index}] {component!r} is named twice (first as "
                             f"components[{components.index(component)}]); a circuit names each component once")
    return Circuit(str(raw.get("name", path.stem)), tuple(components), str(raw.get("description", "")))


def circuit_beside(audit_file: str | Path, name: str) -> Circuit:
    """The circuit file ``name`` an audit file names, relative to its directory and inside it (unless
    AUDITLENS_ALLOW_OUTSIDE_FILES=1, as for concept files)."""
    base = Path(audit_file).parent
    path = base / name
    if os.environ.get("AUDITLENS_ALLOW_OUTSIDE_FILES", "") != "1" and not path.resolve().is_relative_to(base.resolve()):
        raise CheckError(f"circuit file {name!r} lies outside the audit file's directory {base}; circuit files must "
                         "be beside it or below (set AUDITLENS_ALLOW_OUTSIDE_FILES=1 to allow files elsewhere)")
    return load_circuit(path)


def component_ranges(subject, component: str) -> tuple[Site, tuple[int, int]]:
    """The projection-input site a component lies in (whole, no slice) and its feature range there; for
    a dictionary's latent, the whole ``features:SITE`` site and its latent range."""
    if is_feature_name(component):
        base, latent = parse_feature_name(component)
        whole = subject.site(f"features:{base}")
        return whole, (0, whole.dictionary.d_sae) if latent is None else subject.site(component).features
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
    return input_width(subject.model.get_submodule(site.module_path))


def universe(subject, circuit: Circuit | None = None) -> list[str]:
    """What 'everything outside the circuit' ranges over: every head and every MLP, and every latent of
    each dictionary the circuit names; a circuit of latents only ranges over its dictionaries' latents."""
    bases = list(dict.fromkeys(parse_feature_name(c)[0] for c in (circuit.components if circuit else ())
                               if is_feature_name(c)))
    latents = [f"features:{base}" for base in bases]
    if circuit is not None and bases and all(is_feature_name(c) for c in circuit.components):
        return latents
    _, heads, _ = head_layout(subject.model)
    return [f"head:{layer}.{head}" for layer in range(n_layers(subject.model)) for head in range(heads)] + [
        f"mlp:{layer}" for layer in range(n_layers(subject.model))] + latents


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
    for site, spans in ranges_by_site(subject, universe(subject, circuit)).items():
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
