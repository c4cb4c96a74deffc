"""Evaluating one chunk of raw rows: the unit of work of every engine (threads here, Dask workers there).

evaluate_chunk encodes the chunk, runs the planned programs, settles the few amounts the float bound
cannot (compute_amount) and sends the few inexact rows through evaluate(); the result is the summary
rows and, with long=True, the long form (one row per company × eligible or undetermined rule).
_reference_chunk (engine="single") is evaluate() row by row: the reference the columnar path must
equal, and collect_facts its twin of Program.facts_to_collect. Both paths build their output here so
that they cannot differ in form.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

import numpy as np
import numpy.ma  # noqa: F401 - polars imports it (~20 ms) at its first Series made from an array:
import polars as pl  # here, while the first chunk is read, rather than in that chunk's evaluation

from .. import __version__
from ..columnar import PLAIN_COLLECT, STATUS_CODES, TOP_FACTS, Program, decode_mask
from ..errors import CompanyValidationError
from ..facts import FactDictionary, FactValueError
from ..validity import as_date
from .encode import ColumnPlan, encode_frame, row_values
from . import plan as _plan
from .plan import place_programs, program_for, select_rules, slices
from .read import ERROR_SEP, READ_ERRORS

OVERFLOW_MESSAGE = "金额: 数值过大，无法计算 / amount: the figures are too large to compute"
AMOUNT = pl.Decimal(38, 2)
FEN = Decimal("0.01")


def yuan(fen: pl.Expr) -> pl.Expr:
    """Int64 fen as exact Decimal yuan (× 0.01: exact, and half the time of a Decimal division)."""
    return (fen.cast(pl.Decimal(38, 0)) * pl.lit(FEN, dtype=AMOUNT)).cast(AMOUNT)


@dataclass
class LongForm:
    """A chunk's long form with its input (passthrough) columns held once per company, not once per long
    row (~40-70 rows a company: a wide list would otherwise take gigabytes). `rows` has `row`, `errors`
    and the result columns; `inputs` the chunk's passthrough columns, one row per company in input order
    (company `row` is inputs row `row - offset - 1`). slice() gives output rows with the input columns
    put back, in the output's column order (row, inputs..., errors, results): Writer takes it a write
    slice at a time (at most WRITE_ROWS rows and WRITE_INPUT_CELLS input cells), and only then do a
    company's input cells exist once per long row."""
    rows: pl.DataFrame
    inputs: pl.DataFrame
    offset: int

    @property
    def height(self) -> int:
        return self.rows.height

    @property
    def input_width(self) -> int:
        return self.inputs.width

    def slice(self, start: int, length: int | None = None) -> pl.DataFrame:
        return with_inputs(self.rows.slice(start, length), self.inputs, self.offset)

    def head(self, n: int = 5) -> pl.DataFrame:
        return self.slice(0, n)

    def frame(self) -> pl.DataFrame:
        """The whole long form with its input columns (every long row carries its company's)."""
        return with_inputs(self.rows, self.inputs, self.offset)


def with_inputs(rows: pl.DataFrame, inputs: pl.DataFrame, offset: int) -> pl.DataFrame:
    """Long rows (row, errors, results) with their companies' input columns after `row`."""
    if inputs.width == 0:
        return rows
    got = inputs.gather(rows["row"] - (offset + 1))
    return pl.concat([rows.select("row"), got, rows.drop("row")], how="horizontal")


@dataclass
class ChunkResult:
    summary: pl.DataFrame
    long: LongForm | None  # see LongForm (long.frame(): the whole long form)
    rows: int
    errors: int
    bad_by_column: dict[str, int]
    exact_rows: int = 0  # rows evaluated by evaluate() (inexact numbers)
    exact_amounts: int = 0  # amounts recomputed by compute_amount()


def provenance(rules, on: dt.date) -> dict[str, str]:
    """What produced a result: rules version, evaluation date, tool version (and the --only selection).
    Constant for a run: write.Writer puts it once in the file's metadata and manifest, not in every row."""
    meta = {"rules_version": rules.version, "evaluated_on": on.isoformat(), "tool_version": __version__}
    if getattr(rules, "only", ()):  # a selection of the rules (--only): what was evaluated
        meta["only"] = " ".join(rules.only)
    return meta


