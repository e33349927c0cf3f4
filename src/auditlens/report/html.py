"""report.html: one self-contained page (styles and figures inline), rendered with jinja2, all text escaped."""

from __future__ import annotations

import json

import jinja2

from . import mutation
from .figures import figure_for, loop_chart, loop_metric
from .head_map import component_map, loop_map
from .outcomes import OUTCOMES


def _signature(check: dict) -> str:
    """What makes two checks the same measurement (the YAML and Python forms of one audit): timings aside."""
    same = {k: check.get(k) for k in ("check", "site", "concept", "n", "data_digest")}
    same["metrics"] = {k: v for k, v in check["metrics"].items() if not k.startswith("seconds_")}
    return json.dumps(same, sort_keys=True, default=str)


def figures_of(report: dict) -> tuple[dict, dict]:
    """Figures by (model, audit node id, check index or "loop"), and, for a check already drawn in an
    earlier audit of the same model, the name of that audit (drawn once, referred to after)."""
    figures, same_as = {}, {}
    for model in report["models"]:
        drawn: dict[str, str] = {}
        for audit in model["audits"]:
            checks = audit["checks"]
            metric = loop_metric(checks)
            if metric is not None:
                decided = (audit.get("decided_by") or {}).get("index")
                figures[(model["id"], audit["nodeid"], "loop")] = (loop_map(checks, metric)
                                                                   or loop_chart(checks, metric, decided))
                continue
            for index, check in enumerate(checks):
                signature = _signature(check)
                if signature in drawn:
                    same_as[(model["id"], audit["nodeid"], index)] = drawn[signature]
                    continue
                for key, figure in ((index, figure_for(check)), ((index, "heads"), component_map(check))):
                    if figure:
                        figures[(model["id"], audit["nodeid"], key)] = figure
                        drawn[signature] = audit["name"]
    return figures, same_as


def render_html(report: dict) -> str:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("auditlens", "templates"),
                                     autoescape=True, undefined=jinja2.ChainableUndefined)  # tolerate older reports
    figures, same_as = figures_of(report)
    return environment.get_template("report.html.j2").render(
        report=report, figures=figures, same_as=same_as, outcomes=OUTCOMES, planted=mutation.planted,
        stealth=mutation.stealth, over_budget=mutation.over_budget,
        gate_failures=mutation.gate_failures(report.get("mutation") or {}))
