"""The rule trees compiled to polars expressions: one pass over a whole chunk of companies.

The batch path must give exactly the single path's answers (evaluate.py), row for row, and it is
built from the same pieces: the operator table of conditions.py (each operator's `column`
builder), the size standard's own condition trees, the formula ASTs of amounts.py. What differs is
only how values are held:

* Encoded input, one column per fact, named by the fact: bool -> Boolean, int -> Int64,
  money/percent/number -> Int64 in thousandths (SCALE), date -> Date, enum/text -> String; null is
  unknown. Values that do not fit (more than three decimals) are flagged by the reader and those
  rows go through the single path instead (batch.chunk).
* Three-valued logic is polars' own: Boolean & / | and all/any_horizontal with nulls are Kleene.
* size (工信部联企业〔2011〕300号) is a 4-bit mask of the classes it may be in (large 1, medium 2,
  small 4, micro 8): one bit is a known size, several bits are the single path's `Possible`, null is
  unknown (the single path's None, which is also what it makes of all four).
* layoff_rate and insured_decline_pct (100 × a ÷ b) are compared exactly as fractions in Int128.
* Amounts are computed exactly in fixed point when the formula has no division (Int64 where the
  static bound allows, else Int128), and in float64 with a rigorous error bound otherwise. The bound
  assumes inputs up to ROW_BOUND; a row with a larger input, or a float result whose bound straddles
  a half-fen, is flagged `ambiguous` and recomputed with evaluate.compute_amount (the Decimal code
  itself) for that row and rule only: the batch therefore agrees to the fen.
* `missing` is reconstructed from which nodes are unknown: a leaf is named when it and all its
  ancestors are unknown, expanded by the derived facts' `needs` exactly as derive() does.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from . import amounts as A
from .conditions import OPERATORS, Compare, Node
from .derived import derivations, size_standard
from .money import tie_key
from .scoring import MAX_SCALED, rule_weight, scaled
from .validity import window
from .facts import NUMERIC_TYPES, FactDictionary

if TYPE_CHECKING:  # the rule models are imported by whoever loaded the rules (batch.read reads meanwhile)
    from .loading import CompiledRule, RuleSet

SCALE_DIGITS = 3
SCALE = 10**SCALE_DIGITS
SIZE_BITS = {"large": 1, "medium": 2, "small": 4, "micro": 8}
ALL_SIZES = 15
SIZE_COL = "__size"
SIZE_PARTS = ("sme", "medium", "micro")
U = 2.0**-53  # unit roundoff of float64
INT_LIMIT = 10**37  # Int128 fixed point (2^127 ≈ 1.7e38) is used while the static bound stays below this
I64_LIMIT = 2**63 - 1  # below this static bound a formula node is Int64 (its kernels cost half of Int128's)
# amounts are computed for inputs up to this size (units of the fact; 1万亿元 for money), which keeps most
# formula nodes within Int64; a row with a larger input is flagged ambiguous and recomputed exactly
# (compute_amount), like a float bound that straddles a half-fen
ROW_BOUND = 10**12
TOP_FACTS = 5
STATUS_CODES = {"ineligible": 0, "eligible": 1, "undetermined": 2}
STATUS_NAMES = {v: k for k, v in STATUS_CODES.items()}
DERIVED = ("size", "layoff_rate", "insured_decline_pct")


def scale_of(ftype: str) -> int:
    """Digits after the point in the encoded Int64 column of a numeric fact."""
    return 0 if ftype == "int" else SCALE_DIGITS


def dtype_of(ftype: str) -> pl.DataType:
    return {"bool": pl.Boolean, "int": pl.Int64, "money": pl.Int64, "percent": pl.Int64, "number": pl.Int64,
            "date": pl.Date, "enum": pl.String, "text": pl.String}[ftype]


@dataclass(frozen=True)
class Ratio:
    """A derived percentage 100 × num ÷ den (derived.py), with the inputs derive() names when unknown."""

    name: str
    inputs: tuple[str, str]  # in derive()'s order
    fallback: str  # what derive() names when both inputs are known but the ratio is not (den 0)

    def num(self) -> pl.Expr:
        if self.name == "layoff_rate":
            return pl.col("unemployment_claimants").cast(pl.Int128)
        return pl.col("insured_employees").cast(pl.Int128) - pl.col("insured_employees_at_application").cast(pl.Int128)

    def den(self) -> pl.Expr:
        return pl.col("insured_employees").cast(pl.Int128)

    def known(self) -> pl.Expr:
        a, b = self.inputs
        return pl.col(a).is_not_null() & pl.col(b).is_not_null() & (self.den() != 0)

    def need(self, fact: str) -> pl.Expr:
        """Row flag: derive() lists `fact` among the needs of this ratio (used only where it is unknown)."""
        a, b = self.inputs
        flag = pl.col(fact).is_null()
        if fact == self.fallback:
            flag = flag | (pl.col(a).is_not_null() & pl.col(b).is_not_null() & (self.den() == 0))
        return flag


RATIOS = {
    "layoff_rate": Ratio("layoff_rate", ("unemployment_claimants", "insured_employees"), "insured_employees"),
    "insured_decline_pct": Ratio("insured_decline_pct", ("insured_employees", "insured_employees_at_application"),
                                 "insured_employees"),
}
SIZE_INPUTS = ("employees", "revenue", "total_assets")


def _key(node: Node) -> tuple:
    """Structural identity of a node (paths and cites do not change its value)."""
    if isinstance(node, Compare):
        return ("c", node.fact, node.op, node.value)
    return (node.kind, tuple(_key(c) for c in node.children))


@dataclass
class Candidate:
    """One (leaf, fact) pair that may be named as missing; active per row as a Boolean expression."""

    fact: str
    active: pl.Expr


@dataclass
class AmountPlan:
    cents: pl.Expr  # Int64 fen, null when there is no amount
    ambiguous: pl.Expr | None  # Boolean: the float bound straddles a half-fen -> recompute exactly
    candidates: list[Candidate]  # amount_missing, in the single path's order


@dataclass
class RulePlan:
    rule: CompiledRule
    index: int
    outcome: pl.Expr  # Kleene Boolean of the whole condition
    candidates: list[Candidate]  # missing, in the single path's order
    amount: AmountPlan | None
    weight: float
    in_effect: bool
    window: str


@dataclass
class _Num:
    """A formula node: float value and error bound, and an exact fixed-point form when there is one."""

    f: pl.Expr
    e: pl.Expr
    i: pl.Expr | None = None
    s: int = 0  # digits after the point of i
    m: int = 0  # static bound on |i| for inputs up to ROW_BOUND: no Int128 overflow below INT_LIMIT
    dz: pl.Expr | None = None  # an exact division by zero happened (the single path gives no amount)
    amb: pl.Expr | None = None  # a divisor's bound contains zero, or an input exceeds ROW_BOUND
    d: int = 0  # stage of the columns it reads (0: input columns only)
    lo0: bool = False  # never below zero (inputs and constants at least 0, no subtraction)
    wide: bool = False  # i is Int128 (its bound, or an operand's, exceeds Int64), else Int64


def _int(wide: bool) -> pl.DataType:
    return pl.Int128 if wide else pl.Int64


def _widen(i: pl.Expr, wide: bool, to_wide: bool) -> pl.Expr:
    """A fixed-point expression as Int128 when the operation it feeds needs it."""
    return i.cast(pl.Int128) if to_wide and not wide else i


def _or(a: pl.Expr | None, b: pl.Expr | None) -> pl.Expr | None:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def _dec_fixed(v: Decimal) -> tuple[int, int] | None:
    """Decimal -> (integer, digits) with v == integer / 10**digits, when digits stays small."""
    sign, digits, exp = v.as_tuple()
    if not isinstance(exp, int):
        return None
    n = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if exp >= 0:
        return n * 10**exp, 0
    if -exp > 18:
        return None
    return n, -exp


class Program:
    """A rule set compiled for one evaluation date. `run(encoded)` adds the per-rule columns."""

    def __init__(self, rules: RuleSet, on: dt.date, only: frozenset[int] | None = None):
        """only: the indices of the rules to compile (the others are taken as ineligible for every row
        this program sees: batch.plan gives it only rows whose place rules them out)."""
        self.rules = rules
        self.on = on
        self.only = only
        self.facts: FactDictionary = rules.facts
        for name in self.facts:
            if self.facts[name].derived and name not in DERIVED:
                raise NotImplementedError(f"derived fact {name!r} has no columnar form (columnar.py)")
        self._leaf_cols: dict[tuple, str] = {}
        self._leaf_exprs: list[pl.Expr] = []
        self._group_cols: dict[tuple, str] = {}
        self._group_levels: dict[int, list[pl.Expr]] = {}
        self._depth: dict[tuple, int] = {}
        self._num_cols: dict[tuple, _Num] = {}  # formula node -> its materialised columns
        self._num_levels: dict[int, list[pl.Expr]] = {}
        self._flag_levels: dict[int, list[pl.Expr]] = {}  # temporary flags (__h), see _candidates
        self._n_flags = 0
        self._null_facts: dict[str, None] = {}  # facts whose null flag (`__null:{fact}`) a stage reads
        self.size_masks = self._size_expr()
        self.plans = [self._plan(r, i) for i, r in enumerate(rules.rules) if only is None or i in only]
        self.groups = [sorted(g) for g in rules.exclusion_groups]
        self.input_facts = sorted(self._used_facts())
        self.reads = [*self.input_facts, SIZE_COL, *_names({0: self._need_exprs()})]  # run(derived=True) input
        self.score_facts = self._score_facts()
        self._mask_exprs = self.mask_exprs()
        self._outs = self._out_exprs()
        self.plans_by_index = {p.index: p for p in self.plans}
        self._summary: dict[frozenset[int] | None, list[list[pl.Expr]]] = {None: self._summary_exprs()}
        self._prune_num_levels()
        for f in sorted({r.fallback for r in RATIOS.values()}):  # facts_to_collect reads their null flags
            self._null(f)
        self._leaf_stage = [*self._leaf_exprs, *(pl.col(f).is_null().alias(f"__null:{f}") for f in self._null_facts)]
        self._split_stages()

    def _prune_num_levels(self) -> None:
        """Drop the formula columns nothing reads: a node with an exact Int128 form rarely needs its float
        value and error bound (about half of the catalogue's formula columns)."""
        num = {e.meta.output_name(): e for level in self._num_levels.values() for e in level}
        readers = [*self._leaf_exprs, *self._outs, *self._mask_exprs,
                   *(e for levels in (self._group_levels, self._flag_levels) for level in levels.values() for e in level)]
        live: set[str] = set()
        todo = [r for e in readers for r in e.meta.root_names() if r in num]
        while todo:
            name = todo.pop()
            if name not in live:
                live.add(name)
                todo += [r for r in num[name].meta.root_names() if r in num]
        self._num_levels = {d: kept for d, level in self._num_levels.items()
                            if (kept := [e for e in level if e.meta.output_name() in live])}
        # the row flags the statuses and amounts read (amount cases); the rest only feed the masks
        flags = {e.meta.output_name(): e for level in self._flag_levels.values() for e in level}
        live = set()
        todo = [r for e in self._outs for r in e.meta.root_names() if r in flags]
        while todo:
            name = todo.pop()
            if name not in live:
                live.add(name)
                todo += [r for r in flags[name].meta.root_names() if r in flags]
        self._out_flag_levels = {d: kept for d, level in self._flag_levels.items()
                                 if (kept := [e for e in level if e.meta.output_name() in live])}

    # ------------------------------------------------------------------ conditions

    def _used_facts(self) -> set[str]:
        out: set[str] = set()
        for p in self.plans:
            out |= p.rule.facts
        out |= set(SIZE_INPUTS) | {"industry", "size"}
        for ratio in RATIOS.values():
            out |= set(ratio.inputs) | {ratio.name}
        for d in derivations(self.facts):
            if d.fact in out:
                out |= d.when.facts()
        return {f for f in out if f in self.facts}

    def _num_compare(self, op: str, col: pl.Expr, value: Any, scale: int) -> pl.Expr:
        """op on an integer column holding value × 10**scale, against an exact decimal constant."""
        o = OPERATORS[op]
        mult = 10**scale
        if o.list_value:
            vals = [Decimal(v) * mult for v in value]
            return o.column(col, [int(v) for v in vals if v == v.to_integral_value()])
        cs = Decimal(value) * mult
        if cs == cs.to_integral_value():
            return o.column(col, int(cs))
        lo, hi = math.floor(cs), math.ceil(cs)  # an integer is never equal to cs
        if op == "eq":
            return OPERATORS["eq"].column(col, lo) & OPERATORS["eq"].column(col, hi)
        if op == "ne":
            return OPERATORS["ne"].column(col, lo) | OPERATORS["ne"].column(col, hi)
        if op in ("lt", "le"):
            return OPERATORS["le"].column(col, lo)
        return OPERATORS["ge"].column(col, hi)

    def _ratio_compare(self, node: Compare) -> pl.Expr:
        """100·num/den op C  <=>  100·num·q op p·den  (den > 0, C = p/q), exact in Int128."""
        ratio = RATIOS[node.fact]
        o = OPERATORS[node.op]
        given = self._num_compare(node.op, pl.col(node.fact), node.value, scale_of(self.facts[node.fact].type))
        lhs_base = ratio.num() * 100

        def one(op: str, c: Any) -> pl.Expr:
            fr = Fraction(Decimal(c))
            lhs = lhs_base * pl.lit(fr.denominator, dtype=pl.Int128)
            rhs = pl.lit(fr.numerator, dtype=pl.Int128) * ratio.den()
            return OPERATORS[op].column(lhs, rhs)

        if o.list_value:
            eqs = [one("eq", c) for c in node.value]
            derived = pl.any_horizontal(eqs) if node.op == "in" else ~pl.any_horizontal(eqs)
        else:
            derived = one(node.op, node.value)
        return (pl.when(pl.col(node.fact).is_not_null()).then(given)
                .when(pl.col(f"__known:{node.fact}")).then(derived).otherwise(None))

    def _size_compare(self, node: Compare) -> pl.Expr:
        op = OPERATORS[node.op]
        true_bits = sum(bit for v, bit in SIZE_BITS.items() if op.test(v, node.value))
        m = pl.col(SIZE_COL)
        all_true = (m & pl.lit(ALL_SIZES ^ true_bits, dtype=pl.UInt8)) == 0
        none_true = (m & pl.lit(true_bits, dtype=pl.UInt8)) == 0
        return pl.when(all_true).then(True).when(none_true).then(False).otherwise(None)

    def _leaf_expr(self, node: Compare) -> pl.Expr:
        spec = self.facts[node.fact]
        if node.fact == "size":
            return self._size_compare(node)
        if node.fact in RATIOS:
            return self._ratio_compare(node)
        if spec.type in NUMERIC_TYPES:
            return self._num_compare(node.op, pl.col(node.fact), node.value, scale_of(spec.type))
        o = OPERATORS[node.op]
        value = node.value
        if spec.type == "date":
            value = [pl.lit(v, dtype=pl.Date) for v in value] if o.list_value else pl.lit(value, dtype=pl.Date)
        return o.column(pl.col(node.fact), value)

    def node(self, node: Node) -> pl.Expr:
        """The column holding a node's Kleene outcome (computed once per distinct node)."""
        key = _key(node)
        if isinstance(node, Compare):
            if key not in self._leaf_cols:
                name = f"__c{len(self._leaf_cols)}"
                self._leaf_cols[key] = name
                self._leaf_exprs.append(self._leaf_expr(node).alias(name))
                self._depth[key] = 0
            return pl.col(self._leaf_cols[key])
        if key not in self._group_cols:
            kids = [self.node(c) for c in node.children]
            depth = 1 + max(self._depth[_key(c)] for c in node.children)
            if node.kind == "not":
                expr = ~kids[0]
            elif node.kind == "all":
                expr = pl.all_horizontal(kids)
            else:
                expr = pl.any_horizontal(kids)
            name = f"__g{len(self._group_cols)}"
            self._group_cols[key] = name
            self._depth[key] = depth
            self._group_levels.setdefault(depth, []).append(expr.alias(name))
        return pl.col(self._group_cols[key])

    def _candidates(self, node: Node, live: pl.Expr, depth: int = 0) -> list[Candidate]:
        """Facts a node names when unknown, in evaluate_node's order; `live` = node and ancestors unknown.

        Each `here` flag is a column of its own (stage = depth on the path): inline, the flags of deep
        trees repeat their ancestors and polars spends more time planning them than computing them."""
        here = self._flag(live & self.node(node).is_null(), depth + 1)
        if isinstance(node, Compare):
            return self._needs(node.fact, here)
        out: list[Candidate] = []
        for c in node.children:
            out += self._candidates(c, here, depth + 1)
        return out

    def _flag(self, expr: pl.Expr, depth: int) -> pl.Expr:
        """A Boolean row flag computed once into a column at stage `depth` (after the condition nodes)."""
        name = f"__h{self._n_flags}"
        self._n_flags += 1
        self._flag_levels.setdefault(depth, []).append(expr.alias(name))
        return pl.col(name)

    def _needs(self, fact: str, active: pl.Expr) -> list[Candidate]:
        """needs.get(fact, (fact,)) of derive(), as candidates gated by row flags."""
        if fact == "size":
            return [Candidate(f, active & pl.col(f"__need:size:{f}")) for f in ("industry", *SIZE_INPUTS)]
        if fact in RATIOS:
            return [Candidate(f, active & pl.col(f"__need:{fact}:{f}")) for f in RATIOS[fact].inputs]
        return [Candidate(fact, active)]

    def _need_exprs(self) -> list[pl.Expr]:
        out = [pl.col("industry").is_null().alias("__need:size:industry")]
        out += [self._size_need(f).alias(f"__need:size:{f}") for f in SIZE_INPUTS]
        for name, ratio in RATIOS.items():
            out += [ratio.need(f).alias(f"__need:{name}:{f}") for f in ratio.inputs]
            out.append(ratio.known().alias(f"__known:{name}"))
        return out

    def _size_need(self, fact: str) -> pl.Expr:
        std = size_standard(self.facts)
        uses = [n for n, sector in enumerate(std.sectors.values()) if fact in std.inputs(sector)]
        return pl.col(fact).is_null() & (pl.col("industry").is_null() | pl.col("__sector").is_in(uses))

    def _size_expr(self) -> pl.Expr:
        """The size mask per 工信部联企业〔2011〕300号, as derived._size decides it; a declared size wins."""
        std = size_standard(self.facts)
        industry = pl.col("industry")
        # computed once as columns before the mask: each sector's three tests and the industry's sector
        codes = {k: n for n, k in enumerate(std.sectors)}
        inds = list(self.facts["industry"].values)
        self._sector_expr = industry.replace_strict(
            inds, [codes[std.sector_for(i).key] for i in inds], default=None, return_dtype=pl.UInt8).alias("__sector")
        sector_col = pl.col("__sector")
        # each row's own sector's three tests are picked first, then turned into the mask once (not
        # once per sector: that chain cost more than all the rules' conditions)
        self._size_tests = {codes[key]: [self._inline(getattr(sector, part)).alias(f"__sz:{key}:{part}")
                                         for part in SIZE_PARTS] for key, sector in std.sectors.items()}
        self._size_stages: dict[frozenset[int], tuple[list[pl.Expr], list[pl.Expr]]] = {}
        sme, medium, micro = (pl.col(f"__sz:{part}") for part in SIZE_PARTS)
        is_t = lambda e: e.fill_null(False)  # noqa: E731
        is_f = lambda e: (~e).fill_null(False)  # noqa: E731
        bits = (pl.when(~is_t(sme)).then(1).otherwise(0)
                + pl.when(~is_f(sme) & ~is_f(medium)).then(2).otherwise(0)
                + pl.when(~is_f(sme) & ~is_t(medium) & ~is_t(micro)).then(4).otherwise(0)
                + pl.when(~is_f(sme) & ~is_t(medium) & ~is_f(micro)).then(8).otherwise(0))
        # every size possible says nothing: unknown (replace(), not when(== 15): the mask is then built once)
        derived = pl.when(sector_col.is_not_null()).then(bits).otherwise(None).cast(pl.UInt8).replace(ALL_SIZES, None)
        declared = pl.col("size").replace_strict(list(SIZE_BITS), list(SIZE_BITS.values()), default=None,
                                                 return_dtype=pl.UInt8)
        return pl.when(pl.col("size").is_not_null()).then(declared).otherwise(derived).alias(SIZE_COL)

    def _size_stage(self, sectors: frozenset[int]) -> tuple[list[pl.Expr], list[pl.Expr]]:
        """(each sector's three tests, each row's own sector's picked) for the sectors that occur: the other
        sectors' tests would be computed for every row and picked for none (a list of 5 industries tests
        5 of the 16 sectors)."""
        if sectors not in self._size_stages:
            if len(self._size_stages) > 64:  # a list whose chunks meet ever new mixes of sectors
                self._size_stages.clear()
            sector_col = pl.col("__sector")
            pre, picks = [], []
            for i, part in enumerate(SIZE_PARTS):
                chain = None
                for code in sorted(sectors):
                    test = self._size_tests[code][i]
                    pre.append(test)
                    cond = sector_col == code
                    then = pl.col(test.meta.output_name())
                    chain = pl.when(cond).then(then) if chain is None else chain.when(cond).then(then)
                picks.append((pl.lit(None, dtype=pl.Boolean) if chain is None else chain.otherwise(None))
                             .alias(f"__sz:{part}"))
            self._size_stages[sectors] = pre, picks
        return self._size_stages[sectors]

    def _inline(self, node: Node) -> pl.Expr:
        """A condition as one expression (for the size standard, evaluated before the rules)."""
        if isinstance(node, Compare):
            spec = self.facts[node.fact]
            return self._num_compare(node.op, pl.col(node.fact), node.value, scale_of(spec.type))
        kids = [self._inline(c) for c in node.children]
        if node.kind == "not":
            return ~kids[0]
        return pl.all_horizontal(kids) if node.kind == "all" else pl.any_horizontal(kids)

    # ------------------------------------------------------------------ amounts

    def _const(self, v: Decimal) -> _Num:
        f = float(v)
        fx = _dec_fixed(v)
        e = pl.lit(abs(f) * U)
        if fx is None:
            return _Num(pl.lit(f), e)
        n, s = fx
        wide = abs(n) > I64_LIMIT
        return _Num(pl.lit(f), e, pl.lit(n, dtype=_int(wide)), s, abs(n), lo0=v >= 0, wide=wide)

    def _ref(self, name: str, params: dict[str, Decimal]) -> _Num:
        if name in params:
            return self._const(params[name])
        spec = self.facts[name]
        col = pl.col(name)
        if name in RATIOS:
            ratio = RATIOS[name]
            given = col.cast(pl.Float64) / SCALE
            derived = ratio.num().cast(pl.Float64) * 100.0 / ratio.den().cast(pl.Float64)
            f = pl.when(col.is_not_null()).then(given).otherwise(derived)
            return _Num(f, f.abs() * (4 * U))
        s = scale_of(spec.type)
        lo0 = spec.min is not None and spec.min >= 0  # encode keeps every value within the fact's range
        # the encoded column is Int64; the bound is ROW_BOUND, and a larger value flags the row (`amb`)
        m = ROW_BOUND * 10**s
        over = col.abs() > m
        if s == 0:
            return _Num(col.cast(pl.Float64), pl.lit(0.0), col, 0, m, amb=over, lo0=lo0)
        f = col.cast(pl.Float64) / float(10**s)
        return _Num(f, f.abs() * U, col, s, m, amb=over, lo0=lo0)

    @staticmethod
    def _up(x: _Num, s: int) -> tuple[pl.Expr, int, bool]:
        """x.i scaled to s digits: (expression, bound, wide)."""
        if x.s == s:
            return x.i, x.m, x.wide
        m = x.m * 10 ** (s - x.s)
        wide = x.wide or m > I64_LIMIT
        return _widen(x.i, x.wide, wide) * pl.lit(10 ** (s - x.s), dtype=_int(wide)), m, wide

    def _formula(self, e: A.Expr, params: dict[str, Decimal]) -> _Num:
        """Float value with an error bound, and the exact Int128 form where the static bound allows.

        Each operator node is computed once into columns (`__v{k}.f/e/i/dz/amb`) in stages, like the
        condition nodes: an error bound reads its operands several times, and inline expression trees
        would grow exponentially with the formula's depth (and polars' planning time with them)."""
        if isinstance(e, A.Num):
            return self._const(e.value)
        if isinstance(e, A.Ref):
            return self._ref(e.name, params)
        key = (e, tuple(sorted((n, params[n]) for n in set(A.names(e)) if n in params)))
        hit = self._num_cols.get(key)
        if hit is not None:
            return hit
        x = self._formula_node(e, params)
        name = f"__v{len(self._num_cols)}"
        depth = x.d + 1
        level = self._num_levels.setdefault(depth, [])
        cols = {}
        for part in ("f", "e", "i", "dz", "amb"):
            expr = getattr(x, part)
            if expr is not None:
                level.append(expr.alias(f"{name}.{part}"))
                cols[part] = pl.col(f"{name}.{part}")
        out = _Num(cols["f"], cols["e"], cols.get("i"), x.s, x.m, cols.get("dz"), cols.get("amb"), depth, x.lo0,
                   x.wide)
        self._num_cols[key] = out
        return out

    def _formula_node(self, e: A.Expr, params: dict[str, Decimal]) -> _Num:
        """One operator node over its (materialised) operands; `d` is the deepest operand's stage."""
        if isinstance(e, A.Neg):
            a = self._formula(e.arg, params)
            return _Num(-a.f, a.e, None if a.i is None else -a.i, a.s, a.m, a.dz, a.amb, a.d, wide=a.wide)
        if isinstance(e, A.Bin):
            a, b = self._formula(e.left, params), self._formula(e.right, params)
            dz, amb, d = _or(a.dz, b.dz), _or(a.amb, b.amb), max(a.d, b.d)
            if e.op in "+-":
                f = a.f + b.f if e.op == "+" else a.f - b.f
                err = a.e + b.e + (a.f.abs() + b.f.abs()) * (2 * U)
                out = _Num(f, err, dz=dz, amb=amb, d=d, lo0=e.op == "+" and a.lo0 and b.lo0)
                if a.i is not None and b.i is not None:
                    s = max(a.s, b.s)
                    (ia, ma, wa), (ib, mb, wb) = self._up(a, s), self._up(b, s)
                    if ma + mb < INT_LIMIT:
                        w = wa or wb or ma + mb > I64_LIMIT
                        ia, ib = _widen(ia, wa, w), _widen(ib, wb, w)
                        out.i, out.s, out.m, out.wide = (ia + ib if e.op == "+" else ia - ib), s, ma + mb, w
                return out
            if e.op == "*":
                f = a.f * b.f
                err = a.f.abs() * b.e + b.f.abs() * a.e + a.e * b.e + f.abs() * (2 * U)
                out = _Num(f, err, dz=dz, amb=amb, d=d, lo0=a.lo0 and b.lo0)
                if a.i is not None and b.i is not None and a.m * b.m < INT_LIMIT:
                    w = a.wide or b.wide or a.m * b.m > I64_LIMIT
                    out.i, out.s, out.m = _widen(a.i, a.wide, w) * _widen(b.i, b.wide, w), a.s + b.s, a.m * b.m
                    out.wide = w
                return out
            # division: no exact fixed point; an exactly-zero divisor gives no amount, as in compute()
            zero = (b.f == 0) & (b.e == 0)
            near = (b.f.abs() <= b.e) & ~zero
            f = a.f / b.f
            err = (a.e + f.abs() * b.e) / (b.f.abs() - b.e) + f.abs() * (2 * U)
            return _Num(f, err, dz=_or(dz, zero), amb=_or(amb, near), d=d)
        assert isinstance(e, A.Call)
        args = [self._formula(x, params) for x in e.args]
        pick = pl.min_horizontal if e.fn == "min" else pl.max_horizontal
        lo0 = all(x.lo0 for x in args) if e.fn == "min" else any(x.lo0 for x in args)
        out = _Num(pick([x.f for x in args]), pl.max_horizontal([x.e for x in args]), d=max(x.d for x in args),
                   lo0=lo0)
        for x in args:
            out.dz, out.amb = _or(out.dz, x.dz), _or(out.amb, x.amb)
        if all(x.i is not None for x in args):
            s = max(x.s for x in args)
            ups = [self._up(x, s) for x in args]
            w = any(u[2] for u in ups)
            out.i, out.s, out.m = pick([_widen(u[0], u[2], w) for u in ups]), s, max(u[1] for u in ups)
            out.wide = w
        return out

    def _cents(self, value: _Num, cap: _Num | None, floor: _Num | None) -> tuple[pl.Expr, pl.Expr | None]:
        """(fen as Int64 or null, ambiguous flag or None) for value capped and floored, never below zero."""
        bounds = [(b, pick) for b, pick in ((cap, pl.min_horizontal), (floor, pl.max_horizontal)) if b is not None]
        if value.i is not None and all(b.i is not None for b, _ in bounds):
            # exact: fixed point (Int64 or Int128 by the static bound), rounded half up to the fen like
            # amounts.to_cents
            x = value
            amb = value.amb  # an input beyond ROW_BOUND
            for bound, pick in bounds:
                amb = _or(amb, bound.amb)
                t = max(x.s, bound.s)
                (a, ma, wa), (b, mb, wb) = self._up(x, t), self._up(bound, t)
                w = wa or wb
                lo0 = (x.lo0 and bound.lo0) if pick is pl.min_horizontal else (x.lo0 or bound.lo0)
                x = _Num(x.f, x.e, pick(_widen(a, wa, w), _widen(b, wb, w)), t, max(ma, mb), lo0=lo0, wide=w)
            i, s, m, w = x.i, x.s, x.m, x.wide
            if not x.lo0:  # (max is a slow kernel for Int128: skipped when the value cannot be negative)
                i = pl.max_horizontal(i, pl.lit(0, dtype=_int(w)))
            need = 2 * m + 10 ** (s - 2) if s >= 2 else m * 10 ** (2 - s)  # to_fen's largest intermediate
            cents = to_fen(_widen(i, w, w or need > I64_LIMIT), s)  # the same arithmetic on the expression
            first = first_big(s)
            if m < first:  # cannot exceed MOST_FEN
                return cents.cast(pl.Int64), amb
            # tested on i, not on the fen: the division is then computed once, for the amount itself
            big = i >= pl.lit(first, dtype=_int(w)) if first < 2**127 else pl.lit(False)
            return pl.when(big).then(None).otherwise(cents).cast(pl.Int64), _or(big, amb)
        # float path with the error bound (min/max are 1-Lipschitz: the bound is the larger one)
        f, e = value.f, value.e
        amb = value.amb
        for bound, pick in bounds:
            use = pl.lit(True) if bound.dz is None else ~bound.dz
            f = pl.when(use).then(pick(f, bound.f)).otherwise(f)
            e = pl.when(use).then(pl.max_horizontal(e, bound.e)).otherwise(e)
            amb = _or(amb, bound.amb)
        f = pl.max_horizontal(f, pl.lit(0.0))
        y = f * 100.0
        ey = e * 100.0 + (y.abs() + 1.0) * (8 * U)
        lo, hi = (y - ey + 0.5).floor(), (y + ey + 0.5).floor()
        float_amb = (lo != hi) | ~y.is_finite() | (y.abs() > 9e15)
        cents = pl.when(float_amb).then(None).otherwise(lo.cast(pl.Int64, strict=False))
        amb = _or(amb, float_amb)
        if value.dz is not None:
            cents = pl.when(value.dz).then(None).otherwise(cents)
            amb = amb & ~value.dz
        return cents, amb

    def _null(self, name: str) -> pl.Expr:
        """The fact's null flag as a column of its own, computed with the leaves: a stage after them reads
        only Boolean columns, which is what lets run_patterns evaluate those stages once per pattern."""
        self._null_facts[name] = None
        return pl.col(f"__null:{name}")

    def _known(self, name: str, params: dict[str, Decimal]) -> tuple[pl.Expr, list[Candidate]]:
        """(formula name is known, its candidates when not) as compute_amount sees the env."""
        if name in params:
            return pl.lit(True), []
        if name in RATIOS:
            known = ~self._null(name) | pl.col(f"__known:{name}")
            return known, self._needs(name, ~known)
        return ~self._null(name), [Candidate(name, self._null(name))]

    def _amount(self, rule: CompiledRule, outcome: pl.Expr) -> AmountPlan:
        amt = rule.amount
        params = amt.params
        not_ineligible = outcome.fill_null(True)
        prev_false = pl.lit(True)
        cents = None
        amb = None
        cands: list[Candidate] = []
        extras = [x for x in (amt.cap, amt.floor) if x is not None]
        cap = self._formula(amt.cap, params) if amt.cap is not None else None
        floor = self._formula(amt.floor, params) if amt.floor is not None else None
        for cond, expr in amt.cases:
            if cond is None:
                chosen, undet = prev_false, None
                prev_false = pl.lit(False)
            else:
                o = self.node(cond)
                chosen = prev_false & o.fill_null(False)
                undet = prev_false & o.is_null()
                cands += self._candidates(cond, self._flag(not_ineligible & undet, 1), 1)
                prev_false = prev_false & (~o).fill_null(False)
            names = A.names(expr)
            for x in extras:
                names += A.names(x)
            all_known = pl.lit(True)
            used: list[Candidate] = []
            for n in names:
                k, c = self._known(n, params)
                all_known = all_known & k
                used += c
            sel = self._flag(not_ineligible & chosen, 1)
            cands += [Candidate(c.fact, sel & c.active) for c in used]
            value = self._formula(expr, params)
            c_k, a_k = self._cents(value, cap, floor)
            take = sel & all_known
            cents = pl.when(take).then(c_k) if cents is None else cents.when(take).then(c_k)
            if a_k is not None:
                a_k = take & a_k
                amb = a_k if amb is None else amb | a_k
            if cond is None:
                break
        cents_expr = cents.otherwise(None) if cents is not None else pl.lit(None, dtype=pl.Int64)
        return AmountPlan(cents_expr.cast(pl.Int64), None if amb is None else amb.fill_null(False), cands)

    # ------------------------------------------------------------------ plans

    def _plan(self, rule: CompiledRule, index: int) -> RulePlan:
        outcome = self.node(rule.condition)
        cands = self._candidates(rule.condition, pl.lit(True))
        amount = self._amount(rule, outcome) if rule.amount else None
        win, in_effect = window(rule, self.on)
        weight = float(rule_weight(rule.spec.kind, win))
        return RulePlan(rule, index, outcome, cands, amount, weight, in_effect, win)

    def _score_facts(self) -> list[str]:
        seen: set[str] = set()
        for p in self.plans:
            seen |= {c.fact for c in p.candidates}
            if p.amount:
                seen |= {c.fact for c in p.amount.candidates}
        return [f for f in self.facts if f in seen]  # dictionary order: the tie-break

    # ------------------------------------------------------------------ running

    def prepare(self, enc: pl.DataFrame) -> pl.DataFrame:
        """Add every fact column the program reads (all-null when absent), typed as encoded."""
        have = set(enc.columns)
        missing = [pl.lit(None, dtype=dtype_of(self.facts[f].type)).alias(f)
                   for f in self.input_facts if f not in have]
        return enc.with_columns(missing) if missing else enc

    def derive(self, enc: pl.DataFrame) -> pl.DataFrame:
        """prepare() plus the derived columns (size mask, what size and the ratios need). They do not
        depend on the rules, so batch.chunk computes them once per chunk for all its programs."""
        return self._derived(self.prepare(enc).lazy()).collect(**PLAIN_COLLECT)

    def _derivation_exprs(self) -> list[pl.Expr]:
        """derivations.yaml as columns: an answered fact wins; else the condition's outcome where it
        decides (only false for `decides: no`), as derived.derive() does for one company."""
        have = set(self.input_facts)
        out = []
        for d in derivations(self.facts):
            if d.fact not in have:
                continue
            cond = self._inline(d.when)
            adopted = pl.when(cond == False).then(False) if d.decides == "no" else cond  # noqa: E712
            if d.decides == "no":
                adopted = adopted.otherwise(None)
            out.append(pl.when(pl.col(d.fact).is_null()).then(adopted).otherwise(pl.col(d.fact)).alias(d.fact))
        return out

    def _derived(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        derived_facts = self._derivation_exprs()
        if derived_facts:
            lf = lf.with_columns(derived_facts)
        frame = lf.with_columns(self._sector_expr).collect(**PLAIN_COLLECT)
        sectors = frozenset(frame["__sector"].drop_nulls().unique().to_list())
        pre, pick = self._size_stage(sectors)
        lf = frame.lazy().with_columns(pre).with_columns(pick)  # pick: a stage of its own (the mask reads it)
        return lf.with_columns(self.size_masks, *self._need_exprs()).drop(
            _names({0: [self._sector_expr, *pre], 1: pick}))

    def run(self, enc: pl.DataFrame, derived: bool = False, masks: bool = True) -> pl.DataFrame:
        """Per rule i: `s{i}` status code (0 ineligible, 1 eligible, 2 undetermined), `a{i}` fen,
        `x{i}` ambiguous amount, `m{i}_{w}` / `q{i}_{w}` bit masks of the missing / amount-missing
        candidates. Stages: every node is a column, computed once (the stages are one lazy query
        collected without optimisations: as eager calls, but ~30 % cheaper on the wide frames).
        derived: enc is already derive()'s output (of this or any program of the same rule set and date).
        masks=False: no `m`/`q` masks (nor the row flags only they read) — what facts to collect and the
        long form's missing facts are made from; a third of the work of a wide program."""
        lf = self.prepare(enc).lazy()
        if not derived:
            lf = self._derived(lf)
        lf = lf.with_columns(self._leaf_stage)
        for depth in sorted(self._group_levels):
            lf = lf.with_columns(self._group_levels[depth])
        for depth in sorted(self._num_levels):
            lf = lf.with_columns(self._num_levels[depth])
        flag_levels = self._flag_levels if masks else self._out_flag_levels
        for depth in sorted(flag_levels):
            lf = lf.with_columns(flag_levels[depth])
        lf = lf.with_columns(self._outs).drop(_names(self._num_levels))
        if masks:
            lf = lf.with_columns(self._mask_exprs)
        return lf.drop(_names(flag_levels)).collect(**PLAIN_COLLECT)

    def _split_stages(self) -> None:
        """Which stages run_patterns evaluates once per pattern and which once per row.

        The condition nodes, the row flags, the masks and the statuses read only Boolean columns: the
        leaves, the null flags and the derived `__need:`/`__known:` flags (checked here: a stage that read
        a value would make a pattern's rows differ). Rows with the same values in those columns get the
        same statuses and masks. The amounts read the facts' values and stay per row."""
        self._status_outs = [e for e in self._outs if e.meta.output_name()[:1] == "s"]
        self._amount_outs = [e for e in self._outs if e.meta.output_name()[:1] != "s"]
        made = set(_names(self._group_levels)) | set(_names(self._flag_levels))
        staged = [e for levels in (self._group_levels, self._flag_levels) for level in levels.values() for e in level]
        inputs: dict[str, None] = {}
        for e in [*staged, *self._mask_exprs, *self._status_outs]:
            inputs.update((r, None) for r in e.meta.root_names() if r not in made)
        inputs.update((f"__null:{f}", None) for f in {r.fallback for r in RATIOS.values()})
        leaves = set(_names({0: self._leaf_stage}))
        odd = [r for r in inputs if r not in leaves and not r.startswith(("__need:", "__known:"))]
        if odd:
            raise RuntimeError(f"columnar: a condition stage reads {odd}, which is not a Boolean flag")
        self._pattern_inputs = list(inputs)
        self._made = made
        self._amount_reads = [r for r in dict.fromkeys(n for e in self._amount_outs for n in e.meta.root_names())
                              if r in made]  # row flags (amount cases) the amounts read
        self._leaf_roots = [(e, frozenset(e.meta.root_names())) for e in self._leaf_stage]
        num = {e.meta.output_name(): e for level in self._num_levels.values() for e in level}

        def reads(e: pl.Expr) -> tuple[set[str], set[str]]:  # (columns read, through formula columns), formula columns
            cols, nums, todo = set(), set(), list(e.meta.root_names())
            while todo:
                r = todo.pop()
                if r in num:
                    if r not in nums:
                        nums.add(r)
                        todo += num[r].meta.root_names()
                else:
                    cols.add(r)
            return cols, nums

        self._amount_roots = [(e, frozenset(cols), frozenset(nums)) for e in self._amount_outs
                              for cols, nums in [reads(e)]]

    def run_patterns(self, enc: pl.DataFrame, derived: bool = False, masks: bool = True) -> "PatternRun":
        """run() for the summary, with the condition stages evaluated once per distinct pattern of the
        Boolean columns they read (a few thousand in 200,000 rows of a real list) instead of once per row.

        What reads only columns that are empty in every row of this frame (facts the list does not have)
        is the same in every row: such leaves, and amounts whose inputs are all empty, are computed per
        pattern too. `patterns`: one row per pattern with the status columns, the masks (masks=True) and
        the facts' columns (as in run(); for facts_to_collect's null tests); `group`: each row's pattern;
        `rows`: per row, the amount columns (`a`, `x`) and the statuses of the rules with an amount."""
        frame = self.prepare(enc) if derived else self.derive(enc)
        n = frame.height
        empty = {c for c in frame.columns if frame[c].null_count() == n}
        # a leaf over one text column (an option, a place) is a function of that column's value: the column
        # joins the pattern key and the leaf is computed per pattern (string lookups per row cost more)
        texts = {c for c, t in frame.schema.items() if t == pl.String} - empty
        keyed = [(e, roots) for e, roots in self._leaf_roots if len(roots) == 1 and roots <= texts]
        by_pattern_leaves = [e for e, roots in self._leaf_roots if roots <= empty] + [e for e, _ in keyed]
        key_texts = sorted(set().union(*(roots for _, roots in keyed))) if keyed else []
        per_leaf = {e.meta.output_name() for e in by_pattern_leaves}
        per_row = [e for e, roots in self._leaf_roots if e.meta.output_name() not in per_leaf]
        base = frame.lazy().with_columns(per_row).collect(**PLAIN_COLLECT) if per_row else frame
        group, first = _patterns(base, [c for c in self._pattern_inputs if c in base.columns
                                        and not _constant(base[c])], key_texts)
        known = {*self._pattern_inputs, *self._made, *empty, *per_leaf, *key_texts}  # equal within a pattern
        by_pattern = [e for e, roots, _ in self._amount_roots if roots <= known]  # nothing that varies in a pattern
        by_row = [(e, nums, roots) for e, roots, nums in self._amount_roots if not roots <= known]
        lf = base[first].lazy().with_columns(by_pattern_leaves)
        for depth in sorted(self._group_levels):
            lf = lf.with_columns(self._group_levels[depth])
        flag_levels = self._flag_levels if masks else self._out_flag_levels
        for depth in sorted(flag_levels):
            lf = lf.with_columns(flag_levels[depth])
        lf = lf.with_columns(self._status_outs)
        if masks:
            lf = lf.with_columns(self._mask_exprs)
        if by_pattern:
            for depth in sorted(self._num_levels):
                lf = lf.with_columns(self._num_levels[depth])
            lf = lf.with_columns(by_pattern)
        keep = set(self._amount_reads) | set(_names({0: by_pattern}))
        temporary = [*_names(flag_levels), *(_names(self._num_levels) if by_pattern else ())]
        patterns = lf.drop([c for c in temporary if c not in keep]).collect(**PLAIN_COLLECT)
        statuses = [f"s{p.index}" for p in self.plans if p.amount is not None]
        by_row = self._live_amounts(by_row, patterns)
        read = set().union(*(roots for _, _, roots in by_row)) if by_row else set()
        back = patterns.select(*(r for r in self._amount_reads if r in read), *statuses, *_names({0: by_pattern}))
        flags = [c for c, t in back.schema.items() if t == pl.Boolean]
        if flags:  # gathered as bytes: polars gathers Boolean bit by bit (3-4x the time of UInt8 and a cast)
            back = back.with_columns(pl.col(flags).cast(pl.UInt8))
        back = back.gather(group) if back.width else back
        lf = pl.concat([base.drop(back.columns, strict=False), back], how="horizontal").lazy() if back.width \
            else base.lazy()
        if flags:
            lf = lf.with_columns(pl.col(flags).cast(pl.Boolean))
        needed = set().union(*(nums for _, nums, _ in by_row)) if by_row else set()
        same = [e for e in by_pattern_leaves if e.meta.output_name() in read]
        if same:  # computed per pattern above, and here for the amounts that read them
            lf = lf.with_columns(same)
        for depth in sorted(self._num_levels):
            level = [e for e in self._num_levels[depth] if e.meta.output_name() in needed]
            if level:
                lf = lf.with_columns(level)
        outs = [*statuses, *(e.meta.output_name() for e in self._amount_outs)]
        rows = lf.with_columns(e for e, _, _ in by_row).select(outs).collect(**PLAIN_COLLECT) if outs else \
            pl.DataFrame({"__row": pl.Series(np.zeros(n, dtype=np.int8))})  # no amounts: the rows' count
        return PatternRun(patterns.drop(keep), group, rows)

    def _live_amounts(self, by_row: list[tuple[pl.Expr, frozenset, frozenset]],
                      patterns: pl.DataFrame) -> list[tuple[pl.Expr, frozenset, frozenset]]:
        """The per-row amounts, with those of rules ineligible in every pattern as constants: an amount is
        null where its rule is ineligible (_amount gates every case on it), and never ambiguous."""
        dead = {p.index for p in self.plans if p.amount is not None
                and patterns[f"s{p.index}"].eq(0).all()} if patterns.height else set()
        if not dead:
            return by_row
        out = []
        for e, nums, roots in by_row:
            name = e.meta.output_name()
            if int(name[1:]) in dead:
                lit = pl.lit(None, dtype=pl.Int64) if name[0] == "a" else pl.lit(False)
                out.append((lit.alias(name), frozenset(), frozenset()))
            else:
                out.append((e, nums, roots))
        return out

    def _out_exprs(self) -> list[pl.Expr]:
        outs = []
        for p in self.plans:
            o = p.outcome
            outs.append(pl.when(o).then(1).when(~o).then(0).otherwise(2).cast(pl.Int8).alias(f"s{p.index}"))
            if p.amount is not None:
                outs.append(p.amount.cents.alias(f"a{p.index}"))
                if p.amount.ambiguous is not None:
                    outs.append(p.amount.ambiguous.alias(f"x{p.index}"))
        return outs

    def ambiguous(self, res: pl.DataFrame) -> list[tuple[int, int]]:
        """(row position, rule index) pairs whose amount must be recomputed exactly."""
        have = set(res.columns)
        cols = [f"x{p.index}" for p in self.plans if f"x{p.index}" in have]
        out = []
        if not cols:
            return out
        any_amb = res.select(pl.any_horizontal(cols)).to_series()
        rows = np.flatnonzero(any_amb.fill_null(False).to_numpy())
        if len(rows) == 0:
            return out
        sub = res[rows.tolist(), cols]
        for c in cols:
            hits = np.flatnonzero(sub[c].fill_null(False).to_numpy())
            out += [(int(rows[h]), int(c[1:])) for h in hits]
        return sorted(out)

    # ------------------------------------------------------------------ summary

    def money_once(self) -> list[int]:
        """The rules whose amounts the totals may count: money, one-off."""
        return [p.index for p in self.plans if p.amount is not None and p.rule.spec.kind == "money"
                and p.rule.spec.amount.per == "once"]

    def paying(self, res: pl.DataFrame) -> frozenset[int]:
        """Of money_once(), the rules eligible with an amount in some row of res (the others count
        nowhere: the totals need not read them)."""
        idx = [i for i in self.money_once() if f"s{i}" in res.columns]
        if not idx or res.height == 0:
            return frozenset()
        hit = res.select(((pl.col(f"s{i}") == 1) & pl.col(f"a{i}").is_not_null()).any() for i in idx).row(0)
        return frozenset(i for i, h in zip(idx, hit) if h)

    def counted(self, live: frozenset[int] | None = None
                ) -> tuple[list[list[pl.Expr]], dict[int, pl.Expr], dict[int, pl.Expr]]:
        """Which amounts are counted, as evaluate._count_once: money rules with a one-off amount that are
        eligible with an amount; within a counted-once group, those a paying member supersedes are out,
        then the largest amount, then exact before up_to, then the smaller id. Returns (stages, every,
        open_only): the stages make the flag columns (apply them in order with with_columns), every maps
        a rule index to its flag column, open_only the same among the rules in effect on the date (for
        total_in_effect). Staged, not inline: a group's members read each other's flags, and inline
        expressions would repeat them (polars plans each copy). live: only these rules can pay (see
        paying()); the others are left out, as a rule that pays nowhere counts nowhere."""
        money = [self.plans_by_index[i] for i in self.money_once() if live is None or i in live]
        pay = [((pl.col(f"s{p.index}") == 1) & pl.col(f"a{p.index}").is_not_null()).alias(f"__pay{p.index}")
               for p in money]
        stages: list[list[pl.Expr]] = [pay, [], [], [], []]
        by_id = {p.rule.id: p.index for p in self.plans}
        superseders = self.rules.superseded_by

        def chosen(tag: str, members_of: set[int]) -> dict[int, pl.Expr]:
            paying = {i: pl.col(f"__pay{i}") for i in members_of}
            out = dict(paying)
            for g, group in enumerate(self.groups):
                members = [by_id[i] for i in group if by_id.get(i) in paying]
                cand = {}
                for i in members:
                    over = [paying[by_id[s]] for s in superseders.get(self.rules.rules[i].id, ())
                            if by_id.get(s) in members]
                    if over:
                        stages[1].append((paying[i] & ~pl.any_horizontal(over)).alias(f"__cand{tag}{i}"))
                        cand[i] = pl.col(f"__cand{tag}{i}")
                    else:
                        cand[i] = paying[i]
                if len(members) < 2:
                    out.update(cand)
                    continue
                # the candidate with the largest amount, ties to the first in tie_key order: the largest
                # amount once, then each candidate that has it, then the first of those (not every pair)
                best = f"__best{tag}{g}"
                none = pl.lit(-1, dtype=pl.Int64)  # below every amount; no nulls: polars' max is slow with them
                stages[2].append(pl.max_horizontal([pl.when(cand[i]).then(pl.col(f"a{i}")).otherwise(none)
                                                    for i in members]).alias(best))
                stages[3] += [(cand[i] & (pl.col(f"a{i}") == pl.col(best))).alias(f"__eq{tag}{i}") for i in members]
                order = sorted(members, key=lambda i: tie_key(self.rules.rules[i].spec.amount.kind,
                                                              self.rules.rules[i].spec.id))
                for k, i in enumerate(order):
                    eq = pl.col(f"__eq{tag}{i}")
                    earlier = [pl.col(f"__eq{tag}{j}") for j in order[:k]]
                    stages[4].append((eq & ~pl.any_horizontal(earlier) if earlier else eq).alias(f"__k{tag}{i}"))
                    out[i] = pl.col(f"__k{tag}{i}")
            return out

        every = chosen("", {p.index for p in money})
        in_effect = {p.index for p in money if p.in_effect}
        # every paying rule in effect on the date: the same flags, not a second copy of their columns
        open_only = every if len(in_effect) == len(money) else chosen("o", in_effect)
        return [st for st in stages if st], every, open_only

    def summary_exprs(self, live: frozenset[int] | None = None) -> list[list[pl.Expr]]:
        """The totals as stages (apply in order with with_columns; built once per program and set of
        paying rules); the counts are status_summary()'s."""
        got = self._summary.get(live)
        if got is None:
            if len(self._summary) > 64:  # a list whose chunks pay in ever new combinations
                self._summary = {None: self._summary[None]}
            got = self._summary[live] = self._summary_exprs(live)
        return got

    def _summary_exprs(self, live: frozenset[int] | None = None) -> list[list[pl.Expr]]:
        zero = pl.lit(0, dtype=pl.Int64)
        stages, every, open_only = self.counted(live)

        def total(counted: dict[int, pl.Expr], exact: bool) -> pl.Expr:
            parts = [pl.when(c).then(pl.col(f"a{i}")).otherwise(zero) for i, c in counted.items()
                     if (self.rules.rules[i].spec.amount.kind == "exact") == exact]
            return pl.sum_horizontal([zero, *parts]).cast(pl.Int64)  # flat, not a 100-deep chain of +

        return [*stages, [total(every, True).alias("__total"), total(open_only, True).alias("__total_open"),
                          total(every, False).alias("__total_up_to")]]

    def status_summary(self, res: pl.DataFrame) -> tuple[pl.Series, pl.Series, pl.Series]:
        """n_eligible, n_undetermined and the eligible rule ids (';'-joined in rule order) per row, from
        the status columns stacked once in numpy; rows are packed into bit words and each distinct
        set of ids is spelled once."""
        n = res.height
        if not self.plans:
            zeros = np.zeros(n, dtype=np.int32)
            return (pl.Series("n_eligible", zeros), pl.Series("n_undetermined", zeros),
                    pl.Series("eligible", [""] * n, dtype=pl.String))
        status = np.stack([res[f"s{p.index}"].to_numpy() for p in self.plans])
        eligible = status == 1
        counts = (pl.Series("n_eligible", eligible.sum(axis=0, dtype=np.int32)),
                  pl.Series("n_undetermined", (status == 2).sum(axis=0, dtype=np.int32)))
        words = {}
        for w in range(0, len(self.plans), 63):
            acc = np.zeros(n, dtype=np.int64)
            for k, row in enumerate(eligible[w:w + 63]):
                acc |= row.astype(np.int64) << k
            words[f"w{w // 63}"] = acc
        keys = pl.DataFrame(words)
        uniq = keys.unique(maintain_order=True)
        spelled = []
        for rec in uniq.iter_rows():
            ids = [self.plans[w * 63 + k].rule.id for w, word in enumerate(rec) for k in range(63) if word >> k & 1]
            spelled.append(";".join(ids))
        table = uniq.with_columns(pl.Series("eligible", spelled, dtype=pl.String))
        return *counts, keys.join(table, on=list(words), how="left", maintain_order="left")["eligible"]

    @property
    def score_unit(self) -> int:
        """Scores are exact: each share w/len is held as the integer 2·w·L/len with L = lcm(1..max len)."""
        if getattr(self, "_unit", None) is None:
            longest = 1
            for p in self.plans:
                for cands in (p.candidates, p.amount.candidates if p.amount else []):
                    longest = max(longest, len({c.fact for c in cands}))
            self._unit = math.lcm(*range(1, longest + 1))
        return self._unit

    def _score_parts(self) -> list[tuple]:
        """Per rule: (rule index, mask prefix, gate, 2·weight, candidates, per-fact bits, lookup tables)."""
        if getattr(self, "_parts", None) is not None:
            return self._parts
        unit = self.score_unit
        fallback = {r.fallback for r in RATIOS.values()}
        parts = []
        for p in self.plans:
            kind, win = p.rule.spec.kind, p.window
            for cands, prefix, gate, w2 in ((p.candidates, "m", 2, scaled(kind, win, False)),
                                            (p.amount.candidates if p.amount else [], "q", 0, scaled(kind, win, True))):
                if not cands:
                    continue
                bits: dict[str, list[int]] = {}
                words = (len(cands) + 62) // 63
                for k, c in enumerate(cands):
                    word = bits.setdefault(c.fact, [0] * words)
                    word[k // 63] |= 1 << (k % 63)
                tables = None
                if len(cands) <= 14:  # a table per fact indexed by the mask: one gather per row
                    masks = np.arange(1 << len(cands), dtype=np.int64)
                    present = {f: (masks & b[0]) != 0 for f, b in bits.items()}
                    count = np.sum(list(present.values()), axis=0)
                    share = np.zeros(len(masks), dtype=np.int64)
                    np.floor_divide(w2 * unit, count, out=share, where=count > 0)
                    tables = {f: np.where(hit, share, 0) for f, hit in present.items()}
                    if unit * 2 * MAX_SCALED * max(len(self.plans), 1) < 2**31:
                        tables = {f: t.astype(np.int32) for f, t in tables.items()}
                parts.append((p.index, prefix, gate, w2, cands, bits, tables, fallback & set(bits)))
        self._parts = parts
        return parts

    def facts_to_collect(self, res: pl.DataFrame) -> pl.Series:
        """top_facts(scores(...)) per row, computed once per distinct pattern of missing-fact masks.

        A row's scores depend only on its `m`/`q` masks and on whether the ratio fallback facts are
        null: a mask bit is set only where the rule's gate holds (m: undetermined, q: not ineligible),
        so equal masks give equal scores. Far fewer patterns than rows in real lists (~1 in 5)."""
        parts = self._score_parts()
        if res.height == 0 or not parts:  # no scores to rank
            return self.top_facts({}, res.height)
        mq = list(dict.fromkeys(f"{prefix}{index}_{w}" for index, prefix, _, _, cands, *_ in parts
                                for w in range((len(cands) + 62) // 63)))
        nulls = sorted({f for *_, maybe_known in parts for f in maybe_known})
        keys = self._packed_keys(res, nulls)
        groups = keys.with_row_index("__i").group_by(keys.columns).agg(pl.col("__i"))
        status = list(dict.fromkeys(f"s{index}" for index, *_ in parts))
        reps = res.select(*status, *mq, *(pl.col(f).is_null().alias(f"__null:{f}") for f in nulls)).gather(
            groups["__i"].list.first())
        top = self.top_facts(self.scores(reps), reps.height)
        spread = pl.DataFrame({"__i": groups["__i"], "facts_to_collect": top}).explode("__i").sort("__i")
        return spread["facts_to_collect"]

    def _packed_keys(self, res: pl.DataFrame, nulls: list[str]) -> pl.DataFrame:
        """The rows' `m`/`q` masks and null flags packed side by side into 64-bit words (a mask of k
        candidates holds values below 2^k): the same patterns, grouped over ~20 columns instead of ~300."""
        layout = getattr(self, "_key_layout", None)
        if layout is None:
            fields = list(dict.fromkeys((f"{prefix}{index}_{w}", min(63, len(cands) - 63 * w))
                                        for index, prefix, _, _, cands, *_ in self._score_parts()
                                        for w in range((len(cands) + 62) // 63)))
            layout, off = [[]], 0
            for name, bits in fields:
                if off + bits > 64:
                    layout.append([])
                    off = 0
                layout[-1].append((name, off))
                off += bits
            self._key_layout = layout
        words = {}
        for k, word in enumerate(layout):
            acc = np.zeros(res.height, dtype=np.uint64)
            for name, off in word:
                col = res[name]
                acc |= (col if not col.null_count() else col.fill_null(0)).to_numpy().astype(np.uint64) << np.uint64(off)
            words[f"w{k}"] = acc
        for f in nulls:
            words[f"__null:{f}"] = res[f].is_null().to_numpy()
        return pl.DataFrame(words)

    def scores(self, res: pl.DataFrame) -> dict[str, np.ndarray]:
        """Per fact (score_facts), per row, the questionnaire's score (questions.py with the first
        questions; batch.collect_facts is the same for one report): w/len over undetermined rules whose
        `missing` names the fact, half that over amounts waiting on it; facts already known are skipped.
        Exact integers (score_unit), so ties are ties."""
        n = res.height
        unit = self.score_unit
        small = unit * 2 * MAX_SCALED * max(len(self.plans), 1) < 2**31  # int32 when no sum can overflow it
        acc: dict[str, np.ndarray] = {}
        status = {}
        for index, prefix, gate, w2, cands, bits, tables, maybe_known in self._score_parts():
            st = status.get(index)
            if st is None:
                st = status[index] = res[f"s{index}"].to_numpy()
            open_rows = (st == 2) if gate == 2 else (st != 0)
            if not open_rows.any():
                continue
            words = [res[f"{prefix}{index}_{k}"].to_numpy() for k in range((len(cands) + 62) // 63)]
            if tables is not None:
                mask = np.where(open_rows, words[0], 0).astype(np.intp, copy=False)
                for f, table in tables.items():
                    add = table[mask]
                    if f in maybe_known:
                        add = np.where(res[f"__null:{f}"].to_numpy(), add, 0)
                    target = acc.get(f)
                    acc[f] = add if target is None else np.add(target, add, out=target)
                continue
            present = []
            count = np.zeros(n, dtype=np.int64)
            for f, fb in bits.items():
                hit = None
                for word, b in zip(words, fb):
                    if b:
                        h = (word & b) != 0
                        hit = h if hit is None else hit | h
                present.append((f, hit))
                count += hit
            share = np.zeros(n, dtype=np.int64)
            np.floor_divide(w2 * unit, count, out=share, where=count > 0)
            if small:
                share = share.astype(np.int32)
            for f, hit in present:
                sel = open_rows & hit
                if f in maybe_known:
                    sel &= res[f"__null:{f}"].to_numpy()
                add = np.where(sel, share, 0)
                target = acc.get(f)
                acc[f] = add if target is None else np.add(target, add, out=target)
        return acc

    def top_facts(self, scores: dict[str, np.ndarray], n: int, k: int = TOP_FACTS) -> pl.Series:
        """The k best facts per row: highest score, ties by the fact dictionary's order (a running
        top-k over the facts in that order: a later fact must beat, not tie, to enter)."""
        best_s = np.zeros((k, n), dtype=np.int64)
        best_i = np.full((k, n), -1, dtype=np.int32)
        for j, f in enumerate(self.score_facts):
            s = scores.get(f)
            if s is None:
                continue
            rows = np.flatnonzero(s > best_s[k - 1])
            if len(rows) == 0:
                continue
            v = s[rows]
            pos = (best_s[:, rows] >= v).sum(axis=0)  # entries that stay ahead of the new one
            for slot in range(k - 1, 0, -1):
                move = pos < slot
                src = best_s[slot - 1, rows]
                best_s[slot, rows] = np.where(move, src, best_s[slot, rows])
                best_i[slot, rows] = np.where(move, best_i[slot - 1, rows], best_i[slot, rows])
            for slot in range(k):
                hit = pos == slot
                best_s[slot, rows[hit]] = v[hit]
                best_i[slot, rows[hit]] = j
        names = pl.Series(self.score_facts, dtype=pl.String)
        codes = pl.Series(range(len(self.score_facts)), dtype=pl.Int32)
        frame = pl.DataFrame({f"p{i}": best_i[i] for i in range(k)})
        named = [pl.col(f"p{i}").replace_strict(codes, names, default=None, return_dtype=pl.String)
                 for i in range(k)]
        return frame.select(pl.concat_str(named, separator=";", ignore_nulls=True)
                            .alias("facts_to_collect")).to_series()

    # ------------------------------------------------------------------ long form

    def mask_exprs(self) -> list[pl.Expr]:
        """Bit masks of active candidates per rule (`m{i}_{w}` missing, `q{i}_{w}` amount missing)."""
        out = []
        for p in self.plans:
            out += _mask_exprs(p.candidates, f"m{p.index}")
            if p.amount is not None:
                out += _mask_exprs(p.amount.candidates, f"q{p.index}")
        return out


# how run() and derive() collect their stage queries: the in-memory engine, no query optimisation
# (the stages are already minimal; type coercion and checks stay on), as eager calls are made
PLAIN_COLLECT = {"engine": "in-memory", "optimizations": pl.QueryOptFlags.none()}

MOST_FEN = 9 * 10**18  # amounts beyond this many fen (near Int64's limit) are left to the Decimal code


def to_fen(i, s: int):
    """A non-negative fixed-point amount i·10^-s yuan in fen, rounded half up (as amounts.to_cents);
    i is an int or an Int128 polars expression (the batch's amounts)."""
    if s >= 2:
        d = 10 ** (s - 2)
        return (i * 2 + d) // (2 * d)
    return i * 10 ** (2 - s)


def first_big(s: int) -> int:
    """The least i ≥ 0 with to_fen(i, s) > MOST_FEN (to_fen grows with i, so i ≥ this is the test)."""
    if s >= 2:
        d = 10 ** (s - 2)
        return (d * (2 * MOST_FEN + 1) + 1) // 2
    return MOST_FEN // 10 ** (2 - s) + 1


def _names(levels: dict[int, list[pl.Expr]]) -> list[str]:
    """The columns a set of staged expressions creates (temporary ones are dropped after use)."""
    return [e.meta.output_name() for level in levels.values() for e in level]


def _mask_exprs(cands: list[Candidate], prefix: str) -> list[pl.Expr]:
    out = []
    for w in range(0, len(cands), 63):
        chunk = cands[w:w + 63]
        dtype = pl.Int16 if len(chunk) <= 15 else pl.Int32 if len(chunk) <= 31 else pl.Int64
        zero = pl.lit(0, dtype=dtype)  # when/then: one kernel per bit (fill_null, cast and * were three)
        bits = [pl.when(c.active).then(pl.lit(1 << k, dtype=dtype)).otherwise(zero) for k, c in enumerate(chunk)]
        out.append(pl.sum_horizontal(bits).alias(f"{prefix}_{w // 63}") if bits else pl.lit(0).alias(
            f"{prefix}_{w // 63}"))
    return out


def decode_mask(cands: list[Candidate], words: list[int]) -> list[str]:
    """Active candidates -> fact names, first occurrence kept (dict.fromkeys in evaluate_node)."""
    names: dict[str, None] = {}
    for w, word in enumerate(words):
        k = 0
        while word:
            if word & 1:
                names[cands[w * 63 + k].fact] = None
            word >>= 1
            k += 1
    return list(names)


@dataclass
class PatternRun:
    """Program.run_patterns' result: per pattern, each row's pattern, per row (see there)."""

    patterns: pl.DataFrame
    group: pl.Series  # UInt32: row -> pattern (gather the patterns' columns with it)
    rows: pl.DataFrame

    def per_row(self, s: pl.Series) -> pl.Series:
        """A per-pattern series spread back to the rows."""
        return s.gather(self.group)


def _constant(s: pl.Series) -> bool:
    """A Boolean column with one value (or all null) in every row: it cannot tell patterns apart."""
    nulls = s.null_count()
    if nulls == len(s):
        return True
    if nulls:
        return False
    true = s.sum()
    return true == 0 or true == len(s)


def _patterns(frame: pl.DataFrame, key: list[str], texts: list[str] = ()) -> tuple[pl.Series, pl.Series]:
    """(each row's pattern, the first row of each pattern) over the Boolean columns `key`, three-valued
    (true, false, null), packed 32 to a UInt64 word, and the values of the columns `texts`; patterns in
    order of first appearance."""
    n = frame.height
    if (not key and not texts) or n == 0:
        return pl.Series("g", np.zeros(n, dtype=np.uint32)), pl.Series("i", [0] if n else [], dtype=pl.UInt32)
    words = [pl.sum_horizontal([pl.col(c).cast(pl.UInt64).fill_null(2) * pl.lit(4**j, dtype=pl.UInt64)
                                for j, c in enumerate(key[w:w + 32])]).alias(f"__w{w}") for w in range(0, len(key), 32)]
    packed = frame.lazy().select(*words, *texts).collect(**PLAIN_COLLECT)
    groups = packed.with_row_index("__i").group_by(packed.columns, maintain_order=True).agg(pl.col("__i"))
    lists = groups["__i"]
    group = np.empty(n, dtype=np.uint32)
    group[lists.explode().to_numpy()] = np.repeat(np.arange(groups.height, dtype=np.uint32),
                                                  lists.list.len().to_numpy())
    return pl.Series("g", group), lists.list.first()
