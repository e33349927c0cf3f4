"""The report's mutation section (``report["mutation"]``): per model the mutation score, one row per
mutant and the surviving mutants named as holes in the suite; and the gate on a minimum score.

    {"min_score": 0.8 | None, "passed": bool | None,
     "results": [MutationResult.to_dict(), ...], "errors": {model: why nothing was scored}}
"""

from __future__ import annotations

MUTATION_GATE_EXIT = 8  # the exit status when a mutation score is below the minimum asked for


def section(results: list[dict], errors: dict[str, str], min_score: float | None) -> dict:
    """The section, with the gate decided: every model scored something and reached ``min_score``. A
    model that scored nothing (an error, or no mutant both planted and stealthy) fails a gate."""
    passed = None
    if min_score is not None:
        passed = not errors and bool(results) and all(
            r["scored"] and r["score"] is not None and r["score"] >= min_score - 1e-12 for r in results)
    return {"min_score": min_score, "passed": passed, "results": results, "errors": errors}


def gate_failures(mutation: dict) -> list[str]:
    """Why the gate failed, one line per model (empty: it passed or was not asked for)."""
    if not mutation or mutation.get("passed") is not False:
        return []
    lines = [f"{model}: nothing scored ({why})" for model, why in mutation["errors"].items()]
    for result in mutation["results"]:
        if not result["scored"]:
            lines.append(f"{result['model']}: no mutant was both planted and stealthy, so nothing was scored")
        elif result["score"] < mutation["min_score"]:
            lines.append(f"{result['model']}: mutation score {result['killed']}/{result['scored']} = "
                         f"{result['score']:.0%}, below the minimum {mutation['min_score']:.0%}")
    return lines or ["no model was mutation-tested"]


def stealth(mutant: dict) -> str:
    v = mutant["verification"]
    low, high = v["difference_interval"]
    return (f"{v['original_accuracy']:.3f} → {v['mutant_accuracy']:.3f} "
            f"(Δ 95% CI [{low:+.3f}, {high:+.3f}])")


def planted(mutant: dict) -> str:
    v = mutant["verification"]
    low, high = v["planted_interval"]
    return f"{v['planted_metric']} {v['planted_value']:.2f} [{low:.2f}, {high:.2f}], needs ≥ {v['planted_bound']:g}"


def markdown_lines(mutation: dict, cell, code) -> list[str]:
    if not mutation:
        return []
    lines = ["", "## Mutation testing: would the audits catch a planted cheat?", ""]
    if mutation.get("min_score") is not None:
        verdict = "passed" if mutation["passed"] else "FAILED"
        lines.append(f"Gate: mutation score at least {mutation['min_score']:.0%}: **{verdict}**")
        lines += [f"- {cell(line)}" for line in gate_failures(mutation)]
        lines.append("")
    for model, why in mutation["errors"].items():
        lines.append(f"- `{code(model)}`: nothing scored: {cell(why)}")
    for result in mutation["results"]:
        score = f"{result['score']:.0%}" if result["score"] is not None else "nothing scored"
        counts = result["counts"]
        lines += [f"### `{code(result['model'])}`: mutation score {result['killed']}/{result['scored']} ({score})", "",
                  f"Evaluation set `{code(result['task'])}`; killed when {_kill_rule(result['kill_on'])}. "
                  f"Not scored: {counts['equivalent']} equivalent (the cheat did not take), {counts['loud']} loud "
                  f"(behaviour changed), {counts['confounded']} confounded (the suite failed the original on the "
                  f"mutant's data){over_budget(counts)}.", "",
                  "| mutant | planted | cheat took | stealth (accuracy, original → mutant) | outcome | killed by |",
                  "|---|---|---|---|---|---|"]
        for m in result["mutants"]:
            lines.append(f"| {m['name']} | {cell(m['planted'])} | {cell(planted(m))} | {cell(stealth(m))} | "
                         f"{m['status']}{cell(': ' + m['reason']) if m['status'] == 'over-budget' else ''} | "
                         f"{cell(', '.join(m['killed_by'][:3]) or '-')} |")
        if result["holes"]:
            lines += ["", "Surviving mutants, holes in the suite:", ""]
            lines += [f"- {cell(hole)}" for hole in result["holes"]]
        lines.append("")
    return lines


def over_budget(counts: dict) -> str:
    """The clause for mutants whose training budget ran out before they were planted and stealthy ('' where
    none did; reports written before this status have no count of it)."""
    count = counts.get("over-budget", 0)
    return f", {count} over budget (training stopped at the budget, before the mutant was fit)" if count else ""


def _kill_rule(kill_on: str) -> str:
    return ("its verdict is cheated (a mechanistic audit failed)" if kill_on == "verdict"
            else "an assertion of any of its audits failed")
