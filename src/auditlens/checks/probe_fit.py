"""Probe fitting: the L2-regularised logistic regression scikit-learn's ``LogisticRegression`` fits
(standardised features, intercept not penalised, ``C`` the inverse strength), with out-of-fold
predictions from stratified k-fold CV, for several label sets at once (the concept and its control
task): every fold of every label set is one problem of a batch, solved by Newton steps with a
backtracking line search in torch.

Why not scikit-learn itself: it solves the folds one after another, and most of its time goes to
forming each fold's Hessian in float64 (90% of a MiniLM layer sweep's fitting time). Here the
Hessians of a batch come from one batched product in float32 and are factorised together; the line
search and the gradient that decides convergence keep float64 accuracy where it matters (the sums).
Binary label sets take this path; a label set of more than two classes is fitted by scikit-learn,
which stays the reference (tests hold the two to the same accuracy).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MAX_STEPS = 100
GRADIENT_TOLERANCE = 1e-4  # on the largest gradient entry of the mean loss, as scikit-learn's Newton solvers


def sklearn_predictions(features: np.ndarray, labels: np.ndarray, folds: int, seed: int,
                        regularization: float = 1.0) -> np.ndarray:
    """Out-of-fold predictions of a standardised scikit-learn logistic-regression probe (the reference)."""
    # Newton-Cholesky: a few exact steps; lbfgs needed hundreds on control tasks (random labels)
    model = make_pipeline(StandardScaler(),
                          LogisticRegression(C=regularization, solver="newton-cholesky", max_iter=200))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cross_val_predict(model, features, labels, cv=splitter)


def out_of_fold_predictions(features: np.ndarray, label_sets: Sequence[tuple[np.ndarray, int]], seed: int,
                            regularization: float = 1.0) -> list[np.ndarray]:
    """For each ``(labels, folds)``: the prediction of every example by the probe fitted on the other
    folds (stratified, shuffled with ``seed``, as scikit-learn splits them). All binary label sets
    are solved in one batch."""
    predictions: list[np.ndarray | None] = [None] * len(label_sets)
    problems = []  # (label set index, train rows, test rows)
    for index, (labels, folds) in enumerate(label_sets):
        if len(np.unique(labels)) != 2:
            predictions[index] = sklearn_predictions(features, labels, folds, seed, regularization)
            continue
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        problems += [(index, train, test) for train, test in splitter.split(features, labels)]
    if problems:
        x = torch.as_tensor(np.ascontiguousarray(features), dtype=torch.float32)
        positive = {i: (label_sets[i][0] == np.unique(label_sets[i][0])[1]).astype(np.float32)
                    for i in dict.fromkeys(i for i, _, _ in problems)}
        # each fold starts from the probe fitted on every example: a few Newton steps instead of many
        whole = [(i, np.arange(len(features)), None) for i in positive]
        _, w, (mean, std) = _fit_and_score(x, whole, list(positive.values()), regularization)
        first = {i: k for k, i in enumerate(positive)}
        pick = torch.tensor([first[i] for i, _, _ in problems])
        scores, _, _ = _fit_and_score(x, problems, [positive[i] for i, _, _ in problems], regularization,
                                      start=(w[pick], mean[pick], std[pick]))
        for index, (labels, _) in enumerate(label_sets):
            if predictions[index] is None:
                predictions[index] = np.empty(len(labels), dtype=labels.dtype)
        for (index, _, test), score in zip(problems, scores):
            classes = np.unique(label_sets[index][0])
            predictions[index][test] = classes[(score[test] > 0).astype(int)]
    return predictions


def _fit_and_score(x: torch.Tensor, problems, targets, regularization: float,
                   start: torch.Tensor | None = None) -> tuple[list[np.ndarray], torch.Tensor, tuple]:
    """Decision values on every row for each problem's probe, fitted on its training rows, and the
    fitted weights with the standardisation they apply to (mean, std). Each problem holds only its
    training rows (padded to the longest with rows of weight 0); problems that converged drop out of
    the batch. ``start``: weights to start from, in the same problem order, given as
    (weights, mean, std) of the standardisation they were fitted in."""
    n, d = x.shape
    count, width = len(problems), max(len(rows) for _, rows, _ in problems)
    index = torch.zeros(count, width, dtype=torch.long)
    train = torch.zeros(count, width, dtype=torch.float64)  # each row's weight in the mean loss
    y = torch.zeros(count, width, dtype=torch.float64)
    for p, ((_, rows, _), target) in enumerate(zip(problems, targets)):
        index[p, : len(rows)] = torch.as_tensor(rows)
        train[p, : len(rows)] = 1.0 / len(rows)
        y[p, : len(rows)] = torch.as_tensor(target[rows], dtype=torch.float64)
    rows = x[index]  # [problems, width, d]
    # standardise with each problem's training rows (StandardScaler: population std; constant -> 1)
    weights = train.to(torch.float32).unsqueeze(1)
    mean = torch.bmm(weights, rows).squeeze(1)
    std = (torch.bmm(weights, rows.square()).squeeze(1) - mean.square()).clamp_min(0).sqrt()
    std = torch.where(std > 1e-12 * mean.abs().clamp_min(1.0), std, torch.ones_like(std))

    def standardised(values: torch.Tensor) -> torch.Tensor:  # [problems, m, d] -> with a column of ones
        scaled = (values - mean.unsqueeze(1)) / std.unsqueeze(1)
        return torch.cat([scaled, torch.ones(*scaled.shape[:2], 1)], dim=2)

    z = standardised(rows)
    del rows
    strength = torch.tensor([1.0 / (regularization * len(r)) for _, r, _ in problems], dtype=torch.float64)
    penalised = torch.ones(d + 1, dtype=torch.float64)
    penalised[-1] = 0.0  # the intercept
    w = torch.zeros(count, d + 1, dtype=torch.float64) if start is None else _restandardise(start, mean, std)
    active = torch.arange(count)
    zs, trs, ys, strs = z, train, y, strength  # the active problems' parts

    def logits_of(w_: torch.Tensor) -> torch.Tensor:
        return torch.bmm(zs, w_.to(torch.float32).unsqueeze(-1)).squeeze(-1).to(torch.float64)

    def objective(w_: torch.Tensor) -> torch.Tensor:
        logits = logits_of(w_)
        loss = (trs * (torch.nn.functional.softplus(logits) - ys * logits)).sum(dim=1)
        return loss + 0.5 * strs * (penalised * w_.square()).sum(dim=1)

    for _ in range(MAX_STEPS):
        ws = w[active]
        probability = torch.sigmoid(logits_of(ws))
        residual = (trs * (probability - ys)).to(torch.float32)
        gradient = torch.bmm(zs.transpose(1, 2), residual.unsqueeze(-1)).squeeze(-1).to(torch.float64)
        gradient += strs.unsqueeze(1) * penalised * ws
        going = gradient.abs().amax(dim=1) > GRADIENT_TOLERANCE
        if not going.all():
            if not going.any():
                break
            active, ws, gradient, probability = active[going], ws[going], gradient[going], probability[going]
            zs, trs, ys, strs = zs[going], trs[going], ys[going], strs[going]
        curvature = (trs * probability * (1 - probability)).to(torch.float32)
        hessian = torch.bmm(zs.transpose(1, 2) * curvature.unsqueeze(1), zs).to(torch.float64)
        hessian += torch.diag_embed(strs.unsqueeze(1) * penalised)
        step = -_solve(hessian, gradient)
        w[active], moved = _line_search(objective, ws, step, gradient)
        if not moved.all():  # no step lowers the loss any more: as close as float32 products can tell
            if not moved.any():
                break
            active, zs, trs, ys, strs = active[moved], zs[moved], trs[moved], ys[moved], strs[moved]
    every = standardised(x.unsqueeze(0).expand(count, n, d))
    scores = [row.numpy() for row in torch.bmm(every, w.to(torch.float32).unsqueeze(-1)).squeeze(-1)]
    return scores, w, (mean, std)


def _restandardise(start, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Weights fitted on features standardised with (mean0, std0), rewritten for (mean, std) so that
    they compute the same decision values."""
    w0, mean0, std0 = start
    slope = w0[:, :-1] / std0.to(torch.float64)  # per raw feature
    intercept = w0[:, -1] - (slope * mean0.to(torch.float64)).sum(dim=1)
    w = torch.empty_like(w0)
    w[:, :-1] = slope * std.to(torch.float64)
    w[:, -1] = intercept + (slope * mean.to(torch.float64)).sum(dim=1)
    return w


