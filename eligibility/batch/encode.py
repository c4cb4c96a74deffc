"""Encoding raw cells into the columnar engine's fact columns, exactly as FactSpec.parse reads one cell.

Its own module because this is where the two engines must read the same values: plain numbers go
through polars' own parser and patterns (the fast path), every other cell through FactSpec.parse once
per distinct value (the slow path); a value the columns cannot hold exactly (more than three decimals)
marks its row `inexact`, for evaluate(). The cross-fact checks (facts.consistency) are found by masks
and worded by that function. row_values is the one-row reading the reference path uses.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Iterable

import numpy as np
import polars as pl

from ..columnar import PLAIN_COLLECT, SCALE, dtype_of, scale_of
from ..facts import NUMERIC_TYPES, FactDictionary, FactSpec, FactValueError
from .read import ERROR_SEP, READ_ERRORS

RESULT_COLUMNS = ("row", "errors", "n_eligible", "n_undetermined", "total_amount", "total_in_effect", "total_up_to",
                  "eligible", "facts_to_collect")
LONG_COLUMNS = ("row", "errors", "rule_id", "title", "status", "amount", "per", "counted_in_total", "in_effect",
                "missing", "amount_missing")


@dataclass(frozen=True)
class ColumnPlan:
    """Which input columns are facts, and what the others are called in the output."""

    fact_of: tuple[tuple[str, str], ...]  # (header, fact) in column order
    passthrough: tuple[tuple[str, str], ...]  # (header, output name)
    unknown: tuple[tuple[str, str], ...]  # (header, suggestion text) for the summary

    @classmethod
    def build(cls, columns: Iterable[str], facts: FactDictionary) -> "ColumnPlan":
        fact_of, passthrough, unknown = [], [], []
        for h in columns:
            if h == READ_ERRORS:
                continue
            f = h if h in facts else facts.column_for(h)
            if f is not None:
                fact_of.append((h, f))
                continue
            out = h if h not in RESULT_COLUMNS else f"input.{h}"
            passthrough.append((h, out))
            unknown.append((h, facts.suggest(h)))
        return cls(tuple(fact_of), tuple(passthrough), tuple(unknown))


# commas only in groups of three ("1,5" is not 15: FactSpec.parse refuses it, the slow path says so)
_INT_RE = r"^-?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)$"
_DEC_RE = r"^-?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(\.[0-9]{1,3})?$"
_PCT_RE = r"^-?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(\.[0-9]{1,3})?%?$"


def encode_value(spec: FactSpec, v: Any) -> tuple[Any, bool]:
    """A parsed value as the columnar form holds it; (None, True) when it does not fit exactly."""
    if v is None:
        return None, False
    if spec.type in NUMERIC_TYPES:
        if spec.type == "int":
            return int(v), False
        scaled = Decimal(v) * SCALE
        if scaled != scaled.to_integral_value() or abs(scaled) >= Decimal(9) * Decimal(10) ** 18:
            return None, True
        return int(scaled), False
    return v, False


@dataclass
class Parsed:
    value: pl.Series  # encoded (see columnar), null when unknown, bad or inexact
    error: pl.Series  # String: the parse message, null when fine
    present: pl.Series  # Boolean: a value was given (parsed fine and not unknown)
    inexact: pl.Series  # Boolean: given but not exactly representable -> the row goes to evaluate()
    distinct: frozenset | None = None  # the values of `value` (None among them if it has nulls), when known


def parse_column(s: pl.Series, spec: FactSpec) -> Parsed:
    """Parse one column as FactSpec.parse would parse each cell (vectorised where it is safe)."""
    if s.dtype == pl.String and len(s):
        return _parse_text_columns(pl.DataFrame({"s": s}), [("s", spec)])[0]
    n = len(s)
    dtype = dtype_of(spec.type)
    value = _const(None, n, dtype)
    error = _const(None, n, pl.String)
    inexact = _const(False, n, pl.Boolean)
    slow = s.is_not_null()
    if s.dtype == pl.Null or n == 0:
        return Parsed(value, error, _const(False, n, pl.Boolean), inexact)
    if s.dtype.is_float():
        slow = slow & ~s.is_nan()
    fast_done = None
    if spec.type in NUMERIC_TYPES:
        fast_done, fast_val = _fast_numeric(s, spec)
        if fast_done is not None:
            value = pl.select(pl.when(fast_done).then(fast_val).otherwise(value)).to_series().cast(dtype)
            slow = slow & ~fast_done
    elif spec.type == "bool" and s.dtype == pl.Boolean:
        value = s.cast(pl.Boolean)
        slow = _const(False, n, pl.Boolean)
    if slow.any():
        value, error, inexact = _slow_parse(s, slow, spec, value, error, inexact)
    present = (value.is_not_null() | inexact).alias("p")
    return Parsed(value, error, present, inexact)


def _const(v: Any, n: int, dtype: pl.DataType) -> pl.Series:
    return pl.select(pl.repeat(v, n, dtype=dtype)).to_series()


def _fast_numeric(s: pl.Series, spec: FactSpec) -> tuple[pl.Series | None, pl.Series | None]:
    """Plain numbers without Python: (mask of cells done, encoded values)."""
    scale = scale_of(spec.type)
    lo = None if spec.min is None else spec.min * 10**scale
    hi = None if spec.max is None else spec.max * 10**scale
    if s.dtype.is_integer():
        big = pl.col("s").cast(pl.Int128)
        out = pl.DataFrame({"s": s}).select(
            (big.abs() <= pl.lit(10**15, dtype=pl.Int128)).fill_null(False).alias("ok"),
            (big * pl.lit(10**scale, dtype=pl.Int128)).cast(pl.Int64, strict=False).alias("v"))
        ok_s, val_s = out["ok"], out["v"]
    elif s.dtype.is_float():
        if scale == 0:
            return None, None
        k = (s * SCALE).round(0)
        ok_s = ((k / SCALE) == s) & (s.abs() < 1e12)
        ok_s = ok_s.fill_null(False) & ~s.is_nan().fill_null(False)
        val_s = k.cast(pl.Int64, strict=False)
    else:
        return None, None
    if lo is not None:
        ok_s = ok_s & (val_s >= int(lo)).fill_null(False)
    if hi is not None:
        ok_s = ok_s & (val_s <= int(hi)).fill_null(False)
    return ok_s.fill_null(False), val_s


def _fast_text_number(col: pl.Expr, spec: FactSpec) -> tuple[pl.Expr, pl.Expr]:
    """Plain numbers written as text ("1,234.5", "12%"): (matches the plain-number pattern, encoded
    value or null) as expressions; _fast_number_ok then decides from their columns."""
    scale = scale_of(spec.type)
    pattern = _INT_RE if spec.type == "int" else (_PCT_RE if spec.type == "percent" else _DEC_RE)
    body = col.str.replace_all(",", "", literal=True)
    if spec.type == "percent":
        body = body.str.strip_suffix("%")
    if scale:  # the pattern allows at most three decimals: the Decimal cast is exact
        val = body.cast(pl.Decimal(38, scale), strict=False).to_physical().cast(pl.Int64, strict=False)
    else:
        val = body.cast(pl.Int64, strict=False)
    return col.str.contains(pattern), val


def _fast_number_ok(match: pl.Expr, val: pl.Expr, spec: FactSpec) -> pl.Expr:
    """The cell is done by the fast path: a plain number, within facts.MAX_ABS and the fact's range."""
    scale = scale_of(spec.type)
    ok = match & (val.abs() < 10**15 * 10**scale)
    if spec.min is not None:
        ok = ok & (val >= int(spec.min * 10**scale))
    if spec.max is not None:
        ok = ok & (val <= int(spec.max * 10**scale))
    return ok.fill_null(False)


