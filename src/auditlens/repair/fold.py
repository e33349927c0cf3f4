"""``repair``: fold an audit's edits into a copy of the model's weights, as peft's ``merge_and_unload`` folds
an adapter. Each edit is an affine map of its site (``affine``), landing on a linear map's input slice or
output, or on the residual stream (``places``); whatever no weight can hold stays a hook, with its reason.

Order is kept: maps on one linear map's input compose innermost-last, so they are folded last-first;
maps on its output are folded first-first; the two sides commute. An edit at the same place as an edit
that stays a hook stays a hook too, since folding it would move it before or after that hook.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from torch import nn

from ..errors import CheckError
from ..interventions.edits import ProjectOut
from .affine import Affine, affine_of
from .export import FoldedEdit, HookedEdit, RepairedModel, describe
from .places import Target, block_paths, locate
from .residual import POST_LN, Writers, fold_into_embeddings, project_out_everywhere, residual_writers
from .weights import add_biases, bias_flag, fold_input, fold_output, needs_bias, shared_elsewhere

_RESIDUAL_ONLY_PROJECTIONS = ("it edits the residual stream, which LayerNorm reads, so it is no linear map's input or "
                              "output; only ProjectOut folds there (into every write)")


@dataclass
class _Plan:
    """One edit's fold: where, which map, the bias it needs; or ``reason`` when it stays a hook."""

    edit: object
    places: frozenset
    target: Target | None = None
    affine: Affine | None = None
    writers: Writers | None = None
    bias: tuple[str, str] | None = None  # (block child, config flag) when a bias must be added first
    reason: str | None = None
    changed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def repair(subject, *edits) -> RepairedModel:
    """Fold ``edits`` (ZeroAblation, MeanAblation, ProjectOut, Steer, PartialMean, Transform with a fitted
    LinearEraser, applied at every position) into a deep copy of ``subject``'s model (a Subject or an
    nn.Module); the subject's model is never changed. Edits no weight can hold come back in ``hooked`` with
    the reason. CheckError for a mean, direction, vector or eraser of the wrong width, and for ProjectOut on
    a post-LN model's residual stream; SiteError for a site the model lacks."""
    source = subject if isinstance(subject, nn.Module) else subject.model
    offloaded = [name for name, p in source.named_parameters() if p.device.type == "meta"]
    if offloaded:
        raise CheckError(f"repair copies the weights, but {len(offloaded)} are offloaded (e.g. {offloaded[0]}); "
                         "load the model without device_map to repair it")
    model = copy.deepcopy(source)
    plans = [_plan(model, edit) for edit in edits]
    _keep_order_with_hooks(plans)
    foldable = [p for p in plans if p.reason is None]
    inputs = [p for p in foldable if p.target is not None and p.target.kind == "input"]
    for plan in [*reversed(inputs), *(p for p in foldable if p not in inputs)]:
        _fold(model, plan)
    folded = tuple(FoldedEdit(_words(p), tuple(dict.fromkeys(p.changed)), "; ".join(p.notes)) for p in foldable)
    hooked = tuple(HookedEdit(p.edit, p.reason) for p in plans if p.reason is not None)
    return RepairedModel(model, folded, hooked)


def why_it_stays_a_hook(model: nn.Module, edit) -> str | None:
    """Why ``edit`` alone cannot be folded into ``model``'s weights, as a sentence; None when it can. Reads the
    model, copies nothing (the search asks this of every carrying site before it tries one)."""
    try:
        return _plan(model, edit).reason
    except CheckError as error:
        return str(error)


def _plan(model: nn.Module, edit) -> _Plan:
    site = getattr(edit, "site", None)
    if site is None or not callable(getattr(edit, "edit", None)):
        raise CheckError(f"repair takes interventions (ZeroAblation(site), MeanAblation(site, mean), "
                         f"ProjectOut(site, directions), ...); got {type(edit).__name__}")
    target = locate(model, site)
    if isinstance(target, str):
        return _Plan(edit, frozenset({(site.module_path, "input" if site.reads_input else "output")}), reason=target)
    if target.kind == "residual":
        return _plan_residual(model, edit, target)
    if target.kind == "embeddings":
        return _plan_embeddings(edit, target)
    places = frozenset({(target.path, target.kind)})
    shared = shared_elsewhere(model, target.path)
    if shared:
        return _Plan(edit, places, target, reason=f"{target.path}'s weights are tied to {', '.join(shared)}, so "
                     "folding into them would edit those places too")
    affine = affine_of(edit, target.width, target.what)
    if isinstance(affine, str):
        return _Plan(edit, places, target, reason=affine)
    bias = None
    if needs_bias(model, target.path, affine):
        bias = bias_flag(model, target.path)
        if isinstance(bias, str):
            return _Plan(edit, places, target, reason=f"it adds a constant: {bias}")
    return _Plan(edit, places, target, affine, bias=bias)