def evaluate_chunk(raw: pl.DataFrame, on: Any, rules=None, row_offset: int = 0, long: bool = False,
                   engine: str = "polars", facts_to_collect: bool = True) -> ChunkResult:
    """Evaluate one chunk of raw rows (the unit of work of every engine, Dask workers included).
    facts_to_collect=False: the summary has no `facts_to_collect` column, and (unless long) the
    missing-fact masks it is ranked from are not computed."""
    rules = select_rules(rules)
    on = as_date(on)
    plan = ColumnPlan.build(raw.columns, rules.facts)
    if engine == "single":
        return _reference_chunk(raw, plan, on, rules, row_offset, long, range(raw.height), facts_to_collect)
    enc = encode_frame(raw, plan, rules.facts)
    n = raw.height
    meta = provenance(rules, on)
    ok = enc.errors.is_null()
    base = pl.DataFrame({
        "row": pl.Series("row", np.arange(row_offset + 1, row_offset + n + 1), dtype=pl.Int64),
        **{out: raw[h] for h, out in plan.passthrough},
        "errors": enc.errors,
    })
    narrow = base.select("row", "errors")  # the long form's own columns: its input columns are put back by LongForm
    pieces: list[pl.DataFrame] = []
    long_pieces: list[pl.DataFrame] = []
    exact_amounts = 0
    overflow: list[int] = []
    groups = place_programs(enc.frame, rules, on)
    frame, split = enc.frame, any(pos is not None for _, pos in groups)
    if split:  # the derived columns once for the chunk, not once per program
        frame = program_for(rules, on).derive(frame)
    have = set(frame.columns)
    masks = long or facts_to_collect
    for prog, whole in groups:
        budget = _plan.SLICE_RULE_ROWS if long else _plan.SUMMARY_RULE_ROWS
        for pos in slices(whole, n, len(prog.plans), budget):
            if pos is None:
                sub = frame
            elif whole is None:  # a run of consecutive rows
                sub = frame.slice(int(pos[0]), len(pos))
            else:  # only the columns this program reads are gathered (derive() made them all: never none)
                sub = frame.select(c for c in prog.reads if c in have)[pos]
            derived = split or (pos is not None and whole is not None)
            if long:  # the long form reads every rule's status and masks row by row
                res = rows = prog.run(sub, derived, masks)
            else:  # the summary: conditions once per pattern of the leaves, amounts per row
                pat = prog.run_patterns(sub, derived, masks)
                res, rows = pat.patterns, pat.rows
            fixes = prog.ambiguous(rows)
            if fixes:
                rows, k, over = _fix_amounts(rows, fixes, raw, plan, rules, pos)
                if long:
                    res = rows
                exact_amounts += k
                overflow += [p if pos is None else int(pos[p]) for p in over]
            summ = rows.lazy()
            for stage in prog.summary_exprs(prog.paying(rows)):  # with_columns: constants fill every row
                summ = summ.with_columns(stage)
            summ = summ.select("__total", "__total_open", "__total_up_to").collect(**PLAIN_COLLECT)
            counts = [*prog.status_summary(res), *([prog.facts_to_collect(res)] if facts_to_collect else [])]
            if not long:
                counts = [pat.per_row(c) for c in counts]
            pieces.append(pl.DataFrame({
                "__pos": pl.Series(np.arange(n) if pos is None else pos, dtype=pl.Int64),
                "n_eligible": counts[0],
                "n_undetermined": counts[1],
                "total_amount": summ["__total"],
                "total_in_effect": summ["__total_open"],
                "total_up_to": summ["__total_up_to"],
                "eligible": counts[2],
                **({"facts_to_collect": counts[3]} if facts_to_collect else {}),
            }))
            if long:
                sub = narrow if pos is None else narrow[pos]
                long_pieces.append(_long_columnar(prog, res, sub, ok if pos is None else ok.gather(pos), meta))
            del res, rows, summ
    if overflow:
        mark = np.zeros(n, dtype=bool)
        mark[overflow] = True
        enc.inexact = enc.inexact | pl.Series(mark)
    results = pieces[0] if len(pieces) == 1 else pl.concat(pieces).sort("__pos")
    summary = _finish_summary(pl.concat([base, results.drop("__pos")], how="horizontal"), ok, meta)
    long_df = None
    if long:
        long_df = long_pieces[0] if len(long_pieces) == 1 else pl.concat(long_pieces).sort("row", maintain_order=True)
    exact_rows = int(enc.inexact.sum())
    if exact_rows:
        positions = np.flatnonzero(enc.inexact.to_numpy()).tolist()
        ref = _reference_chunk(raw, plan, on, rules, row_offset, long, positions, facts_to_collect)
        keep = pl.Series(~enc.inexact.to_numpy())
        summary = pl.concat([summary.filter(keep), ref.summary]).sort("row", maintain_order=True)
        if long_df is not None:
            drop = set(p + row_offset + 1 for p in positions)
            long_df = pl.concat([long_df.filter(~pl.col("row").is_in(list(drop))), ref.long.rows]).sort(
                "row", maintain_order=True)
    long_form = None if long_df is None else LongForm(long_df, _inputs(raw, plan), row_offset)
    return ChunkResult(summary, long_form, n, int(enc.errors.is_not_null().sum()), enc.bad_by_column,
                       exact_rows, exact_amounts)


