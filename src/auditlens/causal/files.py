"""Causal models written as YAML, in their own file or under ``causal_model:`` in a concept file:

    causal_model:
      variables: {count_a: input, count_b: input, more: "count_a > count_b"}
      output: more
      labels: {false: fewer, true: more}   # optional: output value -> label name or index

Each variable is ``input`` (its value comes from each example's ``variables``) or an expression of the
others (see ``expressions.ALLOWED``); the names an expression reads are its parents."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from ..errors import ConceptError, closest
from ..safe_files import safe_yaml
from .expressions import parse_expression
from .model import INPUT, CausalModel, Variable

MODEL_KEYS = ("variables", "output", "labels")
FORM = ("causal_model: {variables: {count_a: input, count_b: input, more: 'count_a > count_b'}, output: more, "
        "labels: {false: fewer, true: more}}")


def load_causal_model(path_or_data: str | Path | Mapping) -> CausalModel:
    """A causal model from a YAML file (the model's keys at the top, or under ``causal_model:`` as in a
    concept file) or from the same data as a mapping; errors name the file, the line and the key."""
    if isinstance(path_or_data, Mapping):
        return causal_model_from_data(path_or_data)
    path = Path(path_or_data)
    try:
        root = safe_yaml.compose(safe_yaml.read_utf8(path))
        raw = safe_yaml.construct(root)
    except FileNotFoundError:
        raise ConceptError(f"no causal model file at {path}") from None
    except (OSError, safe_yaml.NotTextError) as exc:
        raise ConceptError(f"cannot read the causal model file {path}: {getattr(exc, 'strerror', None) or exc}"
                           ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else f"{path}"
        raise ConceptError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    prefix = ["causal_model"] if isinstance(raw, dict) and "causal_model" in raw else []
    try:
        return causal_model_from_data(raw["causal_model"] if prefix else raw, source=str(path))
    except ConceptError as exc:
        keys = [*prefix, *getattr(exc, "keys", [])]
        raise ConceptError(f"{path}:{safe_yaml.line_of(root, keys)}: {exc}") from None


def causal_model_from_data(raw, source: str | None = None) -> CausalModel:
    """The model a ``causal_model:`` mapping describes. A ConceptError's ``keys`` say where in the mapping
    the problem is (``["variables", "more"]``), its text names that key and what would be valid."""
    if not isinstance(raw, Mapping):
        raise _error([], f"a causal model is a mapping of {', '.join(MODEL_KEYS)}, e.g. {FORM}; got "
                         f"{type(raw).__name__}")
    for key in raw:
        if key not in MODEL_KEYS:
            near = closest(str(key), MODEL_KEYS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise _error([key], f"causal_model: unknown key {key!r}{hint} Allowed: {', '.join(MODEL_KEYS)}")
    variables = raw.get("variables")
    if not isinstance(variables, Mapping) or not variables:
        raise _error(["variables"], f"causal_model.variables maps each variable's name to {INPUT!r} or an "
                                    f"expression of the others; got {variables!r}"[:300])
    parsed = [_variable(name, spec) for name, spec in variables.items()]
    if "output" not in raw:
        raise _error([], "causal_model needs output: the variable the answer reads (one of "
                         f"{', '.join(map(str, variables))})")
    model = CausalModel(parsed, output=str(raw["output"]), labels=raw.get("labels"))
    model.source = source  # set after: an error above is already prefixed with the file by the caller
    return model


def _variable(name, spec) -> Variable:
    if not isinstance(spec, str):
        raise _error(["variables", name], f"causal_model.variables.{name} is {spec!r}; give {INPUT!r} or an expression "
                                          "as a string, e.g. 'count_a > count_b'")
    if spec.strip() == INPUT:
        return Variable(str(name))
    try:
        expression = parse_expression(spec)
    except ConceptError as exc:
        raise _error(["variables", name], f"causal_model.variables.{name}: {exc}") from None
    return Variable(str(name), expression.parents, expression, expression.text)


def _error(keys: list, message: str) -> ConceptError:
    error = ConceptError(message)
    error.keys = keys
    return error