_PLAIN_LEN = 15  # a cell of at most 15 characters has at most 15 significant digits (see _plain_number)


def _plain_number(j: int, spec: FactSpec) -> list[pl.Expr]:
    """The first, cheapest reading of numeric text column c{j}, as stages (the last gives t{j}): polars'
    own number parser (one pass, no regex), encoded, or null where it does not settle the cell exactly.

    int: the Int64 cast accepts only what Decimal reads as the same integer ('+15', ' 15', '015').
    Decimals: the Float64 cast is correctly rounded; a cell of at most 15 characters has at most 15
    significant digits, and so has k/1000 below 10^12, and two such decimals with the same nearest
    double are equal (DBL_DIG = 15): when k = ⌊f·1000 + ½⌋ gives k/1000 == f, the cell is exactly k
    thousandths. Everything else (commas, '%', '元', more decimals, longer cells) is left to the
    pattern path."""
    col = pl.col(f"c{j}")
    if spec.type == "int":
        return [col.cast(pl.Int64, strict=False).alias(f"t{j}")]
    f = pl.col(f"f{j}")
    k = (f * SCALE + 0.5).floor()  # the nearest integer (round() costs ~3x floor); the test below decides
    # k / SCALE correctly rounded: polars divides by a scalar through its reciprocal (an ulp off for ~1 in
    # 7 values), by a column exactly
    exact = (k / (k * 0 + SCALE) == f) & (f.abs() < 1e12) & (col.str.len_bytes() <= _PLAIN_LEN)
    return [col.cast(pl.Float64, strict=False).alias(f"f{j}"), pl.when(exact).then(k.cast(pl.Int64)).alias(f"t{j}")]