def _inputs(raw: pl.DataFrame, plan: ColumnPlan) -> pl.DataFrame:
    """The chunk's passthrough columns under their output names, one row per company (no copy)."""
    return raw.select(pl.col(h).alias(out) for h, out in plan.passthrough)


def _finish_summary(summary: pl.DataFrame, ok: pl.Series, meta: dict[str, str]) -> pl.DataFrame:
    okc = pl.lit(ok)
    cents = lambda c: yuan(pl.col(c))  # noqa: E731
    return summary.with_columns(
        pl.when(okc).then(pl.col("n_eligible")).cast(pl.Int32).alias("n_eligible"),
        pl.when(okc).then(pl.col("n_undetermined")).cast(pl.Int32).alias("n_undetermined"),
        pl.when(okc).then(cents("total_amount")).alias("total_amount"),
        pl.when(okc).then(cents("total_in_effect")).alias("total_in_effect"),
        pl.when(okc).then(cents("total_up_to")).alias("total_up_to"),
        pl.when(okc).then(pl.col("eligible")).cast(pl.String).alias("eligible"),
        *([pl.when(okc).then(pl.col("facts_to_collect")).cast(pl.String).alias("facts_to_collect")]
          if "facts_to_collect" in summary.columns else []),
    )


def _fix_amounts(res: pl.DataFrame, fixes: list[tuple[int, int]], raw: pl.DataFrame, plan: ColumnPlan, rules,
                 raw_pos: np.ndarray | None) -> tuple[pl.DataFrame, int, set[int]]:
    """Recompute, with the Decimal code itself, the amounts the float bound could not settle.
    res row p is raw row raw_pos[p] (p itself when raw_pos is None); overflow rows are res positions."""
    from ..derived import derive
    from ..evaluate import compute_amount

    by_rule: dict[int, tuple[list[int], list[int | None]]] = {}
    cache: dict[int, tuple[dict, dict]] = {}
    overflow: set[int] = set()
    headers = [h for h, _ in plan.fact_of] + ([READ_ERRORS] if READ_ERRORS in raw.columns else [])
    for pos, i in fixes:
        if pos not in cache:
            row = raw.select(headers).row(pos if raw_pos is None else int(raw_pos[pos]), named=True)
            _, values = row_values(row, plan, rules.facts)
            v, needs, _ = derive(values)
            cache[pos] = (v, needs)
        values, needs = cache[pos]
        try:
            amount = compute_amount(rules.rules[i].amount, values, needs)[0]
        except ArithmeticError:  # the single path fails on this row too: it goes through evaluate()
            overflow.add(pos)
            continue
        cents = None if amount is None else int(amount * 100)
        rows, vals = by_rule.setdefault(i, ([], []))
        rows.append(pos)
        vals.append(cents)
    cols = []
    for i, (rows, vals) in by_rule.items():
        s = res[f"a{i}"].clone()
        s.scatter(rows, pl.Series(vals, dtype=pl.Int64))
        cols.append(s)
    return res.with_columns(cols), len(fixes), overflow


