"""Expressions of a causal model written as text (``"count_a > count_b"``): parsed with ``ast`` and run by a
small interpreter that knows only a whitelist of operations. Nothing is ever passed to ``eval``/``exec``."""

from __future__ import annotations

import ast
import keyword
import operator
from dataclasses import dataclass

from ..errors import ConceptError

FUNCTIONS = {"abs": abs, "min": min, "max": max, "len": len}
MAX_LENGTH = 500  # characters: an expression is a line of a concept file, not a program

_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
               ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_COMPARISONS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
                ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
                ast.NotIn: lambda a, b: a not in b}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
            ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
            ast.MatMult: "@", ast.Invert: "~", ast.Is: "is", ast.IsNot: "is not"}
ALLOWED = ("parent variable names, numbers, 'strings', True/False, (tuples), + - * / // %, == != < <= > >= in, "
           "and/or/not, `x if condition else y`, and the functions abs, min, max, len")


@dataclass(frozen=True)
class Expression:
    """A parsed expression: ``parents`` are the variable names it reads, in order of first use; calling it
    with their values (``expression(count_a=3, count_b=1)``) gives its value."""

    text: str
    parents: tuple[str, ...]
    tree: ast.expr

    def __call__(self, *values):
        return _evaluate(self.tree, dict(zip(self.parents, values)))

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def parse_expression(text: str) -> Expression:
    """The expression ``text`` parsed and checked against the whitelist (see ALLOWED); ConceptError says
    what in it is not allowed (the caller adds which file and key it came from)."""
    if not isinstance(text, str) or not text.strip():
        raise ConceptError(f"an expression is a non-empty string; got {text!r}")
    if len(text) > MAX_LENGTH:
        raise ConceptError(f"the expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ConceptError(f"{text!r} is not a valid expression ({exc.msg}); allowed: {ALLOWED}") from None
    names: list[str] = []
    for node in ast.walk(tree):
        problem = _refusal(node)
        if problem:
            raise ConceptError(f"{text!r}: {problem} is not allowed; allowed: {ALLOWED}")
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS and node.id not in names:
            names.append(node.id)
    return Expression(text.strip(), tuple(names), tree)


def check_name(name) -> str | None:
    """Why ``name`` cannot name a variable, or None when it can."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        return f"{name!r} is not a name (letters, digits and _, not starting with a digit, not a Python keyword)"
    if name in FUNCTIONS or name.startswith("__"):
        return f"{name!r} is reserved (the functions {', '.join(FUNCTIONS)} and names starting with __)"
    return None


def _refusal(node: ast.AST) -> str | None:
    """What is wrong with one node of the tree, or None when it is allowed."""
    if isinstance(node, ast.Constant):
        return None if type(node.value) in (int, float, str, bool) else f"the constant {node.value!r}"
    if isinstance(node, ast.Name):
        return None if not node.id.startswith("__") else f"the name {node.id!r}"
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            return f"calling {ast.unparse(node.func)!r}"
        return "a keyword argument or * in a call" if node.keywords or any(
            isinstance(a, ast.Starred) for a in node.args) else None
    if isinstance(node, ast.Attribute):
        return f"attribute access ({ast.unparse(node)!r})"
    if isinstance(node, ast.BinOp) and type(node.op) not in _ARITHMETIC:
        return f"the operator {_SYMBOLS.get(type(node.op), type(node.op).__name__)}"
    if isinstance(node, ast.UnaryOp) and type(node.op) not in _UNARY:
        return f"the operator {_SYMBOLS.get(type(node.op), type(node.op).__name__)}"
    if isinstance(node, ast.Compare):
        bad = [op for op in node.ops if type(op) not in _COMPARISONS]
        return f"the comparison {_SYMBOLS.get(type(bad[0]), type(bad[0]).__name__)}" if bad else None
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.IfExp, ast.Tuple, ast.List, ast.Load, ast.operator,
                         ast.unaryop, ast.cmpop, ast.boolop)):
        return None
    return f"{type(node).__name__} ({ast.unparse(node)!r})" if isinstance(node, ast.expr) else type(node).__name__


def _evaluate(node: ast.expr, values: dict):
    """The value of a checked tree, given the values of its names."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        if isinstance(node.op, ast.Mult) and not (_is_number(left) and _is_number(right)):
            # "x" * 10**9 would build a gigabyte: repetition is not arithmetic
            raise TypeError(f"* multiplies numbers; got {type(left).__name__} and {type(right).__name__}")
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, values))
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        for operand in node.values:
            result = _evaluate(operand, values)
            if bool(result) != is_and:  # short-circuit as Python does
                return result
        return result
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, values)
        for op, comparator in zip(node.ops, node.comparators):
            right = _evaluate(comparator, values)
            if not _COMPARISONS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _evaluate(node.body if _evaluate(node.test, values) else node.orelse, values)
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](*(_evaluate(a, values) for a in node.args))
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_evaluate(e, values) for e in node.elts)
    raise TypeError(f"cannot evaluate {type(node).__name__}")  # unreachable: parse_expression refused it


def _is_number(value) -> bool:
    return isinstance(value, (int, float))