def _parse_text_columns(raw: pl.DataFrame, jobs: list[tuple[str, FactSpec]]) -> list[Parsed]:
    """parse_column for many text columns in a few polars queries (polars spreads the columns over the
    cores and releases the GIL): plain numbers by polars' number parser (_plain_number), then by
    patterns in the columns where that left cells; every other cell by FactSpec.parse, once per
    distinct value, mapped back through an Enum code (not needed when every distinct cell of an option or
    text column reads as itself). Every value read more than once is a column of
    an earlier stage: collected without optimisation, polars does not share repeated sub-expressions."""
    numeric = [j for j, (_, spec) in enumerate(jobs) if spec.type in NUMERIC_TYPES]
    a = _plain_stage(raw, jobs, numeric)
    rest = set()
    if numeric:
        left = a.select((pl.col(f"c{j}").is_not_null() & pl.col(f"t{j}").is_null()).any() for j in numeric).row(0)
        rest = {j for j, x in zip(numeric, left) if x}
    stage1, stage2, slow = [], [], []
    for j, (_, spec) in enumerate(jobs):
        c = pl.col(f"c{j}")
        if j in rest:
            match, val = _fast_text_number(c, spec)
            stage1 += [match.alias(f"match{j}"), val.alias(f"v{j}")]
            stage2.append(_fast_number_ok(pl.col(f"match{j}"), pl.col(f"v{j}"), spec).alias(f"ok{j}"))
        elif j in numeric:
            stage1.append(pl.col(f"t{j}").alias(f"v{j}"))
            stage2.append(_fast_number_ok(pl.col(f"v{j}").is_not_null(), pl.col(f"v{j}"), spec).alias(f"ok{j}"))
        if j in numeric:
            slow.append((c.is_not_null() & ~pl.col(f"ok{j}")).alias(f"slow{j}"))
        else:
            slow.append(c.is_not_null().alias(f"slow{j}"))
    a = a.lazy().with_columns(stage1).with_columns(stage2).with_columns(slow).collect(**PLAIN_COLLECT)
    # in no particular order (keeping the first appearance's order costs half as much again): each cell's
    # reading does not depend on it
    uniq = a.select(pl.col(f"c{j}").filter(pl.col(f"slow{j}")).unique().implode()
                    .alias(f"u{j}") for j in range(len(jobs))).row(0)
    codes, exprs, parses = [], [], {}
    for j, (_, spec) in enumerate(jobs):
        if uniq[j]:
            parses[j] = vals, errs, inex = _parse_values(uniq[j], spec)
            if spec.type in ("enum", "text") and errs.count(None) == len(errs) and vals == uniq[j]:
                continue  # every cell already reads as itself (an option's key, a clean place name): no codes
            codes.append(pl.when(pl.col(f"slow{j}")).then(pl.col(f"c{j}")).cast(pl.Enum(uniq[j])).to_physical()
                         .alias(f"code{j}"))
    a = a.with_columns(codes)
    have_codes = {c.meta.output_name() for c in codes}
    for j, (_, spec) in enumerate(jobs):
        dtype = dtype_of(spec.type)
        values = uniq[j]
        if values and f"code{j}" not in have_codes:  # the cells themselves (null where not slow: empty)
            value, error, inexact = pl.col(f"c{j}"), pl.lit(None, dtype=pl.String), pl.lit(False)
        elif values:
            vals, errs, inex = parses[j]
            code = pl.col(f"code{j}")
            value = pl.lit(pl.Series(vals, dtype=dtype)).gather(code)
            error = pl.lit(pl.Series(errs, dtype=pl.String)).gather(code)
            inexact = pl.lit(pl.Series(inex, dtype=pl.Boolean)).gather(code).fill_null(False)
        else:
            value, error, inexact = pl.lit(None, dtype=dtype), pl.lit(None, dtype=pl.String), pl.lit(False)
        if j in numeric:
            value = pl.when(pl.col(f"ok{j}")).then(pl.col(f"v{j}")).otherwise(value)
        exprs += [value.cast(dtype).alias(f"value{j}"), error.alias(f"error{j}"), inexact.alias(f"inexact{j}")]
    out = a.with_columns(exprs)  # not select(): a chunk whose columns are all empty gives only literals
    parsed = []
    for j in range(len(jobs)):
        value, inexact = out[f"value{j}"], out[f"inexact{j}"]
        distinct = None
        read = parses[j][0] if j in parses else uniq[j]
        if j not in numeric and len(read) <= _PLACE_COMBINATIONS:  # (_consistency checks places by them)
            distinct = frozenset(v for v in read if v is not None) | ({None} if value.null_count() else set())
        parsed.append(Parsed(value, out[f"error{j}"], (value.is_not_null() | inexact).alias("p"), inexact, distinct))
    return parsed


