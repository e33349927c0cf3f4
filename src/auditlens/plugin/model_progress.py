"""A run's progress, one line per model as its last audit ends, so a long run says how far it is:

    auditlens: fixture:count-cheated: 11/11 audits done, 7 failed (3 of 17 models, 1 min 05 s)

Read on the controller (with pytest-xdist too: the workers' records reach it) from the session's plan,
every audit the run means to run, and the outcomes of those that ended. A worker plans nothing, so says
nothing.
"""

from __future__ import annotations

import time

from ..progress import report

NOT_PASSED = ("failed", "error", "lost")  # the outcomes the line counts as failed


class ModelProgress:
    def __init__(self, session):
        self.session = session
        self.outcomes: dict[str, dict[str, str]] = {}  # model -> node id -> outcome, of the audits that ended
        self.done: list[str] = []  # the models whose every planned audit ended, in that order

    def audit_ended(self, record: dict) -> None:
        """Note an audit's record; say so when it was its model's last planned audit."""
        line = self.line_after(record)
        if line is not None:
            report(line)

    def line_after(self, record: dict) -> str | None:
        """The line to show once ``record``'s model has ended every audit planned for it, else None."""
        model = record["model"]
        ended = self.outcomes.setdefault(model, {})
        ended[record["nodeid"]] = record["outcome"]
        planned = [nodeid for nodeid, of in self.session.planned.items() if of == model]
        if model in self.done or not planned or any(nodeid not in ended for nodeid in planned):
            return None
        self.done.append(model)
        failed = sum(ended[nodeid] in NOT_PASSED for nodeid in planned)
        models = len(set(self.session.planned.values()))
        failures = f", {failed} failed" if failed else ""
        return (f"{model}: {len(planned)}/{len(planned)} audits done{failures} ({len(self.done)} of {models} models, "
                f"{duration(time.time() - self.session.started)})")


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``: how long the run has taken, for people."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
