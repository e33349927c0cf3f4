"""Compare a run with a baseline report: metric deltas, audits newly failing or passing, verdict changes.

A *regression* is an audit that passed (or was an expected failure) and now does not, a verdict that
was ``learned`` and no longer is, or a metric of an audit that still passes that moved the wrong way
(known from its thresholds: ``>=`` wants it high, ``<=`` low). When both runs measured the metric on
the same examples (same data digest, values per example kept), it moved the wrong way if the 95%
paired-bootstrap interval of the difference lies wholly on the wrong side of 0; otherwise (older
reports, other data) if it moved by more than ``tolerance``. An
audit that newly fails is one regression, not one more per metric. An audit that was already failing
in the baseline is a *known failure*: shown, not a regression. An audit whose definition changed (its
code, or its YAML entry's check, arguments or expectations) is a *changed audit*: not compared, and a
failure of it is not a known one. Models are matched by id, else by fingerprint; what could not be
matched is said plainly.
"""

from __future__ import annotations

from ..stats import paired_difference
from .outcomes import GOOD, normalize

REGRESSION_EXIT = 6  # the exit status of the gate (pytest --audit-fail-on-regression, auditlens report diff)
FAILING = ("failed", "error", "lost", "vacuous")


def _direction(audit: dict, metric: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 when no threshold says."""
    for check in audit.get("checks", []):
        for threshold in check.get("thresholds", []):
            if threshold["metric"] == metric:
                return 1 if threshold["op"] in (">=", ">") else -1
    return 0


def _deciding(audit: dict) -> dict | None:
    checks, decided = audit.get("checks", []), audit.get("decided_by")
    if decided and decided["index"] < len(checks):
        return checks[decided["index"]]
    return checks[0] if checks else None


def _paired(old: dict | None, new: dict | None, metrics) -> dict:
    """Paired intervals of new - old for ``metrics`` the two deciding checks measured on the same examples."""
    if not old or not new or not old.get("data_digest") or old.get("data_digest") != new.get("data_digest"):
        return {}
    intervals = {}
    for metric in metrics:
        before, after = old.get("per_example", {}).get(metric), new.get("per_example", {}).get(metric)
        interval = paired_difference(before, after) if before and after else None
        if interval is not None:
            intervals[metric] = interval
    return intervals


def _outcome(audit: dict) -> str:
    return normalize(audit["outcome"], audit.get("kind"))


def _match(model: dict, old_models: list[dict]) -> tuple[dict | None, str | None]:
    """The baseline's model for ``model``: same id, else the one with the same fingerprint."""
    by_id = {m["id"]: m for m in old_models}
    if model["id"] in by_id:
        return by_id[model["id"]], None
    same = [m for m in old_models if model.get("fingerprint") and m.get("fingerprint") == model["fingerprint"]]
    return (same[0], f"matched by fingerprint to baseline model {same[0]['id']!r}") if len(same) == 1 else (None, None)


def _compare_audits(model_id: str, before: dict, model: dict, tolerance: float, found: dict) -> list[dict]:
    old_audits = {a["nodeid"].replace(before["id"], model["id"]): a for a in before["audits"]}
    audits = []
    for audit in model["audits"]:
        previous = old_audits.get(audit["nodeid"])
        if previous is None:
            audits.append({"nodeid": audit["nodeid"], "change": "new audit", "deltas": {}})
            continue
        if previous.get("definition") and audit.get("definition") and previous["definition"] != audit["definition"]:
            # another question under the same name: its numbers are not comparable, nor its failure known
            audits.append({"nodeid": audit["nodeid"], "change": "changed audit (its definition changed since the "
                           "baseline: not compared)", "deltas": {}})
            continue
        was, now = _outcome(previous), _outcome(audit)
        deltas = {k: audit["metrics"][k] - previous["metrics"][k] for k in audit["metrics"]
                  if k in previous["metrics"] and not k.startswith("seconds_")}
        change = None
        if was in GOOD and now in FAILING:
            change = "newly failing" if now == "failed" else f"now {now}"
            found["regressions"].append(f"{model_id}: {audit['nodeid']} {change}")
        elif was in FAILING and now in FAILING:
            change = "known failure"
            found["known_failures"].append(f"{model_id}: {audit['nodeid']} ({now}; {was} in the baseline)")
        elif was in FAILING and now == "passed":
            change = "newly passing"
        deciding = _deciding(audit)
        paired = _paired(_deciding(previous), deciding, deltas)
        if now == "passed":  # a failing audit's metrics are part of its one regression, not more of them
            for metric, delta in deltas.items():
                direction, interval = _direction(audit, metric), paired.get(metric)
                if not direction:
                    continue
                if interval is not None:
                    worse = interval.high < 0 if direction > 0 else interval.low > 0
                    why = f"paired difference {delta:+.3f}, 95% CI {interval}, n={deciding['n']}"
                else:
                    worse, why = direction * delta < -tolerance, f"beyond tolerance {tolerance}"
                if worse:
                    found["regressions"].append(
                        f"{model_id}: {audit['nodeid']}: {metric} {previous['metrics'][metric]:.3f} -> "
                        f"{audit['metrics'][metric]:.3f} ({why})")
        # a difference is a change only where it is told apart from noise: its paired interval excludes 0,
        # or (no per-example values to pair) it is beyond the tolerance; the rest is kept as within noise
        moved = {k for k, v in deltas.items() if v and (not (paired[k].low <= 0 <= paired[k].high) if k in paired
                                                        else abs(v) > tolerance)}
        audits.append({"nodeid": audit["nodeid"], "change": change,
                       "deltas": {k: round(v, 6) for k, v in deltas.items() if k in moved},
                       "within_noise": {k: round(v, 6) for k, v in deltas.items() if v and k not in moved},
                       "paired": {k: v.to_dict() for k, v in paired.items() if deltas[k]}})
    return audits


def compare_reports(old: dict, new: dict, tolerance: float = 0.02) -> dict:
    found: dict[str, list] = {"regressions": [], "known_failures": []}
    if new.get("partial"):  # a merge of some shards only: what is missing might have failed, so never a pass
        found["regressions"].append(f"the report is partial: shard(s) {new['partial'].get('missing_shards')} of "
                                    f"{new['partial'].get('of')} were not merged")
    models, matched = [], set()
    for model in new["models"]:
        before, note = _match(model, old["models"])
        if before is None:
            models.append({"id": model["id"], "status": "not in the baseline", "verdict": [None, model["verdict"]],
                           "audits": []})
            continue
        matched.add(before["id"])
        audits = _compare_audits(model["id"], before, model, tolerance, found)
        if before["verdict"] == "learned" and model["verdict"] != "learned":
            found["regressions"].append(f"{model['id']}: verdict {before['verdict']} -> {model['verdict']}")
        models.append({"id": model["id"], "verdict": [before["verdict"], model["verdict"]], "audits": audits,
                       **({"status": note} if note else {})})
    return {"tolerance": tolerance, "baseline_commit": old["run"].get("git_commit"), "models": models,
            "compared": len(matched), "missing": [m["id"] for m in old["models"] if m["id"] not in matched],
            **found}


def gate_status(comparison: dict, report: dict) -> int:
    """The gate's exit status: REGRESSION_EXIT on a regression; 1 when an audit fails that was not
    already failing in the baseline (a new audit, or a model the baseline lacks); else 0 (known
    failures do not fail the gate)."""
    if comparison["regressions"]:
        return REGRESSION_EXIT
    known = {line.split(" (")[0] for line in comparison["known_failures"]}
    for model in report["models"]:
        for audit in model["audits"]:
            if _outcome(audit) in FAILING and f"{model['id']}: {audit['nodeid']}" not in known:
                return 1
    return 0


def render_comparison(comparison: dict) -> str:
    """The comparison as text (``auditlens report diff`` and the terminal summary)."""
    lines = [f"compared with baseline (commit {comparison['baseline_commit'] or 'unknown'}), "
             f"tolerance {comparison['tolerance']}"]
    if not comparison.get("compared", 1):
        lines.append("nothing compared: no model of this run is in the baseline (by id or fingerprint)")
    for model in comparison["models"]:
        old, new = model["verdict"]
        status = f" ({model['status']})" if model.get("status") else ""
        lines.append((f"{model['id']}: verdict {old} -> {new}" if old != new else f"{model['id']}: verdict {new}")
                     + status)
        for audit in model["audits"]:
            if audit["change"] or audit["deltas"]:
                paired = audit.get("paired", {})
                deltas = ", ".join(f"{k} {v:+.3f}" + (f" (paired 95% CI [{paired[k]['low']:+.3f}, "
                                                        f"{paired[k]['high']:+.3f}])" if k in paired else "")
                                   for k, v in audit["deltas"].items())
                lines.append(f"  {audit['nodeid']}: {audit['change'] or 'changed'}{'; ' + deltas if deltas else ''}")
    for missing in comparison.get("missing", []):
        lines.append(f"{missing}: in the baseline, not in this run")
    known = comparison.get("known_failures", [])
    lines.append(f"known failures (failing in the baseline too): {len(known)}")
    lines.append(f"regressions: {len(comparison['regressions'])}")
    lines += [f"  {r}" for r in comparison["regressions"]]
    return "\n".join(lines)
