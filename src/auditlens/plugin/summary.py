"""The terminal summary: leaked hooks, the verdict per model, the comparison with a baseline."""

from __future__ import annotations

from ..report.compare import render_comparison
from ..report.mutation import gate_failures

COLOURS = {"learned": {"green": True}, "cheated": {"red": True}}


def write_summary(terminal, leaks: dict[str, int], outcome) -> None:
    if leaks:
        message = "; ".join(f"{model}: {count} hooks" for model, count in leaks.items())
        terminal.section("auditlens: hooks leaked", red=True)
        terminal.write_line(f"auditlens hooks are still installed after the session ({message}); "
                            "results of this run cannot be trusted", red=True)
    if outcome is None or outcome.report is None:
        return
    report = outcome.report
    terminal.section("auditlens verdicts")
    if report["run"].get("interrupted"):
        terminal.write_line(f"the run was interrupted ({report['run']['interrupted']}): no model has a verdict",
                            red=True)
    width = max((len(m["id"]) for m in report["models"]), default=0)
    for model in report["models"]:
        known = f"  (known truth: {model['truth']})" if model.get("truth") else ""
        if model.get("origin") and model["origin"] != "shipped":  # a rebuild: its figures are its own
            known += f"  [{model['origin']}]"
        terminal.write_line(f"{model['id']:<{width}}  {model['verdict']:<12} {model['reason']}{known}",
                            **COLOURS.get(model["verdict"], {"yellow": True}))
    if outcome.baseline_error:
        terminal.write_line(f"baseline not compared: {outcome.baseline_error}", red=True)
    if report.get("comparison"):
        terminal.section("auditlens: against the baseline")
        for line in render_comparison(report["comparison"]).splitlines():
            terminal.write_line(line, red=line.startswith("regressions: ") and line != "regressions: 0")
    mutation = report.get("mutation")
    if mutation:
        terminal.section("auditlens: mutation testing")
        for line in mutation_lines(mutation):
            terminal.write_line(line, red=line.startswith(("gate failed", "nothing scored")))
    if outcome.write_error:
        terminal.write_line(f"audit report NOT written: {outcome.write_error}", red=True)
    else:
        terminal.write_line(f"audit report: {outcome.paths.get('html', '')}")


def mutation_lines(mutation: dict) -> list[str]:
    lines = [f"nothing scored for {model}: {why}" for model, why in mutation["errors"].items()]
    for result in mutation["results"]:
        score = f"{result['score']:.0%}" if result["score"] is not None else "nothing scored"
        counts = result["counts"]
        lines.append(f"{result['model']}: mutation score {result['killed']}/{result['scored']} ({score}); "
                     f"equivalent {counts['equivalent']}, loud {counts['loud']}, confounded {counts['confounded']}"
                     + (f", over budget {counts['over-budget']}" if counts.get("over-budget") else ""))
        lines += [f"  hole: {hole}" for hole in result["holes"]]
    lines += [f"gate failed: {line}" for line in gate_failures(mutation)]
    return lines
