"""summary.md: short enough for a CI job summary or a pull-request comment."""

from __future__ import annotations

from .mutation import markdown_lines
from .outcomes import OUTCOMES

ICONS = {"learned": "✅", "cheated": "❌", "inconclusive": "⚠️"}


_MARKDOWN = "\\`*_[]()#!|~"  # what makes links, images, emphasis, code, headings, tables and strikethrough


def _cell(text) -> str:
    """Text for a table cell or a list item: Markdown characters escaped, so a model id or an audit name
    cannot become a link, an image or emphasis in a pull-request comment. A bound reads as itself in the
    raw file too (``<=`` as ``≤``); any other ``<`` becomes ``&lt;``, so no tag survives."""
    text = str(text).replace("\n", " ").replace("<=", "≤").replace(">=", "≥").replace("<", "&lt;")
    return "".join(f"\\{c}" if c in _MARKDOWN else c for c in text)


def _code(text) -> str:
    """Text inside a code span: only a backtick could end it (and a pipe the table cell)."""
    return str(text).replace("`", "'").replace("|", "\\|").replace("\n", " ")


def _passes(model: dict) -> str:
    """Forward passes executed / the lower bound (reports from before the bound was kept show '?')."""
    return f"{model.get('forward_passes', '?')} / {model.get('forward_passes_lower_bound', '?')}"


def _threshold(check: dict, threshold: dict, requirement: str) -> str:
    """``flip_rate = 1.000 (needs <= 0.05) at patch layer:0``: the number from the check it was held to."""
    value = check["metrics"].get(threshold["metric"], float("nan"))
    where = f"{_cell(check['check'])} {_cell(check['site'])}"
    where += f" on {_cell(check['concept'])}" if check.get("concept") else ""
    if check.get("trigger"):  # search_trigger: what it found, and what that does to one input
        shown = check.get("examples") or [{}]
        where += f", trigger `{_code(check['trigger'])}`" + (
            f" (`{_code(shown[0]['input'])}`: {_cell(shown[0]['note'])})" if shown[0] else "")
    return f"{threshold['metric']} = {value:.3f} ({requirement}) at {where}"


def outcome_counts(counts: dict) -> str:
    """``12: 10 passed, 1 failed, 1 xfail (1 uncertain)``: the total, then every outcome that occurred."""
    parts = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts.get(o))
    shaky = f" ({counts['uncertain']} uncertain)" if counts.get("uncertain") else ""
    return f"{counts.get('total', 0)}: {parts or 'none'}{shaky}"


def render_markdown(report: dict, max_failures: int = 20) -> str:
    run = report["run"]
    lines = ["# auditlens report", "",
             f"auditlens {run.get('auditlens')}, seed {run.get('seed')}, "
             f"commit {run.get('git_commit') or 'unknown'}", "",
             *([f"**This run was interrupted** ({_cell(run['interrupted'])}): no model has a verdict.", ""]
               if run.get("interrupted") else []),
             "| model | verdict | audits | forward passes (run / needed) | why |",
             "|---|---|---|---|---|"]
    for model in report["models"]:
        lines.append(f"| `{_code(model['id'])}` | {ICONS.get(model['verdict'], '')} {model['verdict']} | "
                     f"{outcome_counts(model['counts'])} | {_passes(model)} | {_cell(model['reason'])} |")
    for model in report["models"]:
        if model.get("passes_above_bound"):
            above = model["forward_passes"] - model["forward_passes_lower_bound"]
            lines += ["", f"`{_code(model['id'])}` ran {above} forward passes above the lower bound: "
                      + "; ".join(_cell(w) for w in model["passes_above_bound"])]
    rebuilt = [m for m in report["models"] if (m.get("origin") or "").startswith("built on this machine")]
    if rebuilt:
        lines += ["", "Organisms not shipped in fixtures/ and trained for this run (their weights, and so their "
                  "figures, depend on this machine's CPU kernels): "
                  + ", ".join(f"`{_code(m['id'])}` ({_cell(m['origin'])})" for m in rebuilt) + "."]
    failures = [(m["id"], a) for m in report["models"] for a in m["audits"] if a["outcome"] == "failed"]
    if failures:
        lines += ["", "## Failed audits", ""]
        for model, audit in failures[:max_failures]:
            missed = [(c, t) for c in audit["checks"] for t in c.get("thresholds", []) if not t["passed"]]
            numbers = "; ".join(_threshold(c, t, f"needs {t['op']} {t['value']:g}") for c, t in missed[:3])
            numbers += f"; and {len(missed) - 3} more" if len(missed) > 3 else ""
            numbers = numbers or _cell(audit.get("message") or "")
            lines.append(f"- `{_code(model)}` **{_cell(audit['name'])}**: {numbers}")
        if len(failures) > max_failures:
            lines.append(f"- … and {len(failures) - max_failures} more (see report.html)")
    for outcome, title, why in (("error", "Audits that ended in error (no finding either way)", "message"),
                                ("vacuous", "Vacuous audits (passed, but could not have failed)", "vacuous"),
                                ("lost", "Lost audits (their worker died)", "message")):
        listed = [(m["id"], a) for m in report["models"] for a in m["audits"] if a["outcome"] == outcome]
        if listed:
            lines += ["", f"## {title}", ""]
            lines += [f"- `{_code(model)}` **{_cell(audit['name'])}**: {_cell(audit.get(why) or '')}"
                      for model, audit in listed[:max_failures]]
    not_run = [(m["id"], nodeid) for m in report["models"] for nodeid in m.get("not_run", [])]
    if not_run:
        lines += ["", "## Audits that did not run", ""]
        lines += [f"- `{_code(model)}` `{_code(nodeid)}`" for model, nodeid in not_run[:max_failures]]
        lines += [f"- … and {len(not_run) - max_failures} more"] if len(not_run) > max_failures else []
    uncertain = [(m["id"], a) for m in report["models"] for a in m["audits"] if a.get("uncertain")]
    if uncertain:
        lines += ["", "## Uncertain audits (an interval straddles its threshold)", ""]
        for model, audit in uncertain[:max_failures]:
            shaky = [(c, t) for c in audit["checks"] for t in c.get("thresholds", []) if t.get("uncertain")]
            numbers = "; ".join(_threshold(c, t, f"{t['op']} {t['value']:g}: {'met' if t['passed'] else 'missed'}")
                                for c, t in shaky)
            lines.append(f"- `{_code(model)}` **{_cell(audit['name'])}** ({audit['outcome']}): {numbers}")
    comparison = report.get("comparison")
    if comparison:
        lines += ["", "## Against the baseline", ""]
        for model in comparison["models"]:
            old, new = model["verdict"]
            if old != new:
                lines.append(f"- `{_code(model['id'])}`: verdict {old} → {new}")
            for audit in model["audits"]:
                if audit["change"]:
                    lines.append(f"- `{_code(model['id'])}` {_cell(audit['nodeid'])}: {audit['change']}")
        if not comparison.get("compared", 1):
            lines.append("- nothing compared: no model of this run is in the baseline (by id or fingerprint)")
        lines.append(f"- known failures (failing in the baseline too): {len(comparison.get('known_failures', []))}")
        lines.append(f"- regressions: {len(comparison['regressions'])}")
        lines += [f"  - {_cell(r)}" for r in comparison["regressions"][:max_failures]]
    lines += markdown_lines(report.get("mutation"), _cell, _code)
    return "\n".join(lines) + "\n"