def _plain_stage(raw: pl.DataFrame, jobs: list[tuple[str, FactSpec]], numeric: list[int]) -> pl.DataFrame:
    """The text columns as c{j}, and each numeric one's _plain_number reading as t{j} (one query: the most
    costly step of the parse, polars' number casts; bench/stages.py times it)."""
    a = raw.lazy().select(pl.col(h).alias(f"c{j}") for j, (h, _) in enumerate(jobs))  # no name clashes
    plain = [_plain_number(j, jobs[j][1]) for j in numeric]
    for stage in range(2):
        a = a.with_columns(p[stage] for p in plain if stage < len(p))
    return a.collect(**PLAIN_COLLECT)


def _parse_values(values: Iterable[Any], spec: FactSpec) -> tuple[list[Any], list[str | None], list[bool]]:
    """FactSpec.parse of each (distinct) cell value: (encoded values, error messages, inexact flags)."""
    vals: list[Any] = []
    errs: list[str | None] = []
    inex: list[bool] = []
    for v in values:
        try:
            enc, x = encode_value(spec, spec.parse(v))
            vals.append(enc)
            errs.append(None)
            inex.append(x)
        except FactValueError as e:
            vals.append(None)
            errs.append(str(e))
            inex.append(False)
    return vals, errs, inex


def _slow_parse(s: pl.Series, mask: pl.Series, spec: FactSpec, value: pl.Series, error: pl.Series,
                inexact: pl.Series) -> tuple[pl.Series, pl.Series, pl.Series]:
    """FactSpec.parse once per distinct value, mapped back to the rows."""
    idx = np.flatnonzero(mask.fill_null(False).to_numpy())
    sub = s.gather(idx)
    try:
        uniq = sub.unique(maintain_order=True).to_list()
        keyed = True
    except Exception:  # noqa: BLE001 - nested values polars cannot hash
        uniq, keyed = sub.to_list(), False
    vals, errs, inex = _parse_values(uniq, spec)
    dtype = dtype_of(spec.type)
    if keyed:
        table = pl.DataFrame({"k": pl.Series(uniq, dtype=s.dtype), "v": pl.Series(vals, dtype=dtype),
                              "e": pl.Series(errs, dtype=pl.String), "x": pl.Series(inex, dtype=pl.Boolean)})
        joined = pl.DataFrame({"k": sub}).join(table, on="k", how="left", maintain_order="left", nulls_equal=True)
    else:
        joined = pl.DataFrame({"v": pl.Series(vals, dtype=dtype), "e": pl.Series(errs, dtype=pl.String),
                               "x": pl.Series(inex, dtype=pl.Boolean)})
    value = value.clone()
    error = error.clone()
    inexact = inexact.clone()
    value.scatter(idx, joined["v"])
    error.scatter(idx, joined["e"])
    inexact.scatter(idx, joined["x"].fill_null(False))
    return value, error, inexact


