"""The report's mutation section: the score, one row per mutant, the holes, and the gate."""

from __future__ import annotations

from auditlens.report.html import render_html
from auditlens.report.markdown import render_markdown
from auditlens.report.mutation import gate_failures, section


def _mutant(name, status, killed_by=()):
    operator, seed = name.split("#")
    return {"name": name, "operator": operator, "seed": int(seed), "planted": f"{operator} planted",
            "hole": f"no audit of yours notices {operator}", "status": status, "killed_by": list(killed_by),
            "verdict": "cheated" if status == "killed" else "learned", "reason": "why", "cost": 12.5,
            "verification": {"planted_metric": "cheat followed", "planted_value": 0.97, "planted_interval": [0.9, 1.0],
                             "planted_bound": 0.8, "original_accuracy": 1.0, "mutant_accuracy": 0.995,
                             "difference_interval": [-0.01, 0.0], "planted": True, "stealthy": True}}


def _result(killed=1, survived=1):
    mutants = [_mutant(f"shortcut#{i}", "killed", ["probe at layer 1"]) for i in range(killed)]
    mutants += [_mutant(f"backdoor#{i}", "survived") for i in range(survived)]
    return {"model": "m", "task": "count_in_distribution", "kill_on": "verdict", "killed": killed,
            "scored": killed + survived, "score": killed / (killed + survived) if killed + survived else None,
            "original_verdict": "learned", "counts": {"killed": killed, "survived": survived, "equivalent": 0,
                                                      "loud": 0, "confounded": 0},
            "holes": [f"{m['name']}: {m['hole']}" for m in mutants if m["status"] == "survived"], "mutants": mutants}


def test_the_gate_needs_every_model_to_reach_the_minimum_and_something_scored():
    assert section([_result(1, 1)], {}, None)["passed"] is None
    assert section([_result(1, 1)], {}, 0.5)["passed"] is True
    low = section([_result(1, 1)], {}, 0.8)
    assert low["passed"] is False and "1/2 = 50%, below the minimum 80%" in gate_failures(low)[0]
    nothing = section([_result(0, 0)], {}, 0.0)
    assert nothing["passed"] is False and "nothing was scored" in gate_failures(nothing)[0]
    refused = section([], {"m": "the suite does not pass the original"}, 0.5)
    assert refused["passed"] is False and "does not pass the original" in gate_failures(refused)[0]


def test_markdown_and_html_show_the_score_the_mutants_and_the_holes():
    report = {"run": {"seed": 0}, "models": [], "mutation": section([_result(1, 1)], {}, 0.8)}
    text = render_markdown(report)
    assert "mutation score 1/2 (50%)" in text and "**FAILED**" in text
    assert "no audit of yours notices backdoor" in text and "probe at layer 1" in text
    page = render_html(report)
    assert "mutation score 1/2" in page and "no audit of yours notices backdoor" in page
    assert "1.000 → 0.995" in page and "cheat followed 0.97 [0.90, 1.00]" in page


def test_over_budget_mutants_are_counted_apart_with_what_they_reached():
    result = _result(1, 1)
    over = _mutant("memorise#0", "over-budget")
    over["reason"] = "training stopped at the budget of 300 s after 90 steps"
    result["mutants"].append(over)
    result["counts"]["over-budget"] = 1
    report = {"run": {"seed": 0}, "models": [], "mutation": section([result], {}, None)}
    text, page = render_markdown(report), render_html(report)
    assert "1 over budget (training stopped at the budget, before the mutant was fit)" in text
    assert "over-budget: training stopped at the budget of 300 s after 90 steps" in text
    assert "1 over budget (training stopped at the budget, before the mutant was fit)" in page
    assert "training stopped at the budget of 300 s after 90 steps" in page


def test_a_report_written_before_over_budget_existed_still_renders():
    report = {"run": {"seed": 0}, "models": [], "mutation": section([_result(1, 1)], {}, None)}
    assert "over budget" not in render_markdown(report) and "over budget" not in render_html(report)
