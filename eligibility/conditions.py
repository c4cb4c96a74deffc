"""The condition language: all / any / not over comparisons of facts, evaluated three-valued.

A verdict is True, False or None (unknown). Unknown is never false: an unknown fact makes its
comparison unknown, and the node reports which facts would decide it. The operator table below is
the only place operators are defined; the batch compiler builds its column expressions from it too.
"""

from __future__ import annotations

import datetime as dt
import operator
from itertools import chain
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Union

from .errors import Issue
from .facts import NUMERIC_TYPES, FactDictionary, FactSpec


@dataclass(frozen=True)
class Operator:
    name: str
    test: Callable[[Any, Any], bool]
    column: Callable[[Any, Any], Any]  # builds a columnar (polars) expression from a column and the value
    zh: str
    en: str
    zh_not: str  # the words when it fails: "高于" for le
    list_value: bool = False
    ordered: bool = False  # needs an ordered type (numbers, dates)


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("eq", operator.eq, lambda c, v: c == v, "为", "is", "不为"),
        Operator("ne", operator.ne, lambda c, v: c != v, "不为", "is not", "为"),
        Operator("lt", operator.lt, lambda c, v: c < v, "低于", "below", "不低于", ordered=True),
        Operator("le", operator.le, lambda c, v: c <= v, "不高于", "at most", "高于", ordered=True),
        Operator("gt", operator.gt, lambda c, v: c > v, "高于", "above", "不高于", ordered=True),
        Operator("ge", operator.ge, lambda c, v: c >= v, "不低于", "at least", "低于", ordered=True),
        Operator("in", lambda a, b: a in b, lambda c, v: c.is_in(list(v)), "属于", "one of", "不属于",
                 list_value=True),
        Operator("not_in", lambda a, b: a not in b, lambda c, v: ~c.is_in(list(v)), "不属于", "none of", "属于",
                 list_value=True),
    )
}

# spellings people reach for, pointed at the one operator that means it (for error hints only)
_OP_ALIASES = {"lte": "le", "gte": "ge", "<=": "le", ">=": "ge", "<": "lt", ">": "gt", "==": "eq", "=": "eq",
               "!=": "ne", "neq": "ne", "nin": "not_in", "notin": "not_in"}


@dataclass(frozen=True)
class Possible:
    """A derived value known only up to a set (e.g. size is small or micro when revenue is unknown)."""

    values: frozenset


def _without_closure(node: Any) -> dict[str, Any]:
    """A node's pickled state: its fields, not the closure decide() keeps on it (the rule cache and
    Dask's workers pickle rules; the closure is rebuilt on first use)."""
    state = node.__dict__.copy()
    state.pop("_decide", None)
    return state


@dataclass(frozen=True)
class Compare:
    fact: str
    op: str
    value: Any
    cite: str | None = None
    path: str = ""
    origin: str = "rule"  # rule | jurisdiction

    def facts(self) -> set[str]:
        return {self.fact}

    def __getstate__(self) -> dict[str, Any]:
        return _without_closure(self)


@dataclass(frozen=True)
class Group:
    kind: str  # all | any | not
    children: tuple["Node", ...]
    cite: str | None = None
    path: str = ""

    def __getstate__(self) -> dict[str, Any]:
        return _without_closure(self)

    def facts(self) -> set[str]:
        out: set[str] = set()
        for c in self.children:
            out |= c.facts()
        return out


Node = Union[Compare, Group]


@dataclass
class Trace:
    """What one node saw and concluded; `missing` is set only when the outcome is unknown."""

    node: Node
    outcome: bool | None
    actual: Any = None
    children: list["Trace"] = field(default_factory=list)
    missing: tuple[str, ...] = ()

    def walk(self) -> Iterable["Trace"]:
        yield self
        for c in self.children:
            yield from c.walk()


# ---------------------------------------------------------------- reading an evaluated tree (no words)