def _dup_message(header: str, fact: str, first: str) -> str:
    return f"{header}: 与“{first}”重复 / the fact {fact!r} is given twice (also as {first!r})"


@dataclass
class Encoded:
    frame: pl.DataFrame  # fact columns, encoded
    errors: pl.Series  # String per row, null when none
    inexact: pl.Series  # Boolean: evaluate this row with evaluate()
    bad_by_column: dict[str, int]


def encode_frame(raw: pl.DataFrame, plan: ColumnPlan, facts: FactDictionary) -> Encoded:
    n = raw.height
    parts: dict[str, list[tuple[str, Parsed]]] = {}
    error_exprs: list[pl.Series] = []
    if READ_ERRORS in raw.columns:
        error_exprs.append(raw[READ_ERRORS].cast(pl.String))
    bad: dict[str, int] = {}
    inexact = _const(False, n, pl.Boolean)
    parsed = _parse_columns(raw, plan, facts)
    for (header, fact), p in zip(plan.fact_of, parsed):
        nb = p.error.len() - p.error.null_count()
        msg = None
        if nb:
            bad[header] = nb
            msg = pl.select(pl.when(p.error.is_not_null()).then(pl.lit(f"{header}: ") + p.error)).to_series()
        earlier = parts.setdefault(fact, [])
        if earlier:
            if msg is None:
                msg = _const(None, n, pl.String)
            prev = pl.select(pl.any_horizontal([q.present for _, q in earlier])).to_series()
            dup = p.present & prev
            first = earlier[0][0]
            msg = pl.select(pl.when(dup).then(pl.lit(_dup_message(header, fact, first))).otherwise(msg)).to_series()
        earlier.append((header, p))
        if msg is not None:
            error_exprs.append(msg)
        inexact = inexact | p.inexact
    if error_exprs:
        errors = pl.select(pl.concat_str(error_exprs, separator=ERROR_SEP, ignore_nulls=True)).to_series()
        errors = pl.select(pl.when(errors == "").then(None).otherwise(errors)).to_series().alias("errors")
    else:
        errors = _const(None, n, pl.String).alias("errors")
    cols = []
    for fact, ps in parts.items():
        vals = [q.value for _, q in ps]
        cols.append(pl.select(pl.coalesce(vals)).to_series().alias(fact) if len(vals) > 1 else vals[0].alias(fact))
    frame = pl.DataFrame(cols) if cols else pl.DataFrame(height=n)
    distinct = {fact: ps[0][1].distinct for fact, ps in parts.items() if len(ps) == 1}
    errors = _consistency(frame, errors, facts, distinct)
    return Encoded(frame, errors, inexact & errors.is_null(), bad)


def _parse_columns(raw: pl.DataFrame, plan: ColumnPlan, facts: FactDictionary) -> list[Parsed]:
    """parse_column for every fact column: the text columns (all of a CSV's) together in one set of
    queries, typed columns (Excel, Parquet, JSON) one by one."""
    out: list[Parsed | None] = [None] * len(plan.fact_of)
    text = [k for k, (h, _) in enumerate(plan.fact_of) if raw[h].dtype == pl.String]
    if raw.height and text:
        jobs = [(plan.fact_of[k][0], facts[plan.fact_of[k][1]]) for k in text]
        for k, p in zip(text, _parse_text_columns(raw, jobs)):
            out[k] = p
    for k, (h, f) in enumerate(plan.fact_of):
        if out[k] is None:
            out[k] = parse_column(raw[h], facts[f])
    return out