def _long_columnar(prog: Program, res: pl.DataFrame, summary: pl.DataFrame, ok: pl.Series,
                   meta: dict[str, str]) -> pl.DataFrame:
    """The long form from the program's columns: (row, rule) pairs that are eligible or undetermined,
    found at once in the status matrix (row-major, so in row then catalogue order), then each rule's
    amount, counted flag and missing facts gathered for its pairs (masks decoded once per distinct
    value)."""
    plans = prog.plans
    n = res.height
    okn = ok.to_numpy()
    if not plans or n == 0:
        return _assemble_long(_empty_hits(), prog.rules, summary, meta)
    status = np.column_stack([res[f"s{p.index}"].to_numpy() for p in plans])
    pos, k = np.nonzero(((status == 1) | (status == 2)) & okn[:, None])
    st = status[pos, k]
    del status
    h = len(pos)
    amount = np.full(h, -1, dtype=np.int64)  # -1: no amount (amounts are never negative)
    counted = np.zeros(h, dtype=bool)
    texts: dict[str, int] = {"": 0}
    missing = np.zeros(h, dtype=np.int64)  # codes into texts
    amount_missing = np.zeros(h, dtype=np.int64)
    stages, counted_exprs, _ = prog.counted()
    flags = None
    if counted_exprs:
        flags = res.lazy()
        for stage in stages:
            flags = flags.with_columns(stage)
        flags = flags.select(e.fill_null(False).alias(f"k{i}") for i, e in counted_exprs.items()).collect(
            **PLAIN_COLLECT)
    words: dict[str, list[str]] = {}
    for c in res.columns:  # in order: word 0 before word 1
        if c[:1] in "mq" and "_" in c:
            words.setdefault(c[:c.index("_")], []).append(c)
    order = np.argsort(k, kind="stable")
    bounds = np.searchsorted(k[order], np.arange(len(plans) + 1))
    for j, p in enumerate(plans):
        idx = order[bounds[j]:bounds[j + 1]]
        if len(idx) == 0:
            continue
        i = p.index
        rows = pos[idx]
        if p.amount is not None:
            amount[idx] = res[f"a{i}"].gather(rows).fill_null(-1).to_numpy()
        if i in counted_exprs:
            counted[idx] = flags[f"k{i}"].gather(rows).to_numpy()
        for prefix, target, cands in (("m", missing, p.candidates),
                                      ("q", amount_missing, p.amount.candidates if p.amount else [])):
            cols = words.get(f"{prefix}{i}")
            if not cols:
                continue
            sub = idx if prefix == "q" else idx[st[idx] == 2]  # missing facts only when undetermined
            if len(sub) == 0:
                continue
            at = pos[sub]
            if len(cols) == 1:  # up to 63 candidates: one word, factorised by a 1-D unique
                uniq, inverse = np.unique(res[cols[0]].to_numpy()[at], return_inverse=True)
                uniq = [[int(w)] for w in uniq]
            else:
                ws = pl.DataFrame({c: res[c].gather(at) for c in cols})
                table = ws.unique(maintain_order=True).with_row_index("__u")
                inverse = ws.join(table, on=cols, how="left", maintain_order="left")["__u"].to_numpy()
                uniq = [list(r) for r in table.drop("__u").iter_rows()]
            codes = np.array([texts.setdefault(";".join(decode_mask(cands, u)), len(texts)) for u in uniq],
                             dtype=np.int64)
            target[sub] = codes[np.asarray(inverse).reshape(-1)]
    names = pl.Series(list(texts), dtype=pl.Categorical)
    hits = pl.DataFrame({
        "pos": pos.astype(np.int64),
        "status": st.astype(np.int8),
        "amount": pl.Series(amount).replace(-1, None),
        "counted": counted,
        "rule": np.array([p.index for p in plans], dtype=np.int32)[k],
        "missing": names.gather(missing),
        "amount_missing": names.gather(amount_missing),
    })
    return _assemble_long(hits, prog.rules, summary, meta, ordered=True)


_HITS = {"pos": pl.Int64, "status": pl.Int8, "amount": pl.Int64, "counted": pl.Boolean, "rule": pl.Int32,
         "missing": pl.Categorical, "amount_missing": pl.Categorical}


def _empty_hits() -> pl.DataFrame:
    return pl.DataFrame(schema=_HITS)