def _plan_residual(model: nn.Module, edit, target: Target) -> _Plan:
    places = frozenset({(target.path, target.kind)})
    entering = edit.site.reads_input and target.path == block_paths(model)[0]  # embed: the embeddings' sum
    if not isinstance(edit, ProjectOut) and not entering:
        return _Plan(edit, places, target, reason=_RESIDUAL_ONLY_PROJECTIONS)
    if not isinstance(edit, ProjectOut) and getattr(model.config, "model_type", None) in POST_LN:
        return _Plan(edit, places, target, reason="on a post-LN model embed is the embeddings' LayerNorm output, "
                     "and no weight holds an affine map after a LayerNorm; the same edit at embed:sum (the "
                     "embeddings' sum before that LayerNorm) folds into the embedding tables")
    writers = residual_writers(model, edit.site.name)
    if isinstance(writers, str):
        return _Plan(edit, places, target, reason=writers)
    affine = affine_of(edit, writers.width, f"the residual stream at {edit.site.name}")
    if isinstance(affine, str):
        return _Plan(edit, places, target, reason=affine)
    if isinstance(edit, ProjectOut):  # Arditi et al.'s global form: out of every write
        places |= {(path, "output") for path in (*writers.embeddings, *writers.projections)}
        return _Plan(edit, frozenset(places), target, affine, writers)
    places |= {(path, "output") for path in writers.embeddings}
    return _Plan(edit, frozenset(places), target, affine, Writers(writers.embeddings, (), writers.width))


def _plan_embeddings(edit, target: Target) -> _Plan:
    """An affine map of the embeddings' sum (``embed:sum``): each table's rows through its linear part, the shift
    added once (a sum of rows, one row of each table per token, is linear in the rows)."""
    places = frozenset({(target.path, "input"), *((path, "output") for path in target.tables)})
    affine = affine_of(edit, target.width, target.what)
    if isinstance(affine, str):
        return _Plan(edit, places, target, reason=affine)
    return _Plan(edit, places, target, affine, Writers(_shift_last(target.tables), (), target.width))


def _shift_last(tables: tuple[str, ...]) -> tuple[str, ...]:
    """The tables with the position table last (every token reads one of its rows, so it takes the shift once)."""
    positions = [path for path in tables if "position" in path.rsplit(".", 1)[-1]]
    return tuple(path for path in tables if path not in positions) + tuple(positions)


def _keep_order_with_hooks(plans: list[_Plan]) -> None:
    """Turn into hooks the folds at a place where an edit stays a hook (until none is left)."""
    changed = True
    while changed:
        changed = False
        hooked = [p for p in plans if p.reason is not None]
        for plan in plans:
            if plan.reason is not None:
                continue
            other = next((h for h in hooked if h.places & plan.places), None)
            if other is not None:
                plan.reason = (f"it edits the same place as {describe(other.edit)}, which stays a hook; folding "
                               "one and hooking the other would change the order they apply in")
                changed = True


def _fold(model: nn.Module, plan: _Plan) -> None:
    if plan.bias is not None and model.get_submodule(plan.target.path).bias is None:
        child, flag = plan.bias
        added = add_biases(model, child, flag)
        plan.changed += [name for name in added if name.startswith(plan.target.path)]
        plan.notes.append(f"{plan.target.path} had no bias for the constant: gave every Linear of each block's "
                          f"{child} a zero bias ({len(added)} in all) and set config.{flag}=True, so the export "
                          "loads them")
    if plan.writers is not None and not plan.writers.projections:
        changed, note = fold_into_embeddings(model, plan.writers, plan.affine, plan.edit.site.name)
        plan.changed += changed
        plan.notes.append(note)
    elif plan.writers is not None:
        changed, note = project_out_everywhere(model, plan.writers, plan.affine)
        plan.changed += changed
        plan.notes.append(note)
    elif plan.target.kind == "input":
        plan.changed += fold_input(model, plan.target.path, plan.affine, plan.target.features)
    else:
        plan.changed += fold_output(model, plan.target.path, plan.affine)


def _words(plan: _Plan) -> str:
    if plan.writers is not None and isinstance(plan.edit, ProjectOut):
        count = plan.affine.U.shape[1]
        return f"project out {count} direction{'s' * (count != 1)} from the residual stream ({plan.edit.site})"
    return describe(plan.edit)
