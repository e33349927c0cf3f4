"""Compare a run with a baseline report: metric deltas, audits newly failing or passing, verdict changes.

A *regression* is an audit that passed and now fails, a verdict that was ``learned`` and no longer is,
or a metric that moved the wrong way past ``tolerance`` (the wrong way is known from its thresholds:
a ``>=`` threshold wants it high, a ``<=`` one low).
"""

from __future__ import annotations

GOOD_OUTCOMES = ("passed", "xfailed")


def _direction(audit: dict, metric: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 when no threshold says."""
    for check in audit.get("checks", []):
        for threshold in check.get("thresholds", []):
            if threshold["metric"] == metric:
                return 1 if threshold["op"] in (">=", ">") else -1
    return 0


def compare_reports(old: dict, new: dict, tolerance: float = 0.02) -> dict:
    old_models = {m["id"]: m for m in old["models"]}
    models = []
    regressions = []
    for model in new["models"]:
        before = old_models.get(model["id"])
        if before is None:
            models.append({"id": model["id"], "status": "new model", "verdict": [None, model["verdict"]], "audits": []})
            continue
        old_audits = {a["nodeid"]: a for a in before["audits"]}
        audits = []
        for audit in model["audits"]:
            previous = old_audits.get(audit["nodeid"])
            if previous is None:
                audits.append({"nodeid": audit["nodeid"], "change": "new audit", "deltas": {}})
                continue
            deltas = {k: audit["metrics"][k] - previous["metrics"][k] for k in audit["metrics"]
                      if k in previous["metrics"] and not k.startswith("seconds_")}
            change = None
            if previous["outcome"] in GOOD_OUTCOMES and audit["outcome"] not in GOOD_OUTCOMES + ("skipped",):
                change = "newly failing"
                regressions.append(f"{model['id']}: {audit['nodeid']} newly fails")
            elif previous["outcome"] not in GOOD_OUTCOMES and audit["outcome"] == "passed":
                change = "newly passing"
            for metric, delta in deltas.items():
                direction = _direction(audit, metric)
                if direction and direction * delta < -tolerance:
                    regressions.append(f"{model['id']}: {audit['nodeid']}: {metric} {previous['metrics'][metric]:.3f}"
                                       f" -> {audit['metrics'][metric]:.3f} (beyond tolerance {tolerance})")
            audits.append({"nodeid": audit["nodeid"], "change": change,
                           "deltas": {k: round(v, 6) for k, v in deltas.items() if v}})
        if before["verdict"] == "learned" and model["verdict"] != "learned":
            regressions.append(f"{model['id']}: verdict {before['verdict']} -> {model['verdict']}")
        models.append({"id": model["id"], "verdict": [before["verdict"], model["verdict"]], "audits": audits})
    return {"tolerance": tolerance, "baseline_commit": old["run"].get("git_commit"), "models": models,
            "regressions": regressions}


def render_comparison(comparison: dict) -> str:
    """The comparison as text (``auditlens report diff``)."""
    lines = [f"compared with baseline (commit {comparison['baseline_commit'] or 'unknown'}), "
             f"tolerance {comparison['tolerance']}"]
    for model in comparison["models"]:
        old, new = model["verdict"]
        lines.append(f"{model['id']}: verdict {old} -> {new}" if old != new else f"{model['id']}: verdict {new}")
        for audit in model["audits"]:
            if audit["change"] or audit["deltas"]:
                deltas = ", ".join(f"{k} {v:+.3f}" for k, v in audit["deltas"].items())
                lines.append(f"  {audit['nodeid']}: {audit['change'] or 'changed'}{'; ' + deltas if deltas else ''}")
    lines.append(f"regressions: {len(comparison['regressions'])}")
    lines += [f"  {r}" for r in comparison["regressions"]]
    return "\n".join(lines)
