"""steer: add a concept direction at a site and measure the behaviour shift per unit of alpha."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..concepts.concept import Concept
from ..engine import capture
from ..errors import CheckError
from ..features.examples import feature_examples
from ..interventions import Steer
from ..results import CheckResult
from ..settings import seed_or_default
from ..stats import Interval, bootstrap_mean
from .behaviour_change import behaviour

METHODS = ("mean-difference", "probe")


@dataclass(frozen=True, kw_only=True)
class SteerResult(CheckResult):
    """How far adding a concept direction moves the target class' margin, per unit of alpha."""

    mechanistic = True
    figure_metrics = ("shift_per_alpha", "target_rate_gain")

    concept: str = ""
    alpha: float = 1.0
    target: int = 1
    shift_per_alpha: float = 0.0  # mean change of the target-class margin per unit alpha
    shift_per_alpha_ci: Interval | None = None
    target_rate_gain: float = 0.0  # P(predict target | +alpha) - P(predict target | no steering)

    def headline(self) -> str:
        return (f"steer toward {self.concept!r} class {self.target} at {self.site} (alpha ±{self.alpha:g}) "
                f"on {self.subject}, n={self.n}")


def concept_direction(subject, concept: Concept, at: str, position="last", method: str = "mean-difference",
                      target: int = 1, seed: int = 0) -> torch.Tensor:
    """A [d] direction for ``target`` against the other classes: difference of class means, or probe weights
    (rescaled to the same length so that alpha means the same in both)."""
    if method not in METHODS:
        raise CheckError(f"steering method must be one of {', '.join(METHODS)}; got {method!r}")
    features = capture(subject, concept.inputs(subject), at, position=position)
    labels = concept.label_tensor()
    is_target = labels == target
    if not is_target.any():
        raise CheckError(f"concept {concept.name!r} has no example of target class {target}")
    difference = features[is_target].mean(0) - features[~is_target].mean(0)
    if method == "mean-difference":
        return difference
    from sklearn.linear_model import LogisticRegression

    weights = LogisticRegression(max_iter=2000).fit(features.numpy(), is_target.numpy()).coef_[0]
    weights = torch.as_tensor(weights, dtype=torch.float32)
    return weights / weights.norm() * difference.norm()


def steer(subject, concept: Concept, at: str, alpha: float = 1.0, *, direction: torch.Tensor | None = None,
          data: Concept | None = None, target: int = 1, position="last", positions: str = "all",
          method: str = "mean-difference", seed: int | None = None) -> SteerResult:
    """Add ``±alpha * direction`` at ``at`` and measure the target-class margin shift per unit alpha.

    ``direction`` defaults to the concept's class-mean difference at ``at`` (alpha = 1 moves one class
    mean onto the other). Behaviour is read on ``data`` (default: the concept's examples).
    """
    seed = seed_or_default(seed)
    if alpha <= 0:
        raise CheckError(f"alpha must be positive (both signs are applied); got {alpha}")
    site = subject.site(at)
    if direction is None:
        concept.require_examples("steer")
        direction = concept_direction(subject, concept, site, position, method, target, seed)
    measured = data or concept
    measured.require_examples("steer (behaviour data)")
    inputs = measured.inputs(subject)
    targets = torch.full((len(measured),), target, dtype=torch.long)
    answers = measured.answer_token_ids(subject)
    runs = {sign: behaviour(subject, inputs, targets,
                            [Steer(site, direction, sign * alpha, positions)] if sign else [], answer_tokens=answers)
            for sign in (-1, 0, 1)}
    slopes = (runs[1].margins - runs[-1].margins) / (2 * alpha)
    return SteerResult(
        check="steer", subject=subject.id, site=site.name, n=len(measured), concept=concept.name,
        alpha=float(alpha), target=target, shift_per_alpha=float(slopes.mean()),
        shift_per_alpha_ci=bootstrap_mean(slopes.numpy(), seed, what="steering shift"),
        target_rate_gain=float(runs[1].correct.mean() - runs[0].correct.mean()),
        per_example={"shift_per_alpha": slopes, "target_rate_gain": runs[1].correct - runs[0].correct},
        data_digest=inputs.digest, feature_examples=feature_examples(subject, [site.name], [concept]),
    )
