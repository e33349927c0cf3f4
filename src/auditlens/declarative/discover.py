"""Draft an audit file from measurements: attribution patching ranks the components behind a
behaviour, the top ones become a circuit, and its necessity and faithfulness, measured, become the
audits' thresholds (with a margin); on request, a DAS on the counterfactual pairs too (IIA and
selectivity, measured, the same way). A draft for a person to review, not an audit to trust as is."""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import yaml

from ..checks import attribute, das, faithfulness, necessity
from ..errors import CheckError


def discover(subject, concept, pairs, *, over: str = "head:*.*", top: int = 3, steps: int = 1,
             dictionaries: dict | None = None, das_arguments: dict | None = None) -> tuple[str, dict]:
    """The draft audit file's text, and what it rests on (attribution with ``steps``, circuit, measured values).
    ``dictionaries`` (site -> directory, relative to the draft) are written as its ``dictionaries:`` map:
    the draft's latents (``features:SITE``) name them. ``das_arguments`` (``{"at": "layer:*"}``, or a chosen
    layer, and any other argument of ``das``; dim 1 unless given): a ``das:`` audit on ``pairs`` too."""
    ranking = attribute(subject, pairs, over, steps=steps, validate=True)
    circuit = list(ranking.top[:top])
    needed = necessity(subject, concept, circuit)
    faithful = faithfulness(subject, concept, circuit)
    drop, kept = float(needed.accuracy_drop), float(faithful.faithfulness)
    drop_bound, kept_bound = round(drop / 2, 2), round(max(0.0, kept - 0.1), 2)
    name = f"{concept.name} runs through {', '.join(circuit)}"
    audits, left_out = [], []
    if drop_bound > 0:  # a bound of 0 could not fail: no audit rather than one that proves nothing
        audits.append({"name": f"{name}: ablating them breaks it",
                       "necessity": {"concept": concept.name, "circuit": list(circuit)},
                       "expect": {"accuracy_drop": f">= {drop_bound}"}})
    else:
        left_out.append(f"necessity: ablating the circuit dropped the accuracy by {drop:.3f}; no audit drafted")
    if kept_bound > 0:
        audits.append({"name": f"{name}: they alone keep it",
                       "faithfulness": {"concept": concept.name, "circuit": list(circuit)},
                       "expect": {"faithfulness": f">= {kept_bound}"}})
    else:
        left_out.append(f"faithfulness: the circuit alone keeps {kept:.3f} of the behaviour; no audit drafted "
                        "(a larger --top may find a circuit that carries it)")
    das_audit, das_line, das_found = _das_audit(subject, pairs, das_arguments) if das_arguments else (None, "", {})
    if das_audit:
        audits.append(das_audit)
    elif das_line:
        left_out.append(das_line)
    header = [
        f"# Drafted by `auditlens discover` on {subject.id}, {datetime.date.today().isoformat()}: REVIEW BEFORE USE.",
        f"# Attribution patching over {over} on the pairs of {pairs.name!r} ({ranking.passes} passes), checked",
        f"# against real patching: Spearman {ranking.rank_correlation:.2f}. Top components by estimated effect:",
        *(f"#   {c}: estimated {e:+.3f}, actual {a:+.3f}"
          for c, e, a in sorted(zip(ranking.components, ranking.estimates, ranking.actual),
                                key=lambda row: -abs(row[1]))[:max(top, 5)]),
        f"# Measured on {concept.name!r}: necessity accuracy_drop {drop:.3f} (threshold: half), faithfulness "
        f"{kept:.3f} (threshold: 0.1 below).",
        "# Thresholds measured on one model say what it does, not what it should do: decide them, then run",
        "# the audit on a model you know cheats, to see it fail.",
        *(_comment(das_line) if das_audit else []),
        *(line for c in (concept, pairs) if c.causal_model is not None and not c.pairs for line in _causal_note(c)),
        *(f"# Left out: {line}" for line in left_out),
    ]
    if not audits:
        raise CheckError(f"discover: the top {top} components of {over} neither carry nor are needed for "
                         f"{concept.name!r} on {subject.id} ({'; '.join(left_out)}); try a larger --top or --over")
    body = {**({"dictionaries": dict(dictionaries)} if dictionaries else {}), "audits": audits}
    text = "\n".join(header) + "\n" + yaml.dump(body, Dumper=_NoAliases, sort_keys=False, allow_unicode=True,
                                                width=120)
    return text, {"circuit": circuit, "accuracy_drop": drop, "faithfulness": kept,
                  "rank_correlation": ranking.rank_correlation, **das_found}