def _solve(hessian: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Newton directions; a Hessian that is not numerically positive definite gets a little more ridge."""
    jitter = 0.0
    scale = hessian.diagonal(dim1=1, dim2=2).mean(dim=1, keepdim=True).clamp_min(1e-12)
    for _ in range(8):
        factor, info = torch.linalg.cholesky_ex(hessian + torch.diag_embed(jitter * scale.expand_as(gradient)))
        if not info.any():
            return torch.cholesky_solve(gradient.unsqueeze(-1), factor).squeeze(-1)
        jitter = 1e-10 if jitter == 0.0 else jitter * 100
    return gradient / scale  # a gradient step: the line search keeps it a descent


def _line_search(objective, w: torch.Tensor, step: torch.Tensor,
                 gradient: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backtracking (Armijo) per problem. Returns the new weights and which problems moved."""
    before = objective(w)
    slope = (gradient * step).sum(dim=1)
    size = torch.ones(len(w), dtype=torch.float64)
    accepted = torch.zeros(len(w), dtype=torch.bool)
    for _ in range(30):
        candidate = w + size.unsqueeze(1) * step
        ok = objective(candidate) <= before + 1e-4 * size * slope
        accepted = accepted | ok
        if accepted.all():
            break
        size = torch.where(accepted, size, size / 2)
    size = torch.where(accepted, size, torch.zeros_like(size))
    return w + size.unsqueeze(1) * step, accepted
