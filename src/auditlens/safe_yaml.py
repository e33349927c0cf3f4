"""YAML as auditlens reads it: ``yaml.SafeLoader`` (plain data only), refusing a document whose aliases
(``*name``) would expand it past a bound, so a file of a few hundred bytes cannot become megabytes."""

from __future__ import annotations

import yaml

MAX_EXPANDED_VALUES = 100_000


class AliasBombError(yaml.YAMLError):
    """A document that aliases expand past MAX_EXPANDED_VALUES: refused before anything is built."""

    def __init__(self, mark, size: int):
        self.problem_mark = mark
        self.problem = (f"its aliases (*name) expand it to more than {MAX_EXPANDED_VALUES:,} values ({size:,} "
                        "at least); write the values out")
        super().__init__(self.problem)


def _expanded(node, sizes: dict) -> int:
    """How many values ``node`` stands for once every alias is expanded (each shared node counted once per use)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded(key, sizes) + _expanded(value, sizes) for key, value in node.value)
    sizes[id(node)] = size
    if size > MAX_EXPANDED_VALUES:
        raise AliasBombError(node.start_mark, size)
    return size


def compose(text: str):
    """The node tree (no object built), refused if its aliases expand it past the bound."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        _expanded(root, {})
    return root


def construct(root):
    """The plain data of a composed tree (SafeLoader's constructor: mappings, lists, strings, numbers)."""
    if root is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    finally:
        loader.dispose()


def load(text: str):
    """``yaml.safe_load`` after the same check, parsing the text once."""
    return construct(compose(text))
