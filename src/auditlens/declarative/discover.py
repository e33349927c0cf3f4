"""Draft an audit file from measurements: attribution patching ranks the components behind a
behaviour, the top ones become a circuit, and its necessity and faithfulness, measured, become the
audits' thresholds (with a margin). A draft for a person to review, not an audit to trust as is."""

from __future__ import annotations

import datetime
from pathlib import Path

import yaml

from ..checks import attribute, faithfulness, necessity
from ..errors import CheckError


def discover(subject, concept, pairs, *, over: str = "head:*.*", top: int = 3, steps: int = 1,
             dictionaries: dict | None = None) -> tuple[str, dict]:
    """The draft audit file's text, and what it rests on (attribution with ``steps``, circuit, measured values).
    ``dictionaries`` (site -> directory, relative to the draft) are written as its ``dictionaries:`` map:
    the draft's latents (``features:SITE``) name them."""
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
        *(f"# Left out: {line}" for line in left_out),
    ]
    if not audits:
        raise CheckError(f"discover: the top {top} components of {over} neither carry nor are needed for "
                         f"{concept.name!r} on {subject.id} ({'; '.join(left_out)}); try a larger --top or --over")
    body = {**({"dictionaries": dict(dictionaries)} if dictionaries else {}), "audits": audits}
    text = "\n".join(header) + "\n" + yaml.dump(body, Dumper=_NoAliases, sort_keys=False, allow_unicode=True,
                                                width=120)
    return text, {"circuit": circuit, "accuracy_drop": drop, "faithfulness": kept,
                  "rank_correlation": ranking.rank_correlation}


class _NoAliases(yaml.SafeDumper):
    """Each circuit written out in full: a reviewer reads lists, not &id001 anchors."""

    def ignore_aliases(self, data) -> bool:
        return True


def write_draft(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
