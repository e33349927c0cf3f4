"""YAML as auditlens reads it: ``yaml.SafeLoader`` (plain data only), refusing a document whose aliases
(``*name``) would expand it past a bound, so a file of a few hundred bytes cannot become megabytes, and
a string holding a lone surrogate (``"\\ud800"``: no character, which tokenizers cannot encode). Text
files (YAML, JSONL) are read as UTF-8, and a byte that is not is named by its line."""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_EXPANDED_VALUES = 100_000


class AliasBombError(yaml.YAMLError):
    """A document that aliases expand past MAX_EXPANDED_VALUES: refused before anything is built."""

    def __init__(self, mark, size: int):
        self.problem_mark = mark
        self.problem = (f"its aliases (*name) expand it to more than {MAX_EXPANDED_VALUES:,} values ({size:,} "
                        "at least); write the values out")
        super().__init__(self.problem)


class NotTextError(ValueError):
    """A file that is not UTF-8 text, or a string that is not text; ``line`` is 1-based."""

    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


def read_utf8(path: str | Path) -> str:
    """The file's text; NotTextError names the line and the byte when it is not UTF-8 (OSError as usual)."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise NotTextError(line, f"not UTF-8 text: byte 0x{data[exc.start]:02X} at column {column}; save the "
                                 "file as UTF-8") from None


def has_lone_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


class LoneSurrogateError(yaml.YAMLError):
    """A string holding a lone surrogate escape: refused with the line it is on."""

    def __init__(self, mark):
        self.problem_mark = mark
        self.problem = ("a string holds a lone surrogate (an escape such as \"\\ud800\" with no pair), which is "
                        "not a character; write the character itself")
        super().__init__(self.problem)


def _expanded(node, sizes: dict) -> int:
    """How many values ``node`` stands for once every alias is expanded (each shared node counted once per use)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.ScalarNode) and has_lone_surrogate(node.value):
        raise LoneSurrogateError(node.start_mark)
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


def line_of(root, keys) -> int:
    """1-based line of the deepest node of the composed tree ``root`` along ``keys`` (mapping keys and list
    indices) that exists: where an error about that part of a file points."""
    node, line = root, (root.start_mark.line + 1 if root else 1)
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line
