"""Planning the work: which rule set, how many rows a chunk holds, and which compiled Program runs on
which rows of a chunk.

Its own module because these choices change speed and memory, never results: rows are grouped by
the rules their province and city leave open (a 河南省 row need not run the 石家庄 rules), each group
runs in slices of bounded rules × rows, and programs are compiled once per rule set, date and subset.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import polars as pl

from ..conditions import OPERATORS, Compare, Group
from .read import DEFAULT_CHUNK_ROWS

if TYPE_CHECKING:  # numpy is imported where it is used: `eligibility batch` starts reading before it loads
    import numpy as np

    from ..columnar import Program

LONG_CHUNK_ROWS = 25_000  # --long: ~40 output rows per company (up to ~150 in 石家庄); ~1.3 GB peak
MIN_CHUNK_ROWS = 5_000  # each chunk costs ~0.2 s whatever its size: evaluate_frame never uses smaller ones
SLICE_RULE_ROWS = 24_000_000  # rules × rows a program evaluates at once: 100,000 rows of the whole catalogue
# the summary keeps per row only leaves and amounts (conditions run per pattern): a whole 200,000-row chunk
# of the catalogue at once, as each slice plans every expression again (~15 % of a chunk's CPU), same peak
SUMMARY_RULE_ROWS = 60_000_000


def chunk_rows_for(chunk_rows: int | None, long: bool) -> int:
    """The caller's chunk size, else the default for the output form."""
    if chunk_rows is None:
        return LONG_CHUNK_ROWS if long else DEFAULT_CHUNK_ROWS
    return chunk_rows


def frame_chunk_rows(chunk_rows: int | None, long: bool) -> int:
    """evaluate_frame's chunk size: as chunk_rows_for, but never below MIN_CHUNK_ROWS."""
    return max(chunk_rows_for(chunk_rows, long), MIN_CHUNK_ROWS)


def select_rules(rules, only: Iterable[str] | None = None):
    """The rule set to evaluate: the caller's or the bundled one, narrowed to the `only` globs."""
    if rules is None:
        from ..evaluate import default_rules

        rules = default_rules()
    if only:
        rules = rules.select(list(only))
    return rules


_PROGRAMS: dict[tuple, Program] = {}
_PROGRAMS_LOCK = threading.Lock()
_PLACE_FACTS = ("province", "city")
_FULL_SHARE = 0.6  # a place whose rules are more than this share of the catalogue uses the full program
_TINY_ROWS = 1000  # a place group smaller than this (or 2 % of the chunk) shares a larger group's program
_SMALL_CATALOGUE = 30  # rules: a catalogue this small runs whole (gathering the groups would cost more)


def program_for(rules, on: dt.date, only: frozenset[int] | None = None) -> Program:
    """The compiled program, once per rule set, date and rule subset (chunks evaluated at once share it)."""
    key = (id(rules), rules.version, getattr(rules, "only", ()), on, only)
    with _PROGRAMS_LOCK:
        prog = _PROGRAMS.get(key)
        if prog is None:
            from ..columnar import Program  # imported here: a run's reader starts before the engine loads

            if len(_PROGRAMS) > 32:
                _PROGRAMS.clear()
            prog = _PROGRAMS[key] = Program(rules, on, only)
    return prog


def _jurisdictions(rules) -> list[list[tuple[str, Any, Any]]]:
    """Per rule, its jurisdiction's province and city comparisons (fact, operator, value)."""
    out = []
    for r in rules.rules:
        cond = r.condition
        kids = cond.children if isinstance(cond, Group) and cond.kind == "all" else (cond,)
        out.append([(k.fact, k.op, k.value) for k in kids
                    if isinstance(k, Compare) and k.origin == "jurisdiction" and k.fact in _PLACE_FACTS])
    return out


def place_programs(frame: pl.DataFrame, rules, on: dt.date) -> list[tuple[Program, np.ndarray | None]]:
    """Rows grouped by the rules their province and city leave open, each group with a program of just
    those rules (None: all rows, the full program).

    A rule whose jurisdiction comparison is false for a row is ineligible whatever the other facts
    (all() with a false child), and an ineligible rule adds nothing to a summary or a long output; so
    a 河南省 row need not compute the 石家庄 rules. Places left open (unknown) keep every rule they
    could match; places that keep most of the catalogue share the full program."""
    import numpy as np

    cols = [c for c in _PLACE_FACTS if c in frame.columns]
    full = program_for(rules, on)
    if not cols or frame.height == 0 or len(full.plans) <= _SMALL_CATALOGUE:
        return [(full, None)]
    keys, gid = group_rows(frame, cols)
    if keys.height == 1 and all(v is None for v in keys.row(0)):
        return [(full, None)]
    juris = _jurisdictions(rules)
    key_of: list[frozenset[int] | None] = []
    size: dict[frozenset[int] | None, int] = {}
    for rec, count in zip(keys.iter_rows(named=True), np.bincount(gid, minlength=keys.height).tolist()):
        known = {c: rec[c] for c in cols if rec[c] is not None}
        keep = frozenset(i for i, comps in enumerate(juris)
                         if all(f not in known or OPERATORS[op].test(known[f], v) for f, op, v in comps))
        key = None if len(keep) > _FULL_SHARE * len(juris) else keep
        key_of.append(key)
        size[key] = size.get(key, 0) + count
    # a few rows are not worth a program of their own (each costs a fixed ~10-30 ms): they join the
    # smallest larger group whose rules include theirs, else the full program
    tiny = max(_TINY_ROWS, frame.height // 50) if _TINY_ROWS else 0
    host_of = {k: k for k in size}
    for key in sorted((k for k in size if k is not None and size[k] < tiny), key=lambda k: size[k]):
        hosts = [h for h in size if h is not key and size[h] >= tiny and (h is None or key <= h)]
        host_of[key] = min(hosts, key=lambda h: len(juris) if h is None else len(h)) if hosts else None
    finals = list(dict.fromkeys(host_of[k] for k in key_of))
    if finals == [None]:
        return [(full, None)]
    label = np.array([finals.index(host_of[k]) for k in key_of], dtype=np.int64)[gid]
    return [(full if key is None else program_for(rules, on, key), np.flatnonzero(label == j))
            for j, key in enumerate(finals)]


def group_rows(frame: pl.DataFrame, cols: list[str]) -> tuple[pl.DataFrame, np.ndarray]:
    """(the distinct values of `cols` in order of first appearance, each row's index among them): one
    hashing pass (a unique() and a join back were two)."""
    import numpy as np

    g = frame.select(cols).with_row_index("__i").group_by(cols, maintain_order=True).agg(pl.col("__i"))
    lists = g["__i"]
    gid = np.empty(frame.height, dtype=np.int64)
    gid[lists.explode().to_numpy()] = np.repeat(np.arange(g.height, dtype=np.int64), lists.list.len().to_numpy())
    return g.drop("__i"), gid


def slices(pos: np.ndarray | None, n: int, n_rules: int, budget: int) -> Iterator[np.ndarray | None]:
    """A place group's rows in runs of at most budget / n_rules rows (None: all n rows, at once).

    A program's working columns grow with its rules: slicing bounds a chunk's memory whatever the mix
    of places in the list (a list of 石家庄 firms meets every rule in every row)."""
    import numpy as np

    rows = n if pos is None else len(pos)
    step = max(MIN_CHUNK_ROWS, budget // max(n_rules, 1))
    if rows <= step:
        yield pos
        return
    every = np.arange(n) if pos is None else pos
    for start in range(0, rows, step):
        yield every[start:start + step]