def _consistency(frame: pl.DataFrame, errors: pl.Series, facts: FactDictionary,
                 distinct: dict[str, frozenset | None] | None = None) -> pl.Series:
    """facts.consistency() errors, which evaluate() raises: found by a columnar mask, worded by the
    function itself on the few rows concerned (a new check there needs a mask here: the agreement
    tests say so). `distinct`: each fact's values, where the parse knows them (Parsed.distinct)."""
    from ..facts import consistency

    mask = _const(False, frame.height, pl.Boolean)
    if {"unemployment_claimants", "insured_employees"} <= set(frame.columns):
        mask = (frame["unemployment_claimants"] > frame["insured_employees"]).fill_null(False)
    places = [c for c in ("province", "city", "county") if c in frame.columns]
    if set(places) & {"city", "county"} and not _places_all_fine(places, distinct or {}):
        keys = frame.select(places).unique(maintain_order=True)  # places.issues(), once per distinct place
        bad = [_place_wrong(tuple(rec.items())) for rec in keys.iter_rows(named=True)]
        if any(bad):  # (the rows of a bad place found by a join: none in a clean list)
            flagged = keys.with_columns(pl.Series("__bad", bad, dtype=pl.Boolean))
            mask = mask | frame.select(places).join(flagged, on=places, how="left", nulls_equal=True,
                                                    maintain_order="left")["__bad"].fill_null(False)
    mask = mask & errors.is_null()
    rows = np.flatnonzero(mask.to_numpy())
    if len(rows) == 0:
        return errors
    errors = errors.clone()
    sub = frame.gather(rows)
    msgs = []
    for rec in sub.iter_rows(named=True):
        values = {k: _decoded(facts[k], v) for k, v in rec.items() if v is not None}
        found, _ = consistency(values)
        msgs.append(ERROR_SEP.join(str(i) for i in found) or None)
    errors.scatter(rows, pl.Series(msgs, dtype=pl.String))
    return errors


_PLACE_COMBINATIONS = 512  # beyond this many combinations of the place columns' values, the rows' own are found


def _places_all_fine(places: list[str], distinct: dict[str, frozenset | None]) -> bool:
    """No row can have a place issue: every combination of the place columns' values (those of the rows are
    among them) is fine. On a list whose places are right this spares hashing every row's places (~8 ms
    of a 200,000-row chunk's ~10 ms of checks); a list mixing provinces and cities may have combinations
    that no row has and that are wrong, and then each row's place is looked at as before."""
    values = [distinct.get(c) for c in places]
    if any(v is None for v in values) or math.prod(len(v) for v in values) > _PLACE_COMBINATIONS:
        return False
    return not any(_place_wrong(tuple(zip(places, combo))) for combo in itertools.product(*values))


@lru_cache(maxsize=4096)
def _place_wrong(place: tuple[tuple[str, Any], ...]) -> bool:
    """places.issues() finds something wrong with this (province, city, county) (None: not given)."""
    from ..places import issues as place_issues

    return bool(place_issues({k: v for k, v in place if v is not None}))


def _decoded(spec: FactSpec, v: Any) -> Any:
    """An encoded value back as FactSpec.parse returns it."""
    if spec.type in NUMERIC_TYPES and spec.type != "int":
        d = Decimal(v) / SCALE
        return Decimal(int(d)) if d == d.to_integral_value() else d.normalize()
    return v


def row_values(raw_row: dict[str, Any], plan: ColumnPlan, facts: FactDictionary) -> tuple[list[str], dict[str, Any]]:
    """The reference reading of one row: FactSpec.parse per cell, errors in column order."""
    errors: list[str] = []
    values: dict[str, Any] = {}
    first: dict[str, str] = {}
    if raw_row.get(READ_ERRORS):
        errors.append(str(raw_row[READ_ERRORS]))
    for header, fact in plan.fact_of:
        try:
            v = facts[fact].parse(raw_row.get(header))
        except FactValueError as e:
            errors.append(f"{header}: {e}")
            continue
        if v is None:
            continue
        if fact in values:
            errors.append(_dup_message(header, fact, first[fact]))
            continue
        values[fact] = v
        first[fact] = header
    return errors, values
