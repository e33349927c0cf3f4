"""The before/after report of a repair: ``repair.json`` (also the mark that a directory holds a repair of
``original``, so audits that select the original select it), ``repair.md`` and ``repair.html``. Torch-free."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

REPAIR_FILE = "repair.json"
REPORT_FILES = (REPAIR_FILE, "repair.md", "repair.html")


def repaired_from(model: str) -> str | None:
    """The spec of the model a repair directory was made from (None for any other model)."""
    path = Path(model) / REPAIR_FILE
    if model.startswith("fixture:") or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("original")
    except (OSError, ValueError, AttributeError):
        return None


def write(directory: Path, result: dict) -> None:
    """``repair.json`` and ``repair.md`` into ``directory`` (made when missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / REPAIR_FILE).write_text(json.dumps(result, indent=1, default=_plain), encoding="utf-8")
    (directory / "repair.md").write_text(markdown(result), encoding="utf-8")
    (directory / "repair.html").write_text(html(result), encoding="utf-8")


def html(result: dict) -> str:
    """The report as one self-contained page (jinja2, every text escaped)."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("auditlens", "templates"), autoescape=True,
                                     undefined=jinja2.ChainableUndefined)
    return environment.get_template("repair.html.j2").render(r=json.loads(json.dumps(result, default=_plain)))


def _plain(value):
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _pair(measure: dict | None, digits: int = 3) -> str:
    if not measure:
        return "-"
    text = f"{measure['before']:.{digits}f} -> {measure['after']:.{digits}f} ({measure['change']:+.{digits}f}"
    interval = measure.get("interval")
    return text + (f", 95% CI [{interval['low']:+.{digits}f}, {interval['high']:+.{digits}f}])" if interval else ")")


def markdown(result: dict) -> str:
    """The report as Markdown: the outcome and its reason, the edit, the measures, the audits, the trials."""
    lines = [f"# Repair of {result['original']}: {result['outcome']}", "", result["reason"], ""]
    shortcut = result.get("shortcut")
    if shortcut:
        lines += [f"Shortcut: audit '{shortcut['audit']}' ({shortcut.get('check', 'patch')} of {shortcut['concept']} "
                  f"at {shortcut['site']}: {shortcut['metric']} = {shortcut['value']:.3f}, needed {shortcut['op']} "
                  f"{shortcut['bound']}).", ""]
    if result.get("unholdable"):
        lines += ["Sites that carry the shortcut but cannot hold an edit:", ""]
        lines += [f"- {site}: {reason}" for site, reason in result["unholdable"].items()] + [""]
    if result.get("edits"):
        lines += ["## The edit", ""] + [f"- {e}" for e in result["edits"]] + [""]
    measures = result.get("measures") or {}
    if measures:
        lines += ["## Before and after", "", "| measure | original -> repaired |", "|---|---|"]
        lines += [f"| {label} | {_pair(measures.get(key))} |" for key, label in (
            ("shortcut", f"the audit's own metric, {(shortcut or {}).get('metric', '')}"),
            ("reliance", "reliance on the shortcut: accuracy on the pairs' sources (nuisance swapped), expected the "
                         "bases' labels"),
            ("clean", f"clean accuracy ({result.get('clean_data', 'clean data')})"),
            ("cross_entropy", "next-token cross-entropy on reference text (nats)")) if measures.get(key)]
        gap = result.get("exported_equals_hooked")
        if gap:
            lines.append(f"| exported model vs hooked edit, largest logit gap | {gap['float64']:.1e} in float64, "
                         f"{gap['float32']:.1e} in float32 |")
        lines.append("")
    if result.get("audits"):
        lines += ["## Audits", "", "| audit | original | repaired |", "|---|---|---|"]
        lines += [f"| {a['name']} | {a['before']} | {a['after']} |" for a in result["audits"]] + [""]
    if result.get("trials"):
        lines += ["## Edits tried (smallest first)", "",
                  "| sites | rank | held at | metric | clean change | kept | why not |",
                  "|---|---|---|---|---|---|---|"]
        for t in result["trials"]:
            metric = "-" if t["metric"] is None else f"{t['metric']:.3f}"
            change = "-" if t["change"] is None else f"{t['change']:+.3f}"
            held, kept = t.get("held_at") or "-", "yes" if t["kept"] else "no"
            lines.append(f"| {t['site']} | {t['rank']} | {held} | {metric} | {change} | {kept} | {t['note']} |")
    return "\n".join(lines) + "\n"