def _assemble_long(hits: pl.DataFrame, rules, summary: pl.DataFrame, meta: dict[str, str],
                   ordered: bool = False) -> pl.DataFrame:
    """One row per company × eligible-or-undetermined rule (hits: summary position, rule index, ...),
    in row then catalogue order; a company with none keeps one empty row. Only `row` and `errors` are
    taken from the summary: the input columns are put back a write slice at a time (LongForm). The
    repeated texts are categoricals (a code per row, each text once: a long chunk has ~40 rows per company); Writer and
    evaluate_frame hand them out as plain strings."""
    on = dt.date.fromisoformat(meta["evaluated_on"])
    from ..evaluate import window

    hits = hits.select(pl.col(c).cast(t) for c, t in _HITS.items())
    if not ordered:
        hits = hits.sort(["pos", "rule"])
    n = summary.height
    per_row = np.bincount(hits["pos"].to_numpy(), minlength=n)[:n] if hits.height else np.zeros(n, np.int64)
    slots = np.maximum(per_row, 1)
    has = np.repeat(per_row > 0, slots)  # output rows that are hits (the rest: one empty row per company)
    which = np.full(len(has), -1, dtype=np.int64)
    which[has] = np.arange(hits.height)
    take = pl.Series(which).replace(-1, None)
    base = summary.select("row", "errors").gather(np.repeat(np.arange(n), slots))
    got = hits.gather(take)
    rule = got["rule"]
    info = {
        "rule_id": pl.Series([r.id for r in rules.rules], dtype=pl.Categorical),
        "title": pl.Series([r.spec.title.zh for r in rules.rules], dtype=pl.Categorical),
        "per": pl.Series([r.spec.amount.per if r.spec.amount else "once" for r in rules.rules], dtype=pl.Categorical),
        "in_effect": pl.Series([window(r, on)[1] for r in rules.rules], dtype=pl.Boolean),
    }
    names = pl.Series(list(STATUS_CODES), dtype=pl.Categorical)
    codes = pl.Series(list(STATUS_CODES.values()), dtype=pl.Int8)
    return pl.concat([base, pl.DataFrame({
        "rule_id": info["rule_id"].gather(rule),
        "title": info["title"].gather(rule),
        "status": got["status"].replace_strict(codes, names, default=None, return_dtype=pl.Categorical),
        "amount": got["amount"],
        "per": info["per"].gather(rule),
        "counted_in_total": got["counted"],
        "in_effect": info["in_effect"].gather(rule),
        "missing": got["missing"],
        "amount_missing": got["amount_missing"],
    })], how="horizontal").with_columns(
        yuan(pl.col("amount")).alias("amount"),
    )


def collect_facts(report, facts: FactDictionary, k: int = TOP_FACTS) -> list[str]:
    """The facts most worth collecting for one report: questions.py's score (w/len over undetermined
    rules waiting on the fact, half that for amounts; first questions included, no money tie-break),
    in exact fractions; ties by the fact dictionary's order. Columnar twin: Program.scores."""
    from fractions import Fraction

    from ..questions import DERIVED_INPUTS
    from ..scoring import AMOUNT_SHARE, rule_weight

    known = set(report.input) | {n for n, v in report.derived.items() if not isinstance(v, list)}
    scores: dict[str, Fraction] = {}

    def expand(names: list[str]) -> list[str]:
        out: list[str] = []
        for n in names:
            spec = facts.get(n)
            if spec is None:
                continue
            inputs = [n] if not spec.derived else [f for f in DERIVED_INPUTS.get(n, ()) if f not in known
                                                      and f in facts and not facts[f].derived]
            out += [f for f in inputs if f not in out]
        return out

    for r in report.results:
        w = rule_weight(r.kind, r.window)
        for names, gate, weight in ((r.missing, r.status == "undetermined", w),
                                    (r.amount_missing, r.status != "ineligible", w * AMOUNT_SHARE)):
            if not gate or not names:
                continue
            ex = expand(list(names))
            for n in ex:
                if n not in known:
                    scores[n] = scores.get(n, Fraction(0)) + weight / len(ex)
    order = {name: i for i, name in enumerate(facts)}
    ranked = sorted(scores, key=lambda n: (-scores[n], order.get(n, len(order))))
    return ranked[:k]