def deciding(trace: Trace) -> list[Trace]:
    """The leaves that decided the outcome: failures for a no, unknowns for a maybe, passes for a yes."""
    node = trace.node
    if isinstance(node, Compare):
        return [trace]
    if node.kind == "not":
        return deciding(trace.children[0])
    if trace.outcome is None:
        kids = [k for k in trace.children if k.outcome is None]
    elif node.kind == "all":
        kids = trace.children if trace.outcome else [k for k in trace.children if k.outcome is False]
    else:
        kids = [k for k in trace.children if k.outcome is True][:1] if trace.outcome else trace.children
    out: list[Trace] = []
    for k in kids:
        out += deciding(k)
    return out


def parents_of(trace: Trace) -> dict[int, Trace]:
    """id(node) -> its parent in an evaluated condition tree."""
    parents: dict[int, Trace] = {}
    for t in trace.walk():
        for c in t.children:
            parents[id(c)] = t
    return parents


def cite_for(trace: Trace, parents: dict[int, Trace]) -> str | None:
    """The document's words for a condition: its own cite, else the nearest ancestor's."""
    t: Trace | None = trace
    while t is not None:
        if t.node.cite:
            return t.node.cite
        t = parents.get(id(t))
    return None


def is_negated(leaf: Trace, parents: dict[int, Trace]) -> bool:
    """Whether a leaf sits under an odd number of `not`s."""
    n = 0
    t = parents.get(id(leaf))
    while t is not None:
        if isinstance(t.node, Group) and t.node.kind == "not":
            n += 1
        t = parents.get(id(t))
    return n % 2 == 1


# ---------------------------------------------------------------- parsing


