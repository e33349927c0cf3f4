"""report.html: one self-contained page (styles and figures inline), rendered with jinja2, all text escaped."""

from __future__ import annotations

import jinja2

from .figures import figure_for
from .outcomes import OUTCOMES


def render_html(report: dict) -> str:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("auditlens", "templates"),
                                     autoescape=True, undefined=jinja2.ChainableUndefined)  # tolerate older reports
    figures = {}
    for model in report["models"]:
        for audit in model["audits"]:
            for index, check in enumerate(audit["checks"]):
                figure = figure_for(check)
                if figure:
                    figures[(model["id"], audit["nodeid"], index)] = figure
    return environment.get_template("report.html.j2").render(report=report, figures=figures, outcomes=OUTCOMES)
