"""A report as a JUnit XML file (what CI systems show as test results): one test case per audit, its
outcome in JUnit's words, its deciding check's metrics as properties (as pytest ``--junitxml`` gives
them), for a report that no single pytest process wrote (a merge of shards)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from .outcomes import normalize

JUNIT_NAME = "junit.xml"


def _case(model: dict, audit: dict) -> ET.Element:
    path, _, name = audit["nodeid"].rpartition("::")
    classname = path.replace("/", ".").removesuffix(".py") if path else model["id"]
    case = ET.Element("testcase", classname=classname, name=name or audit["nodeid"],
                      time=f"{audit.get('duration') or 0.0:.3f}")
    outcome = normalize(audit["outcome"], audit.get("kind"))
    message = audit.get("message") or outcome
    if outcome == "failed":
        ET.SubElement(case, "failure", message=message).text = message
    elif outcome in ("error", "lost"):
        ET.SubElement(case, "error", message=message).text = message
    elif outcome in ("skipped", "xfail"):
        ET.SubElement(case, "skipped", type="pytest.xfail" if outcome == "xfail" else "pytest.skip",
                      message=message)
    if audit.get("metrics"):
        properties = ET.SubElement(case, "properties")
        for metric, value in audit["metrics"].items():
            ET.SubElement(properties, "property", name=f"auditlens.{metric}", value=json.dumps(value))
    return case


def render_junit(report: dict) -> str:
    """The JUnit XML text of ``report``: one testsuite, a test case per audit (not-run audits as errors)."""
    cases = [_case(model, audit) for model in report["models"] for audit in model["audits"]]
    for model in report["models"]:
        for nodeid in model.get("not_run", []):
            case = ET.Element("testcase", classname=model["id"], name=nodeid, time="0.000")
            ET.SubElement(case, "error", message="did not run").text = f"{nodeid} did not run"
            cases.append(case)
    suite = ET.Element("testsuite", name="auditlens", tests=str(len(cases)),
                       failures=str(sum(c.find("failure") is not None for c in cases)),
                       errors=str(sum(c.find("error") is not None for c in cases)),
                       skipped=str(sum(c.find("skipped") is not None for c in cases)),
                       time=f"{sum(float(c.get('time')) for c in cases):.3f}")
    suite.extend(cases)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