def _typed_value(spec: FactSpec, v: Any, loc: str, issues: list[Issue]) -> Any:
    t = spec.type
    ok = True
    if t == "bool":
        ok = isinstance(v, bool)
    elif t == "int":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif t in NUMERIC_TYPES:
        ok = isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)
        if ok:
            v = Decimal(str(v))
    elif t == "date":
        ok = isinstance(v, dt.date)
    elif t == "enum":
        ok = isinstance(v, str) and v in spec.values
        if not ok:
            import difflib

            close = difflib.get_close_matches(str(v), list(spec.values), n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            issues.append(Issue(loc, f"{v!r} is not a value of enum fact '{spec.name}'{hint}"))
            return v
    elif t == "text":
        ok = isinstance(v, str)
    if not ok:
        issues.append(Issue(loc, f"{v!r} does not fit fact '{spec.name}' of type {t}"))
    elif t in NUMERIC_TYPES:
        _check_range(spec, Decimal(v) if isinstance(v, int) else v, loc, issues)
    return v


def _check_range(spec: FactSpec, d: Decimal, loc: str, issues: list[Issue]) -> None:
    """A number a rule compares with: finite and within the fact's declared range (nan, inf or 1e400 in a
    rule file would make every comparison fail or raise)."""
    from .facts import MAX_ABS

    if not d.is_finite() or d.copy_abs() > MAX_ABS:
        issues.append(Issue(loc, f"应为不超过1e15的有限数 / must be a finite number of at most 1e15 in size, got {d}"))
    elif (spec.min is not None and d < spec.min) or (spec.max is not None and d > spec.max):
        issues.append(Issue(loc, f"{d} 超出事实“{spec.name}”的范围 / is outside the range of fact '{spec.name}' "
                                 f"[{spec.min if spec.min is not None else '-∞'}, "
                                 f"{spec.max if spec.max is not None else '∞'}]"))


def parse_condition(raw: Any, facts: FactDictionary, loc: str, issues: list[Issue]) -> Node | None:
    """Turn YAML into a node tree; every problem becomes an Issue at its `$.path`."""
    if not isinstance(raw, dict):
        issues.append(Issue(loc, "a condition must be a mapping (all/any/not or fact + operator)"))
        return None
    cite = raw.get("cite")
    if cite is not None and not isinstance(cite, str):
        issues.append(Issue(loc + ".cite", "cite must be text"))
        cite = None
    groups = [k for k in ("all", "any", "not") if k in raw]
    if groups:
        extra = set(raw) - {groups[0], "cite"}
        if len(groups) > 1 or extra:
            issues.append(Issue(loc, f"a group node has one of all/any/not and an optional cite; found {sorted(raw)}"))
            return None
        kind = groups[0]
        body = raw[kind]
        if kind == "not":
            child = parse_condition(body, facts, f"{loc}.not", issues)
            return Group("not", (child,) if child else (), cite, loc) if child else None
        if not isinstance(body, list) or not body:
            issues.append(Issue(f"{loc}.{kind}", "must be a non-empty list of conditions"))
            return None
        children = [parse_condition(c, facts, f"{loc}.{kind}[{i}]", issues) for i, c in enumerate(body)]
        if any(c is None for c in children):
            return None
        return Group(kind, tuple(children), cite, loc)  # type: ignore[arg-type]
    if "fact" not in raw:
        import difflib

        keys = [k for k in raw if k != "cite"]
        close = difflib.get_close_matches(str(keys[0]) if keys else "", ["all", "any", "not", "fact"], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        issues.append(Issue(loc, f"expected all/any/not or fact + operator, found {sorted(raw)}{hint}"))
        return None
    name = raw["fact"]
    ops = [k for k in raw if k not in ("fact", "cite")]
    if name not in facts:
        issues.append(Issue(loc + ".fact", f"unknown fact {name!r}{facts.suggest(str(name))}"))
        return None
    if len(ops) != 1 or ops[0] not in OPERATORS:
        import difflib

        bad = [o for o in ops if o not in OPERATORS]
        hint = ""
        if bad:
            close = [_OP_ALIASES[bad[0]]] if bad[0] in _OP_ALIASES else difflib.get_close_matches(
                str(bad[0]), list(OPERATORS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
        issues.append(Issue(loc, f"a comparison needs exactly one operator of {list(OPERATORS)}; found {ops}{hint}"))
        return None
    op = OPERATORS[ops[0]]
    spec = facts[name]
    value = raw[op.name]
    vloc = f"{loc}.{op.name}"
    if op.list_value:
        if not isinstance(value, list) or not value:
            issues.append(Issue(vloc, "expects a non-empty list"))
            return None
        value = tuple(_typed_value(spec, v, f"{vloc}[{i}]", issues) for i, v in enumerate(value))
    else:
        if isinstance(value, list):
            issues.append(Issue(vloc, f"'{op.name}' takes one value; use 'in' for a list"))
            return None
        value = _typed_value(spec, value, vloc, issues)
        if op.ordered and spec.type not in (*NUMERIC_TYPES, "date"):
            issues.append(Issue(vloc, f"'{op.name}' needs a number or date fact; '{name}' is {spec.type}"))
    return Compare(name, op.name, value, cite, loc)


# ---------------------------------------------------------------- evaluation


def evaluate_node(node: Node, values: dict[str, Any], needs: dict[str, tuple[str, ...]]) -> Trace:
    """Kleene logic over the tree; `needs` says which input facts decide an unknown (derived) fact."""
    if isinstance(node, Compare):
        actual = values.get(node.fact)
        if actual is None:
            return Trace(node, None, None, missing=needs.get(node.fact, (node.fact,)))
        op = OPERATORS[node.op]
        if isinstance(actual, Possible):
            outcomes = {bool(op.test(v, node.value)) for v in actual.values}
            if len(outcomes) == 1:
                return Trace(node, outcomes.pop(), actual)
            return Trace(node, None, actual, missing=needs.get(node.fact, (node.fact,)))
        return Trace(node, bool(op.test(actual, node.value)), actual)
    kids = [evaluate_node(c, values, needs) for c in node.children]
    if node.kind == "not":
        k = kids[0]
        return Trace(node, None if k.outcome is None else not k.outcome, children=kids, missing=k.missing)
    decisive = node.kind == "any"  # any: one True decides; all: one False decides
    if any(k.outcome is decisive for k in kids):
        return Trace(node, decisive, children=kids)
    if all(k.outcome is (not decisive) for k in kids):
        return Trace(node, not decisive, children=kids)
    missing: dict[str, None] = {}
    for k in kids:
        if k.outcome is None:
            missing.update(dict.fromkeys(k.missing))
    return Trace(node, None, children=kids, missing=tuple(missing))


def decide(node: Node, values: dict[str, Any], needs: dict[str, tuple[str, ...]]) -> tuple[bool | None, tuple]:
    """(outcome, missing) exactly as evaluate_node gives them, without building the trace: an `all` stops
    at its first False child, an `any` at its first True (their missing facts are then empty anyway).
    Runs the node's closure (built once per node by _decider): no dispatch on node types per call."""
    f = node.__dict__.get("_decide")
    if f is None:
        f = _decider(node)
    return f(values, needs)


def decider(node: Node) -> Callable[[dict[str, Any], dict[str, tuple[str, ...]]], tuple[bool | None, tuple]]:
    """decide() of one node as its closure, for callers that run many nodes (one call less per node)."""
    return node.__dict__.get("_decide") or _decider(node)


def place_fails(node: Node, values: dict[str, Any], needs: dict[str, tuple[str, ...]]) -> bool:
    """One of the jurisdiction comparisons a rule's condition starts with (loading puts them first, in an
    `all`) is False: the rule is out because of where the business is. The same answer as looking for a
    jurisdiction leaf among deciding() of the rule's trace, without building the trace."""
    kids = node.children if isinstance(node, Group) and node.kind == "all" else (node,)
    return any(isinstance(k, Compare) and k.origin == "jurisdiction" and decide(k, values, needs)[0] is False
               for k in kids)


def _decider(node: Node) -> Callable[[dict[str, Any], dict[str, tuple[str, ...]]], tuple[bool | None, tuple]]:
    """decide() of one node as a closure over its children's closures, kept on the (frozen) node."""
    if isinstance(node, Compare):
        fact, value, test = node.fact, node.value, OPERATORS[node.op].test
        unknown_here = (fact,)

        def leaf(values, needs):
            actual = values.get(fact)
            if actual is None:
                return None, needs.get(fact, unknown_here)
            if isinstance(actual, Possible):
                outcomes = {bool(test(v, value)) for v in actual.values}
                if len(outcomes) == 1:
                    return outcomes.pop(), ()
                return None, needs.get(fact, unknown_here)
            return bool(test(actual, value)), ()

        f = leaf
    elif node.kind == "not":
        child = _decider(node.children[0])

        def negation(values, needs):
            outcome, missing = child(values, needs)
            return (None if outcome is None else not outcome), missing

        f = negation
    else:
        kids = tuple(_decider(c) for c in node.children)
        decisive = node.kind == "any"  # any: one True decides; all: one False decides

        def group(values, needs):
            first = more = None  # the unknown children's missing facts: the first, then all of them
            for kid in kids:
                outcome, missing = kid(values, needs)
                if outcome is decisive:
                    return decisive, ()
                if outcome is None:
                    if first is None:
                        first = missing
                    elif more is None:
                        more = [first, missing]
                    else:
                        more.append(missing)
            if first is None:
                return not decisive, ()
            return None, tuple(dict.fromkeys(first if more is None else chain.from_iterable(more)))

        f = group
    object.__setattr__(node, "_decide", f)
    return f


def node_from_jurisdiction(jur: dict[str, Any], regions: dict[str, Any], loc: str) -> list[Compare]:
    """Jurisdiction is data too: it becomes place comparisons ahead of the rule's own condition."""
    out: list[Compare] = []
    if jur.get("province"):
        out.append(Compare("province", "eq", jur["province"], None, loc + ".province", "jurisdiction"))
    if jur.get("city"):
        out.append(Compare("city", "eq", jur["city"], None, loc + ".city", "jurisdiction"))
    counties: list[str] = []
    if jur.get("region"):
        counties += regions[jur["region"]]["counties"]
    counties += list(jur.get("counties") or ())
    if counties:
        out.append(Compare("county", "in", tuple(dict.fromkeys(counties)), None, loc + ".counties", "jurisdiction"))
    return out
