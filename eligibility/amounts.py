"""The amount language: arithmetic over facts and named parameters, in exact decimals (元).

Grammar (no eval, a hand-written parser):  expr := term (('+'|'-') term)* ;
term := unary (('*'|'/') unary)* ;  unary := '-' unary | atom ;
atom := NUMBER ['%'] | NAME | FUNC '(' expr (',' expr)* ')' | '(' expr ')'.
Functions are the table FUNCTIONS; names are facts or the rule's params.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, DivisionByZero, InvalidOperation
from typing import Any, Callable, Union

from .errors import FormulaError
from .facts import FactDictionary, format_decimal

CENT = Decimal("0.01")

FUNCTIONS: dict[str, Callable[..., Decimal]] = {"min": min, "max": max}
BINARY: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}
SYMBOLS = {"*": "×", "/": "÷", "+": "+", "-": "−"}
MAX_DEPTH = 50  # of the formula's tree: names(), compute() and render() recurse over it


@dataclass(frozen=True)
class Num:
    value: Decimal
    text: str


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Neg:
    arg: "Expr"


@dataclass(frozen=True)
class Bin:
    op: str
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple["Expr", ...]


Expr = Union[Num, Ref, Neg, Bin, Call]

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?%?)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


def parse_formula(text: str) -> Expr:
    """Parse a formula string; raise FormulaError naming the position of the problem."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("a formula must be non-empty text")
    if len(text) > 2000:
        raise FormulaError("formula too long")
    tokens: list[tuple[str, str, int]] = []
    for m in _TOKEN.finditer(text):
        num, name, sym = m.groups()
        if num:
            tokens.append(("num", num, m.start(1)))
        elif name:
            tokens.append(("name", name, m.start(2)))
        elif sym and not sym.isspace():
            if sym not in "+-*/(),":
                raise FormulaError(f"unexpected character {sym!r} at position {m.start(3)}")
            tokens.append(("sym", sym, m.start(3)))
    pos = 0

    def peek() -> tuple[str, str, int] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(expected: str | None = None) -> tuple[str, str, int]:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise FormulaError(f"formula ends early: {text!r}")
        if expected and tok[1] != expected:
            raise FormulaError(f"expected {expected!r} at position {tok[2]}, found {tok[1]!r}")
        pos += 1
        return tok

    def expr(depth: int) -> Expr:
        if depth > 50:
            raise FormulaError("formula nested too deeply")
        node = term(depth)
        while (t := peek()) and t[1] in "+-" and t[0] == "sym":
            take()
            node = Bin(t[1], node, term(depth))
        return node

    def term(depth: int) -> Expr:
        node = unary(depth)
        while (t := peek()) and t[1] in "*/" and t[0] == "sym":
            take()
            node = Bin(t[1], node, unary(depth))
        return node

    def unary(depth: int) -> Expr:
        if depth > MAX_DEPTH:  # - - - - x: each minus is a level
            raise FormulaError("formula nested too deeply")
        t = peek()
        if t and t[0] == "sym" and t[1] == "-":
            take()
            return Neg(unary(depth + 1))
        return atom(depth)

    def atom(depth: int) -> Expr:
        kind, val, at = take()
        if kind == "num":
            if val.endswith("%"):
                return Num(Decimal(val[:-1]) / 100, val)
            return Num(Decimal(val), val)
        if kind == "name":
            nxt = peek()
            if nxt and nxt[1] == "(":
                if val not in FUNCTIONS:
                    raise FormulaError(f"unknown function {val!r} at position {at}; known: {sorted(FUNCTIONS)}")
                take("(")
                args = [expr(depth + 1)]
                while (t := peek()) and t[1] == ",":
                    take()
                    args.append(expr(depth + 1))
                take(")")
                return Call(val, tuple(args))
            return Ref(val)
        if val == "(":
            inner = expr(depth + 1)
            take(")")
            return inner
        raise FormulaError(f"unexpected {val!r} at position {at}")

    tree = expr(0)
    if pos != len(tokens):
        raise FormulaError(f"unexpected {tokens[pos][1]!r} at position {tokens[pos][2]}")
    if depth_of(tree) > MAX_DEPTH:  # a + a + a + ... is as deep as it is long
        raise FormulaError(f"formula nested too deeply (more than {MAX_DEPTH} levels)")
    return tree


def depth_of(e: Expr) -> int:
    """The depth of the tree, without recursion."""
    deepest, stack = 0, [(e, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack += [(c, d + 1) for c in children(node)]
    return deepest


def children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, Neg):
        return (e.arg,)
    if isinstance(e, Bin):
        return (e.left, e.right)
    if isinstance(e, Call):
        return e.args
    return ()


def nodes(e: Expr) -> list[Expr]:
    """Every node of the tree, parents first."""
    out, stack = [], [e]
    while stack:
        node = stack.pop()
        out.append(node)
        stack += reversed(children(node))
    return out


def names(e: Expr) -> list[str]:
    """Every name the formula uses, in order of appearance (left to right)."""
    return list(dict.fromkeys(n.name for n in nodes(e) if isinstance(n, Ref)))


def compute(e: Expr, env: dict[str, Any]) -> Decimal | None:
    """Exact value, or None when a name is unknown (or a division by zero)."""
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Ref):
        v = env.get(e.name)
        return None if v is None else Decimal(v) if not isinstance(v, Decimal) else v
    if isinstance(e, Neg):
        v = compute(e.arg, env)
        return None if v is None else -v
    if isinstance(e, Bin):
        a, b = compute(e.left, env), compute(e.right, env)
        if a is None or b is None:
            return None
        try:
            return BINARY[e.op](a, b)
        except (DivisionByZero, InvalidOperation):
            return None
    vals = [compute(a, env) for a in e.args]
    if any(v is None for v in vals):
        return None
    return FUNCTIONS[e.fn](*vals)  # type: ignore[arg-type]


def render(e: Expr, label: Callable[[str], str], top: bool = True) -> str:
    """The formula in words or numbers: `label(name)` gives each name's text."""
    if isinstance(e, Num):
        return e.text
    if isinstance(e, Ref):
        return label(e.name)
    if isinstance(e, Neg):
        return "−" + render(e.arg, label, False)
    if isinstance(e, Bin):
        s = f"{render(e.left, label, False)} {SYMBOLS[e.op]} {render(e.right, label, False)}"
        return s if top or e.op in "*/" else f"({s})"
    return f"{e.fn}(" + ", ".join(render(a, label) for a in e.args) + ")"


def to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------- naming the names of a formula


class Labeller:
    """Names in formulas as the fact dictionary labels them (the engine's `amount_formula`) or as numbers
    (`amount_filled`), for render()."""

    def __init__(self, facts: FactDictionary, lang: str = "zh"):
        self.facts = facts
        self.lang = lang

    def formula_name(self, params: dict[str, str]) -> Callable[[str], str]:
        def label(name: str) -> str:
            if name in params:
                return params[name]
            spec = self.facts.get(name)
            return spec.label(self.lang) if spec else name

        return label

    def formula_value(self, values: dict[str, Any], params: dict[str, str]) -> Callable[[str], str]:
        def label(name: str) -> str:
            if name in params:
                return params[name]
            return format_decimal(values[name])

        return label
