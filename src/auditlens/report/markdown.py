"""summary.md: short enough for a CI job summary or a pull-request comment."""

from __future__ import annotations

ICONS = {"learned": "✅", "cheated": "❌", "inconclusive": "⚠️"}


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _passes(model: dict) -> str:
    """Forward passes executed / the lower bound (reports from before the bound was kept show '?')."""
    return f"{model.get('forward_passes', '?')} / {model.get('forward_passes_lower_bound', '?')}"


def render_markdown(report: dict, max_failures: int = 20) -> str:
    run = report["run"]
    lines = ["# auditlens report", "",
             f"auditlens {run.get('auditlens')}, seed {run.get('seed')}, "
             f"commit {run.get('git_commit') or 'unknown'}", "",
             "| model | verdict | passed | failed | errors | forward passes (run / needed) | why |",
             "|---|---|---|---|---|---|---|"]
    for model in report["models"]:
        c = model["counts"]
        lines.append(f"| `{_cell(model['id'])}` | {ICONS.get(model['verdict'], '')} {model['verdict']} | "
                     f"{c['passed']} | {c['failed']} | {c['errors']} | {_passes(model)} | {_cell(model['reason'])} |")
    failures = [(m["id"], a) for m in report["models"] for a in m["audits"] if a["outcome"] == "failed"]
    if failures:
        lines += ["", "## Failed audits", ""]
        for model, audit in failures[:max_failures]:
            missed = [t for c in audit["checks"] for t in c.get("thresholds", []) if not t["passed"]]
            numbers = "; ".join(f"{t['metric']} = {audit['metrics'].get(t['metric'], float('nan')):.3f} "
                                f"(needs {t['op']} {t['value']:g})" for t in missed)
            numbers = numbers or _cell(audit.get("message") or "")
            lines.append(f"- `{_cell(model)}` **{_cell(audit['name'])}**: {numbers}")
        if len(failures) > max_failures:
            lines.append(f"- … and {len(failures) - max_failures} more (see report.html)")
    uncertain = [(m["id"], a) for m in report["models"] for a in m["audits"] if a.get("uncertain")]
    if uncertain:
        lines += ["", "## Uncertain audits (an interval straddles its threshold)", ""]
        for model, audit in uncertain[:max_failures]:
            shaky = [t for c in audit["checks"] for t in c.get("thresholds", []) if t.get("uncertain")]
            numbers = "; ".join(f"{t['metric']} = {audit['metrics'].get(t['metric'], float('nan')):.3f} "
                                f"({t['op']} {t['value']:g}: {'met' if t['passed'] else 'missed'})" for t in shaky)
            lines.append(f"- `{_cell(model)}` **{_cell(audit['name'])}** ({audit['outcome']}): {numbers}")
    comparison = report.get("comparison")
    if comparison:
        lines += ["", "## Against the baseline", ""]
        for model in comparison["models"]:
            old, new = model["verdict"]
            if old != new:
                lines.append(f"- `{_cell(model['id'])}`: verdict {old} → {new}")
            for audit in model["audits"]:
                if audit["change"]:
                    lines.append(f"- `{_cell(model['id'])}` {_cell(audit['nodeid'])}: {audit['change']}")
        lines.append(f"- regressions: {len(comparison['regressions'])}")
        lines += [f"  - {_cell(r)}" for r in comparison["regressions"][:max_failures]]
    return "\n".join(lines) + "\n"
