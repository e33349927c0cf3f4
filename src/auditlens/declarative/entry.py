"""One validated entry of an audit file, and how it runs: call its check, hold the result to ``expect:``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..circuits import circuit_beside
from ..errors import CheckError
from ..registry import CHECKS
from .conditions import judge

CONCEPT_ARGUMENTS = ("concept", "pairs", "data", "reference", "tied_to", "spurious")  # their values name concept files


@dataclass(frozen=True)
class AuditEntry:
    """One entry of an audit file, validated."""

    path: Path
    line: int
    name: str
    id: str
    check: str
    arguments: dict
    expect: dict  # field -> Condition
    models: tuple[str, ...] | None = None
    marks: tuple = ()
    dictionaries: tuple = ()  # the file's DeclaredDictionary entries, attached before the check runs

    def run(self, subject, concept: Callable[[str], object]):
        """Call the check; return its result and the text of every expectation it misses."""
        check = CHECKS[self.check]
        if self.dictionaries:
            from .dictionaries import attach_declared

            attach_declared(subject, self.dictionaries, concept)
        if check.takes == "generated":
            result = check.function(subject, **_behaviour_arguments(self.arguments, concept))
        else:
            arguments = {k: concept(v) if k in CONCEPT_ARGUMENTS else v for k, v in self.arguments.items()}
            if isinstance(arguments.get("circuit"), str):  # a circuit file, beside or below the audit file
                arguments["circuit"] = circuit_beside(self.path, arguments["circuit"])
            target = arguments.pop("pairs") if "pairs" in arguments else arguments.pop("concept")
            result = check.function(subject, target, **arguments)
        return result, judge(result, self.expect)


def _behaviour_arguments(arguments: dict, concept: Callable[[str], object]) -> dict:
    """YAML arguments of a behavioural check as Python ones: strategies, perturbations, label indices."""
    from .. import behaviour  # hypothesis and torch: when an audit runs, not when a file is read

    arguments = dict(arguments)
    source = arguments["inputs"]
    named = concept(source) if isinstance(source, str) else None
    if named is not None:
        arguments["inputs"] = behaviour.from_concept(named)
        if named.answer_tokens:
            arguments["answer_tokens"] = list(named.answer_tokens)
    elif "template" in source:
        arguments["inputs"] = behaviour.templated_text(source["template"], source["slots"])
    else:
        arguments["inputs"] = behaviour.token_sequences(source["words"], source.get("min_size", 1),
                                                        source.get("max_size", 12))
    if isinstance(arguments.get("label"), str):
        names = list(named.label_names or ()) if named is not None else []
        if arguments["label"] not in names:
            raise CheckError(f"label {arguments['label']!r} is not one of the concept's labels {names}")
        arguments["label"] = names.index(arguments["label"])
    if "perturb" in arguments:
        arguments["perturb"] = perturbation(arguments["perturb"])
    return arguments


def perturbation(declared):
    """A perturbation from its YAML form (see the schema's ``perturb``)."""
    from .. import behaviour

    if declared == "add_negation":
        return behaviour.add_negation()
    if declared == "remove_negation":
        return behaviour.remove_negation()
    (kind, options), = declared.items()
    if kind == "swap":
        return behaviour.swap_words(options)
    if kind == "insert":
        return behaviour.insert_words(options["words"], options.get("min_count", 1), options.get("max_count", 1),
                                      options.get("keep_last", 0))
    if kind == "substitute":
        return behaviour.substitute_words(options["words"], options.get("keep_first", 0), options.get("keep_last", 0))
    if kind == "replace":
        return behaviour.replace_words(options["targets"], options["replacements"])
    return behaviour.rewrite(options)
