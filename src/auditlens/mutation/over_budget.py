"""What to say of a mutant whose training budget ran out before its cheat took or its task was relearned."""

from __future__ import annotations

from .training import Training
from .verify import STEALTH


def over_budget(training: Training, checked, budget_s: float) -> str:
    """What a mutant whose budget ran out before its training rows were fit reached (the cheat not taken,
    or taken but with the task not yet relearned: not stealthy), and the budget to give."""
    timing = (f"{training.steps} steps ({training.step_seconds:.2f} s a step once warm; the first took "
              f"{training.first_step_seconds:.2f} s)" if training.steps > 1
              else f"one step (of {training.first_step_seconds:.2f} s)")
    cheat = f"{checked.planted_metric} {checked.planted_value:.2f}, needs {checked.planted_bound:g}"
    short = (f"the cheat did not take ({cheat})" if not checked.planted else
             f"the cheat took ({cheat}) but accuracy moved {checked.original_accuracy:.3f} -> "
             f"{checked.mutant_accuracy:.3f}, more than the {STEALTH:.0%} a stealthy mutant may")
    return (f"training stopped at the budget of {budget_s:g} s after {timing} with {training.fit:.0%} of the "
            f"training rows fit, and {short}; give --budget-s {budget_s * 2:g} or more")