def _reference_chunk(raw: pl.DataFrame, plan: ColumnPlan, on: dt.date, rules, row_offset: int, long: bool,
                     positions: Iterable[int], facts_to_collect: bool = True) -> ChunkResult:
    """Rows evaluated one at a time by evaluate(): the reference the columnar path must equal."""
    from ..evaluate import evaluate

    positions = list(positions)
    headers = [h for h, _ in plan.fact_of] + ([READ_ERRORS] if READ_ERRORS in raw.columns else [])
    recs: dict[str, list[Any]] = {k: [] for k in ("row", "errors", "n_eligible", "n_undetermined", "total_amount",
                                                  "total_in_effect", "total_up_to", "eligible",
                                                  "facts_to_collect")}
    long_rows: list[dict[str, Any]] = []
    n_err = 0
    bad: dict[str, int] = {}
    facts = rules.facts
    for pos in positions:
        row = raw.select(headers).row(pos, named=True) if headers else {}
        errors, values = row_values(row, plan, facts)
        for h, f in plan.fact_of:
            try:
                facts[f].parse(row.get(h))
            except FactValueError:
                bad[h] = bad.get(h, 0) + 1
        recs["row"].append(row_offset + pos + 1)
        if errors:
            n_err += 1
            recs["errors"].append(ERROR_SEP.join(errors))
            for k in ("n_eligible", "n_undetermined", "total_amount", "total_in_effect", "total_up_to", "eligible",
                      "facts_to_collect"):
                recs[k].append(None)
            long_rows.append({"pos": pos})
            continue
        try:
            report = evaluate(values, on=on, rules=rules)
        except (CompanyValidationError, ArithmeticError) as e:  # cross-fact checks; amounts beyond Decimal
            n_err += 1
            recs["errors"].append(ERROR_SEP.join(str(i) for i in e.issues) if isinstance(e, CompanyValidationError)
                                  else OVERFLOW_MESSAGE)
            for k in ("n_eligible", "n_undetermined", "total_amount", "total_in_effect", "total_up_to", "eligible",
                      "facts_to_collect"):
                recs[k].append(None)
            long_rows.append({"pos": pos})
            continue
        recs["errors"].append(None)
        recs["n_eligible"].append(len(report.by_status("eligible")))
        recs["n_undetermined"].append(len(report.by_status("undetermined")))
        recs["total_amount"].append(report.total_amount)
        recs["total_in_effect"].append(report.total_in_effect)
        recs["total_up_to"].append(report.total_up_to)
        recs["eligible"].append(";".join(r.rule_id for r in report.results if r.status == "eligible"))
        recs["facts_to_collect"].append(";".join(collect_facts(report, facts)) if facts_to_collect else None)
        if long:
            hits = 0
            for i, r in enumerate(report.results):
                if r.status in ("eligible", "undetermined"):
                    hits += 1
                    long_rows.append({"pos": pos, "rule": i, "status": STATUS_CODES[r.status],
                                      "amount": None if r.amount is None else int(r.amount * 100),
                                      "counted": r.counted_in_total,
                                      "missing": ";".join(r.missing) if r.status == "undetermined" else "",
                                      "amount_missing": ";".join(r.amount_missing)})
            if not hits:
                long_rows.append({"pos": pos})
    meta = provenance(rules, on)
    pos_arr = positions
    summary = pl.DataFrame({
        "row": pl.Series("row", recs["row"], dtype=pl.Int64),
        **{out: raw[h].gather(pos_arr) for h, out in plan.passthrough},
        "errors": pl.Series(recs["errors"], dtype=pl.String),
        "n_eligible": pl.Series(recs["n_eligible"], dtype=pl.Int32),
        "n_undetermined": pl.Series(recs["n_undetermined"], dtype=pl.Int32),
        "total_amount": pl.Series(recs["total_amount"], dtype=AMOUNT),
        "total_in_effect": pl.Series(recs["total_in_effect"], dtype=AMOUNT),
        "total_up_to": pl.Series(recs["total_up_to"], dtype=AMOUNT),
        "eligible": pl.Series(recs["eligible"], dtype=pl.String),
        **({"facts_to_collect": pl.Series(recs["facts_to_collect"], dtype=pl.String)} if facts_to_collect else {}),
    })
    long_df = None
    if long:
        hits = _empty_hits()
        hit_rows = [r for r in long_rows if "rule" in r]
        if hit_rows:
            hits = pl.DataFrame(hit_rows, schema={**_HITS, "missing": pl.String, "amount_missing": pl.String})
            # positions in the summary's order (it holds only these rows)
            local = {p: j for j, p in enumerate(pos_arr)}
            hits = hits.with_columns(pl.col("pos").replace_strict(local, return_dtype=pl.Int64))
        long_df = LongForm(_assemble_long(hits, rules, summary, meta), _inputs(raw, plan), row_offset)
    return ChunkResult(summary, long_df, len(positions), n_err, bad, len(positions), 0)
