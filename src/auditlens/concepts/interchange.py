"""Counterfactual pairs made by a high-level causal model, for interchange interventions (DAS, IIA): the
base's inputs with one variable set to its value on the source, and the label the model then expects.

    counts = load_concept("probes/count_variables.yaml")
    pairs = interchange_pairs(counts.causal_model, counts, "count_a", seed=0)   # a Concept of pairs
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping

from ..causal.model import CausalModel
from ..errors import ConceptError, closest
from .concept import Concept, CounterfactualPair

DRAWS_PER_PAIR = 50  # sources drawn, at most, per pair asked for, to fill both shares


def interchange_pairs(model: CausalModel, examples: Concept, variable: str, *, seed: int, n: int | None = None,
                      changed_share: float = 0.5) -> Concept:
    """``n`` pairs (default: one per example) of a base and a source drawn (seeded) from ``examples``, whose
    ``variables`` give the model's inputs; each expects ``model``'s output on the base with ``variable`` set to
    its value on the source. ``changed_share`` of the pairs expect another label than the base's own, so a
    network that ignores the intervention cannot score well. The Concept's description says how many do."""
    where = f"interchange_pairs on concept {examples.name!r}"
    names = examples.label_names
    _check(model, examples, variable, changed_share, n, where)
    labels = [model.label(values, label_names=names) for values in examples.variables]
    wrong = [i for i, (given, computed) in enumerate(zip(examples.labels, labels)) if given != computed]
    if wrong:
        first = wrong[0]
        raise ConceptError(f"{where}: the {model.where} disagrees with {len(wrong)} of {len(labels)} labels (first: "
                           f"example {first} {examples.examples[first]!r} is labelled "
                           f"{examples.label_name(examples.labels[first])!r}, the model says "
                           f"{examples.label_name(labels[first])!r} from {examples.variables[first]}); its pairs would "
                           "expect answers the task does not give")
    n = len(examples) if n is None else n
    value_on = [model.run(values)[variable] for values in examples.variables]
    wanted = {True: round(n * changed_share), False: n - round(n * changed_share)}
    pools: dict[bool, list[CounterfactualPair]] = {True: [], False: []}
    rng, seen, draws, order = random.Random(seed), set(), 0, list(range(len(examples)))
    while any(len(pools[kind]) < wanted[kind] for kind in pools) and draws < DRAWS_PER_PAIR * n:
        rng.shuffle(order)  # a round: every example is a base once before any is again
        for base in order:
            source = rng.randrange(len(examples) - 1)
            source += source >= base
            draws += 1
            if (base, source) in seen or examples.examples[base] == examples.examples[source]:
                continue
            seen.add((base, source))
            expected = model.label(examples.variables[base], {variable: value_on[source]}, names)
            pools[expected != labels[base]].append(
                CounterfactualPair(examples.examples[base], examples.examples[source], expected))
    kept = _balanced(pools, wanted, changed_share, where, variable, draws)
    pairs = pools[True][:kept[True]] + pools[False][:kept[False]]
    rng.shuffle(pairs)
    short = f"; {n} were asked for, and only these could keep the share" if len(pairs) < n else ""
    return Concept(
        name=f"{examples.name} interchange {variable}", pairs=tuple(pairs), label_names=names,
        answer_tokens=examples.answer_tokens, source=examples.source, causal_model=model,
        description=(f"Interchange pairs of {examples.name}: the base's inputs with {variable} set to its value on the "
                     f"source; expected: the causal model's {model.output} ({model!r}). {kept[True]} of {len(pairs)} "
                     f"pairs ({kept[True] / len(pairs):.0%}) change the expected label from the base's own (seed "
                     f"{seed}{short})."))


def with_variables(concept: Concept, derive: Callable[[object], Mapping], causal_model: CausalModel | None = None
                   ) -> Concept:
    """A copy of ``concept`` whose examples carry ``derive(example)`` as their variables (e.g. counts of
    letters read from the text), and ``causal_model`` when given (else the concept's own)."""
    variables = tuple(dict(derive(example)) for example in concept.examples)
    return dataclasses.replace(concept, variables=variables, causal_model=causal_model or concept.causal_model,
                               _encoded={})


def _check(model: CausalModel, examples: Concept, variable: str, changed_share: float, n: int | None,
           where: str) -> None:
    if not isinstance(model, CausalModel):
        raise ConceptError(f"{where}: the model must be a CausalModel (or load_causal_model(...)); got "
                           f"{type(model).__name__}")
    if variable not in model.variables:
        near = closest(str(variable), model.variables, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConceptError(f"{where}: {variable!r} is not a variable of the {model.where}{hint}; variables: "
                           f"{', '.join(model.variables)}")
    if examples.variables is None:
        raise ConceptError(f"{where}: its examples carry no variables; give each row \"variables\": "
                           f"{{{', '.join(f'{name!r}: ...' for name in model.inputs)}}} or use with_variables")
    if len(examples) < 2:
        raise ConceptError(f"{where}: a pair needs two examples; the concept has {len(examples)}")
    if isinstance(changed_share, bool) or not isinstance(changed_share, (int, float)) or not 0 <= changed_share <= 1:
        raise ConceptError(f"{where}: changed_share is the share of pairs whose expected label changes, between 0 "
                           f"and 1; got {changed_share!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConceptError(f"{where}: n is how many pairs to make, a whole number of 1 or more; got {n!r}")
    for index, values in enumerate(examples.variables):
        missing = model.missing_inputs(values)
        if missing:
            raise ConceptError(f"{where}: example {index} has no value for {', '.join(missing)}; the "
                               f"{model.where}'s inputs are {', '.join(model.inputs)}")


def _balanced(pools: dict, wanted: dict, changed_share: float, where: str, variable: str, draws: int) -> dict:
    """How many pairs of each kind (changed: True) to keep so that the changed share holds: all that were
    asked for, or fewer of both when one kind ran short."""
    if all(len(pools[kind]) >= wanted[kind] for kind in pools):
        return wanted
    kind = len(pools[True]) < wanted[True]
    if not pools[kind]:
        what = "changes" if kind else "keeps"
        raise ConceptError(f"{where}: setting {variable} to its value on another example never {what} the expected "
                           f"label in {draws} draws, so changed_share={changed_share} cannot be met"
                           + ("; the output does not depend on it here: interchanging it is indistinguishable from "
                              "doing nothing" if kind else ""))
    total = int(len(pools[kind]) / (changed_share if kind else 1 - changed_share))
    changed = min(round(total * changed_share), len(pools[True]))
    return {True: changed, False: min(total - changed, len(pools[False]))}
