"""The high-level causal model of a concept file (``causal_model:``) and the values its rows give the
model's inputs (``{"text": ..., "label": ..., "variables": {"count_a": 3, "count_b": 1}}``). Errors go to
the file's problems (``files._Problems``), each at the key it is about."""

from __future__ import annotations

from ..causal.files import causal_model_from_data
from ..causal.model import CausalModel
from ..errors import ConceptError

VALUE_TYPES = (int, float, str, bool)


def read_causal_model(raw: dict, source: str, label_names, problems) -> CausalModel | None:
    """The model under ``causal_model:``, or None when there is none or it is wrong (said in ``problems``)."""
    if "causal_model" not in raw:
        return None
    try:
        model = causal_model_from_data(raw["causal_model"], source=source)
    except ConceptError as exc:
        problems.add(["causal_model", *getattr(exc, "keys", [])], str(exc))
        return None
    if label_names and all(isinstance(name, str) for name in label_names):  # unreadable names: said already
        try:
            model.check_labels(label_names)
        except ConceptError as exc:
            problems.add(["causal_model", "labels"], str(exc))
            return None
    return model


def row_variables(row: dict, origin, model: CausalModel | None, problems) -> dict | None:
    """The row's ``variables`` mapping (None when it has none); with a causal model every row needs a value
    for each of its inputs."""
    if "variables" not in row:
        if model is not None:
            problems.add(origin.keys, f"{origin.what} has no 'variables'; the concept's causal model needs values for "
                                      f"{', '.join(model.inputs)}, e.g. \"variables\": {{\"{model.inputs[0]}\": 3}}",
                         origin.where)
        return None
    values = row["variables"]
    if not isinstance(values, dict) or not all(isinstance(name, str) and _is_value(v) for name, v in values.items()):
        problems.add([*origin.keys, "variables"], f"{origin.what}.variables maps variable names to numbers, strings, "
                                                  f"true/false or lists of them; got {values!r}"[:300], origin.where)
        return None
    missing = model.missing_inputs(values) if model is not None else []
    if missing:
        problems.add([*origin.keys, "variables"], f"{origin.what}.variables has no value for {', '.join(missing)}; the "
                                                  f"causal model's inputs are {', '.join(model.inputs)}", origin.where)
    return values


def all_or_none(variables: list, origins: list, model: CausalModel | None, problems) -> tuple[dict, ...] | None:
    """Every row's variables, None when no row has any; rows with and rows without are an error (said per
    row already when there is a causal model)."""
    if all(values is None for values in variables):
        return None
    lacking = [origin for values, origin in zip(variables, origins) if values is None]
    if lacking and model is None:
        problems.add(lacking[0].keys, f"{lacking[0].what} has no 'variables' but other rows have; give every example "
                                      f"its variables ({len(lacking)} lack them)", lacking[0].where)
    return tuple(variables)


def _is_value(value) -> bool:
    if isinstance(value, list):
        return all(isinstance(item, VALUE_TYPES) for item in value)
    return isinstance(value, VALUE_TYPES)
