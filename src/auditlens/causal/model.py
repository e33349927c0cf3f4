"""A small, explicit high-level causal model: named variables, each an input (its value comes from the
labelled example) or a function of its parents; one ``output`` variable is the answer, mapped to labels.

    model = CausalModel({"count_a": INPUT, "count_b": INPUT, "more": "count_a > count_b"}, output="more")
    model.run({"count_a": 3, "count_b": 1})                       # {'count_a': 3, 'count_b': 1, 'more': True}
    model.intervene({"count_a": 3, "count_b": 1}, {"count_a": 0})  # ... 'more': False
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..errors import ConceptError, closest
from .expressions import check_name, parse_expression

INPUT = "input"


@dataclass(frozen=True)
class Variable:
    """An input (no parents, no function) or ``function(*parent values)``; ``expression``: the text it was
    written as, when it was."""

    name: str
    parents: tuple[str, ...] = ()
    function: Callable | None = None
    expression: str | None = None

    @property
    def is_input(self) -> bool:
        return self.function is None

    @classmethod
    def of(cls, name: str, spec) -> Variable:
        """A variable from the short forms: ``INPUT`` ("input") or None, an expression string, a tuple
        ``(*parents, function)``, or a Variable of that name."""
        if isinstance(spec, Variable):
            if spec.name != name:
                raise ConceptError(f"variable {name!r} is given as Variable {spec.name!r}; the names must agree")
            return spec
        if spec is None or spec == INPUT:
            return cls(name)
        if isinstance(spec, str):
            try:
                expression = parse_expression(spec)
            except ConceptError as exc:
                raise ConceptError(f"variable {name!r}: {exc}") from None
            return cls(name, expression.parents, expression, expression.text)
        if isinstance(spec, (tuple, list)) and spec and callable(spec[-1]):
            return cls(name, tuple(spec[:-1]), spec[-1])
        raise ConceptError(f"variable {name!r} is {spec!r}; give {INPUT!r}, an expression such as 'a > b', or a "
                           "tuple (*parents, function)")


class CausalModel:
    """Variables (a mapping of name -> short form, see ``Variable.of``, or Variables), the ``output`` the model's
    answer reads, and ``labels``: output value -> label (index or name); without it a bool or int output is
    the label index itself and a string output a label name. ``source``: the file, for messages."""

    def __init__(self, variables: Mapping | Iterable[Variable], output: str, labels: Mapping | None = None,
                 source: str | None = None):
        self.source = source
        self.variables = self._variables(variables)
        self.inputs = tuple(name for name, v in self.variables.items() if v.is_input)
        self.order = self._topological_order()
        if output not in self.variables:
            raise _error(["output"], f"{self.where}: output {output!r} is not a variable{self._valid(str(output))}")
        self.output = output
        if labels is not None and not isinstance(labels, Mapping):
            raise _error(["labels"], f"{self.where}: labels maps output values to labels, e.g. {{False: 'fewer', "
                                     f"True: 'more'}}; got {type(labels).__name__}")
        bad = [label for label in (labels or {}).values() if isinstance(label, bool) or not (
            isinstance(label, str) or (isinstance(label, int) and label >= 0))]
        if bad:
            raise _error(["labels"], f"{self.where}: labels maps output values to label names or indices 0, 1, "
                                     f"...; got {bad[0]!r}")
        self.labels = dict(labels) if labels is not None else None

    @property
    def where(self) -> str:
        """How messages name the model."""
        return "causal model" + (f" ({self.source})" if self.source else "")

    def __repr__(self) -> str:
        computed = "; ".join(f"{n} = {self._formula(n)}" for n in self.order if not self.variables[n].is_input)
        return f"CausalModel(inputs {', '.join(self.inputs)}; {computed}; output {self.output})"

    def missing_inputs(self, values: Mapping, interventions: Mapping = ()) -> list[str]:
        """The inputs that ``values`` lacks (inputs set by an intervention need no value)."""
        return [name for name in self.inputs if name not in values and name not in interventions]

    def run(self, inputs: Mapping) -> dict:
        """Every variable's value, computed from the input values (extra keys are ignored)."""
        return self.intervene(inputs, {})

    def intervene(self, inputs: Mapping, interventions: Mapping) -> dict:
        """Every variable's value when the variables of ``interventions`` are set to the values given (the
        rest computed from the inputs as usual: an intervened variable's descendants follow it)."""
        unknown = [name for name in interventions if name not in self.variables]
        if unknown:
            raise ConceptError(f"{self.where}: cannot intervene on {unknown[0]!r}: not a variable"
                               f"{self._valid(str(unknown[0]))}")
        missing = self.missing_inputs(inputs, interventions)
        if missing:
            raise ConceptError(f"{self.where}: no value for the input(s) {', '.join(missing)}; the model's inputs "
                               f"are {', '.join(self.inputs)} (given: {', '.join(map(str, inputs)) or 'none'})")
        values = {}
        for name in self.order:
            variable = self.variables[name]
            if name in interventions:
                values[name] = interventions[name]
            elif variable.is_input:
                values[name] = inputs[name]
            else:
                arguments = [values[parent] for parent in variable.parents]
                try:
                    values[name] = variable.function(*arguments)
                except Exception as exc:  # a user's function or expression: say which and with what
                    given = ", ".join(f"{p}={a!r}" for p, a in zip(variable.parents, arguments))
                    raise ConceptError(f"{self.where}: computing {name} = {self._formula(name)} with "
                                       f"{given or 'no parents'} failed: {type(exc).__name__}: {exc}") from exc
        return values

    def label(self, inputs: Mapping, interventions: Mapping = (), label_names=None) -> int:
        """The label index the output takes on ``inputs`` (under ``interventions``)."""
        return self.label_of(self.intervene(inputs, dict(interventions))[self.output], label_names)

    def label_of(self, value, label_names=None) -> int:
        """The label index of an output value (``label_names``: the concept's, to resolve names)."""
        label = value
        if self.labels is not None:
            try:
                label = self.labels[value]
            except (KeyError, TypeError):
                raise ConceptError(f"{self.where}: output {self.output} = {value!r} has no label; labels maps "
                                   f"{list(self.labels)}") from None
        names = list(label_names or ())
        if isinstance(label, str) and label in names:
            return names.index(label)
        if isinstance(label, int) and (label >= 0 and (not names or label < len(names))):
            return int(label)
        valid = f"the concept's labels are {names}" if names else "a label is an index 0, 1, ..."
        raise ConceptError(f"{self.where}: output {self.output} = {value!r} is not a label ({valid}); give the model "
                           "labels: mapping its output values to labels, e.g. {False: 'fewer', True: 'more'}")

    def check_labels(self, label_names) -> None:
        """Raise unless every label the ``labels`` mapping names is one of ``label_names``."""
        for value in self.labels or {}:
            self.label_of(value, label_names)

    def _variables(self, variables) -> dict[str, Variable]:
        if isinstance(variables, Mapping):
            found = []
            for name, spec in variables.items():
                try:
                    found.append(Variable.of(name, spec))
                except ConceptError as exc:
                    raise _error(["variables", name], f"{self.where}: {exc}") from None
        else:
            found = list(variables)
            if not all(isinstance(v, Variable) for v in found):
                raise ConceptError(f"{self.where}: variables are a mapping name -> {INPUT!r} / expression / "
                                   "(*parents, function), or a list of Variables")
        table: dict[str, Variable] = {}
        for variable in found:
            problem = check_name(variable.name)
            if problem:
                raise _error(["variables", variable.name], f"{self.where}: variable {problem}")
            if variable.name in table:
                raise ConceptError(f"{self.where}: variable {variable.name!r} is defined twice")
            if variable.is_input and variable.parents:
                raise _error(["variables", variable.name], f"{self.where}: variable {variable.name!r} has "
                                                          f"parents {list(variable.parents)} but no function")
            table[variable.name] = variable
        if not table or not any(v.is_input for v in table.values()):
            raise _error(["variables"], f"{self.where}: no input variable; declare the variables whose values the "
                                        f"examples give as {INPUT!r}, e.g. count_a: {INPUT}")
        for variable in table.values():
            for parent in variable.parents:
                if parent not in table:
                    raise _error(["variables", variable.name], f"{self.where}: variable {variable.name!r} reads "
                                 f"{parent!r}, which is not a variable{self._valid(parent, table)}")
        return table

    def _topological_order(self) -> tuple[str, ...]:
        """The variables, each after its parents; a cycle is an error that names it."""
        order: list[str] = []
        state: dict[str, str] = {}  # name -> "visiting" | "done"

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                cycle = path[path.index(name):] + [name]
                raise _error(["variables", name], f"{self.where}: the variables form a cycle: {' -> '.join(cycle)}; "
                                                  "each variable must be computable from the inputs")
            state[name] = "visiting"
            for parent in self.variables[name].parents:
                visit(parent, [*path, name])
            state[name] = "done"
            order.append(name)

        for name in self.variables:
            visit(name, [])
        return tuple(order)

    def _formula(self, name: str) -> str:
        variable = self.variables[name]
        if variable.is_input:
            return INPUT
        function = variable.expression or getattr(variable.function, "__name__", "function")
        return function if variable.expression else f"{function}({', '.join(variable.parents)})"

    def _valid(self, given: str, table=None) -> str:
        names = list(table or self.variables)
        near = closest(given, names, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return f"{hint}; variables: {', '.join(names)}"


def _error(keys: list, message: str) -> ConceptError:
    """An error about the model's definition; ``keys``: where in a ``causal_model:`` mapping it lies."""
    error = ConceptError(message)
    error.keys = keys
    return error