DAS_IIA_MARGIN = 0.1  # the drafted IIA bound: this far below what was measured


def _das_audit(subject, pairs, arguments: dict) -> tuple[dict | None, str, dict]:
    """A ``das:`` audit on ``pairs`` measured with ``arguments`` (a sweep is held to its best site's values),
    or None; a line on what was measured (and, without an audit, why none); the measured values. Bounds:
    IIA ``DAS_IIA_MARGIN`` below what was measured, selectivity half."""
    if not isinstance(arguments.get("at"), str):
        raise CheckError(f"discover: a das draft needs the site to search, e.g. {{'at': 'layer:*'}}; got {arguments!r}")
    arguments = {"pairs": pairs.name, "at": arguments["at"], "dim": 1, **arguments}
    measured = das(subject, pairs, **{k: v for k, v in arguments.items() if k != "pairs"})
    at, dim, best = arguments["at"], arguments["dim"], "best_" if "*" in arguments["at"] else ""
    iia, selectivity = float(getattr(measured, f"{best}iia")), float(getattr(measured, f"{best}selectivity"))
    found = {"das_iia": iia, "das_selectivity": selectivity, **({"das_site": measured.best_site} if best else {})}
    line = (f"das at {at}{f' (best site {measured.best_site})' if best else ''}, dim {dim}: IIA {iia:.3f}, "
            f"selectivity {selectivity:.3f} (IIA minus the shuffled-label control's)")
    iia_bound, selectivity_bound = round(max(0.0, iia - DAS_IIA_MARGIN), 2), round(selectivity / 2, 2)
    interval = (measured[measured.best_site] if best else measured).selectivity_ci
    if interval is None or interval.low <= 0 or selectivity_bound <= 0 or iia_bound <= 0:
        return None, (f"{line}: selectivity's 95% interval {interval} reaches 0, so no variable shows there "
                      "beyond a fit to any labels; no das audit drafted"), found  # a bound it could pass by chance
    line += (f". Bounds: IIA {DAS_IIA_MARGIN} below, selectivity half; tune both (and dim, at) on a model you "
             "know cheats: selectivity is what tells a variable from a fit to any labels")
    somewhere = f"some site of {at}" if best else at
    return {"name": f"the pairs of {pairs.name} follow a {dim}-dimensional subspace at {somewhere}",
            "das": arguments,
            "expect": {f"{best}iia": f">= {iia_bound}", f"{best}selectivity": f">= {selectivity_bound}"}}, line, found


def _causal_note(concept) -> list[str]:
    """Where a concept carries a causal model but no pairs: how to make DAS pairs from it (not in YAML)."""
    variables = ", ".join(concept.causal_model.variables)
    return _comment(f"{concept.name!r} has a causal model (variables {variables}): a DAS on one of them takes "
                    "its pairs from interchange_pairs(concept.causal_model, concept, VARIABLE, seed=0), in a Python "
                    "audit (a YAML das: names a concept file with pairs)")


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, 104, initial_indent="# ", subsequent_indent="#   ")


class _NoAliases(yaml.SafeDumper):
    """Each circuit written out in full: a reviewer reads lists, not &id001 anchors."""

    def ignore_aliases(self, data) -> bool:
        return True


def write_draft(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
