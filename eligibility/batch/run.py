"""Running a batch: frames (evaluate_frame, evaluate_upload) and files (run_batch) end to end.

The glue of the other modules, kept apart from them: rules are loaded while the first chunk is read
(_Prefetch), up to IN_FLIGHT chunks are evaluated at once on threads (or on a Dask cluster:
batch.dask), results are written in input order, and BatchSummary reports what was done.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import polars as pl

from .. import __version__
from ..errors import BatchInputError
from ..facts import FactDictionary
from ..validity import as_date
from .plan import chunk_rows_for, frame_chunk_rows, select_rules
from .read import READ_ERRORS, Source, TableSource, open_table
from .write import Writer, plain_strings

if TYPE_CHECKING:  # the engine is imported once the reader has started (run_batch): reading starts sooner
    from .chunk import ChunkResult, LongForm
    from .encode import ColumnPlan

def evaluate_frame(df: pl.DataFrame, on: Any = None, rules=None, progress: Callable[[int, int], Any] | None = None,
                   *, long: bool = False, chunk_rows: int | None = None, engine: str = "polars",
                   only: Iterable[str] | None = None, facts_to_collect: bool = True):
    """Summary rows for a table of companies (as read_table returns it); with long=True the pair
    (summary, long form). `progress(done_rows, total_rows)` is called after each chunk of chunk_rows
    rows (at least MIN_CHUNK_ROWS: a chunk has a fixed cost of a few tenths of a second). `only`: glob
    patterns of rule ids (RuleSet.select): just those rules are evaluated. facts_to_collect=False: no
    such column (and less work)."""
    rules = select_rules(rules, only)
    on = as_date(on)
    chunk_rows = frame_chunk_rows(chunk_rows, long)
    total = df.height
    sums, longs = [], []
    done = 0
    chunks = [df.slice(start, chunk_rows) for start in range(0, total, chunk_rows)] or [df]
    for res in _local_results(chunks, on, rules, long, engine, facts_to_collect):
        sums.append(res.summary)
        if long:
            longs.append(res.long.frame())
        done += res.rows
        if progress is not None:
            progress(done, total)
    summary = pl.concat(sums) if len(sums) > 1 else sums[0]
    if long:
        return summary, plain_strings(pl.concat(longs) if len(longs) > 1 else longs[0])
    return summary


def evaluate_upload(df: pl.DataFrame, on: Any = None, rules=None, progress: Callable[[int, int], Any] | None = None,
                    *, chunk_rows: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(summary, long form) of an uploaded list, as the app shows them: the long form carries the first
    column that is not a fact (the company's name) and no other input column.

    The long form repeats a company's input columns on each of its up to ~240 rows: a 5 MB list of
    2,000 rows × 1,000 columns would take some 8 GB. The summary gets every input column back."""
    from .encode import ColumnPlan

    rules = select_rules(rules)
    plan = ColumnPlan.build(df.columns, rules.facts)
    name = plan.passthrough[0][0] if plan.passthrough else None
    keep = [c for c in df.columns if c == READ_ERRORS or c == name or c in dict(plan.fact_of)]
    summary, long = evaluate_frame(df.select(keep), on, rules, progress, long=True, chunk_rows=chunk_rows)
    others = [(h, out) for h, out in plan.passthrough if h != name]
    if others:
        taken = set(summary.columns)
        extra = df.select(pl.col(h).alias(out if out not in taken else f"input.{h}") for h, out in others)
        summary = pl.concat([summary, extra], how="horizontal")
    return summary, long


@dataclass
class BatchSummary:
    input: str
    output: str
    format: str
    encoding: str | None
    rows_read: int
    rows_evaluated: int
    rows_with_errors: int
    rules_version: str
    evaluated_on: str
    tool_version: str
    engine: str
    seconds: float
    bad_by_column: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    exact_rows: int = 0
    exact_amounts: int = 0
    manifest: str = ""  # the sidecar naming the rules version, date and tool version

    def lines(self, lang: str = "zh") -> list[str]:
        out = [f"读取 {self.rows_read} 行，评估 {self.rows_evaluated} 行，{self.rows_with_errors} 行有错误 / "
               f"{self.rows_read} rows read, {self.rows_evaluated} evaluated, {self.rows_with_errors} with errors",
               f"输出 / output: {self.output}  (规则版本 / rules {self.rules_version}, 评估日期 / on "
               f"{self.evaluated_on}, {self.seconds:.1f} s, engine {self.engine})"]
        if self.manifest:
            out.append(f"清单 / manifest: {self.manifest}")
        for col, n in sorted(self.bad_by_column.items(), key=lambda kv: -kv[1])[:10]:
            out.append(f"  列 / column {col!r}: {n} 个无效值 / invalid values")
        out += [f"  注意 / note: {w}" for w in self.warnings]
        return out


def _warnings(plan: ColumnPlan, facts: FactDictionary) -> list[str]:
    out = []
    if not plan.fact_of:
        out.append("没有任何列与事实项对应，所有政策都将无法判断 / no column matches a fact: every rule will be "
                   "undetermined (see `eligibility facts` for the column names)")
    have = {f for _, f in plan.fact_of}
    missing = [f for f in ("province", "city", "industry", "employees", "revenue") if f not in have]
    if plan.fact_of and missing:
        out.append("缺少常用列 / common columns not found: " + ", ".join(f"{facts[f].zh} ({f})" for f in missing))
    for h, hint in plan.unknown:
        if hint:
            out.append(f"列 {h!r} 不是事实项，原样输出 / column {h!r} is not a fact, passed through{hint}")
    return out


def run_batch(input: Source, output: str | os.PathLike, on: Any = None, long: bool = False, engine: str = "polars",
              scheduler: str | None = None, chunk_rows: int | None = None, rules=None,
              progress: Callable[[int, int | None], Any] | None = None, workers: int | None = None,
              only: Iterable[str] | None = None, facts_to_collect: bool = True) -> BatchSummary:
    """Evaluate a company list file into OUTPUT (.csv, .xlsx, .parquet), streaming in chunks; what produced
    it (rules version, date, tool version, the `only` patterns) goes to OUTPUT.manifest.json (and the
    Parquet metadata, the Excel `about` sheet). `only`: glob patterns of rule ids (`sjz.ui_refund.*`);
    just the rules they match are evaluated (RuleSet.select). facts_to_collect=False: the summary leaves
    that column out, and the missing-fact masks it is ranked from are not computed (a third less work
    on a list that meets the whole catalogue).

    engine: "polars" (columnar, this machine), "dask" (the same chunks on a dask.distributed
    cluster: `scheduler` is its address, or None for a local cluster), "single" (every row through
    evaluate(): the slow reference). rules: a RuleSet, None (the bundled catalogue) or a function that
    loads one (called while the first chunk is being read). Raises BatchInputError only when the input
    cannot be read.
    """
    if engine not in ("polars", "dask", "single"):
        raise BatchInputError(f"--engine: 应为 polars、dask 或 single / expected polars, dask or single, got {engine!r}")
    chunk_rows = chunk_rows_for(chunk_rows, long)
    if chunk_rows < 1:
        raise BatchInputError("--chunk-rows must be at least 1")
    t0 = time.perf_counter()
    on = as_date(on)
    early = _take_early(input, chunk_rows if engine != "dask" else None)
    try:
        if isinstance(input, (bytes, bytearray, memoryview)):
            src = open_table(input, "input")
        else:
            _not_the_input(input, output)
            src = early.src if early else open_table(input)
        out_path = Path(output)
        writer = Writer(out_path, {}, "details" if long else "results")
    except BaseException:
        if early:
            early.reader.close()
        raise
    first_columns: list[list[str]] = early.first_columns if early else []
    # the first chunk is read while the rules load (rules may be a loader: the CLI's, which builds the models)
    if early:
        reader = early.reader
    elif engine != "dask":
        reader = _Prefetch(_watched(src.chunks(chunk_rows), first_columns))
    else:
        reader = None
    try:
        from .chunk import provenance  # the engine's modules load while the first chunk is read
        from .encode import ColumnPlan

        rules = select_rules(rules() if callable(rules) else rules, only)
    except BaseException:
        if reader is not None:
            reader.close()
        raise
    meta = writer.meta = provenance(rules, on)
    stats = BatchSummary(str(src.name), str(out_path), src.fmt, src.encoding if src.fmt == "csv" else None, 0, 0, 0,
                         rules.version, on.isoformat(), __version__, engine, 0.0, manifest=str(writer.manifest))

    def frames(results: Iterable[ChunkResult]) -> Iterator[pl.DataFrame | LongForm]:
        for res in results:
            stats.rows_read += res.rows
            stats.rows_with_errors += res.errors
            stats.exact_rows += res.exact_rows
            stats.exact_amounts += res.exact_amounts
            for k, v in res.bad_by_column.items():
                stats.bad_by_column[k] = stats.bad_by_column.get(k, 0) + v
            yield res.long if long else res.summary  # the long form: input columns put back by the writer
            if progress is not None:
                progress(stats.rows_read, None)
        if stats.rows_read == 0:
            yield _empty_output(src, rules, long, meta, facts_to_collect)

    try:
        if engine == "dask":
            from .dask import evaluate_chunks

            results = evaluate_chunks(_watched(src.chunks(chunk_rows), first_columns), on, rules, long=long,
                                      scheduler=scheduler,
                                      workers=workers, facts_to_collect=facts_to_collect)
        else:
            results = _local_results(reader, on, rules, long, engine, facts_to_collect)
        writer.write_all(frames(results))
        writer.close({"companies": stats.rows_read, "companies_with_errors": stats.rows_with_errors})
    except BaseException:
        writer.abort()
        raise
    finally:
        if reader is not None:
            reader.close()
    stats.rows_evaluated = stats.rows_read - stats.rows_with_errors
    columns = first_columns[0] if first_columns else list(src.header)
    stats.warnings = _warnings(ColumnPlan.build(columns, rules.facts), rules.facts)
    if stats.rows_read == 0:
        stats.warnings.append("文件只有表头，没有数据行 / the file has a header but no data rows")
    stats.seconds = time.perf_counter() - t0
    return stats


def _watched(chunks: Iterable[pl.DataFrame], first_columns: list[list[str]]) -> Iterator[pl.DataFrame]:
    """The chunks, noting the first one's columns (for the warnings about missing columns)."""
    for c in chunks:
        if not first_columns:
            first_columns.append(list(c.columns))
        yield c


@dataclass
class _Early:
    key: tuple
    src: TableSource
    reader: "_Prefetch"
    first_columns: list[list[str]]


_EARLY: list[_Early] = []  # the console command's read started before its command line was parsed


def _file_key(path: Any, chunk_rows: int) -> tuple:
    st = os.stat(path)
    return os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, chunk_rows


def read_early(path: str, chunk_rows: int | None = None, long: bool = False) -> None:
    """Start reading the file `eligibility batch` was given before typer and the engine load (entry.main):
    run_batch takes the read over when asked for the same file (the same inode, size and time) with the
    same chunk size, and closes it otherwise. Nothing is raised here: a file that cannot be read is
    reported by run_batch as usual."""
    if Path(path).suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        return  # a workbook is checked whole before its first row: nothing to overlap, and a slow refusal
    try:
        rows = chunk_rows_for(chunk_rows, long)
        if rows < 1:
            return
        key = _file_key(path, rows)
        src = open_table(path)
        first_columns: list[list[str]] = []
        reader = _Prefetch(_watched(src.chunks(rows), first_columns))
    except Exception:  # noqa: BLE001 - run_batch opens it again and says what is wrong
        return
    _EARLY[:] = [_Early(key, src, reader, first_columns)]


def _take_early(input: Any, chunk_rows: int | None) -> _Early | None:
    """The early read if it is of this input and chunk size (else it is closed): at most once."""
    if not _EARLY:
        return None
    early = _EARLY.pop()
    try:
        same = chunk_rows is not None and not isinstance(input, (bytes, bytearray, memoryview)) and \
            _file_key(input, chunk_rows) == early.key
    except (OSError, TypeError, ValueError):
        same = False
    if not same:
        early.reader.close()
        return None
    return early


def _not_the_input(input: Any, output: Any) -> None:
    """Refuse an output (or its temporary .part file) that is the input file: it would be overwritten."""
    try:
        out = Path(output)
        targets = [out, out.with_name(out.name + ".part")]
        src = Path(input)
    except TypeError as e:
        raise BatchInputError(f"应为文件路径 / expected file paths: {e}") from None
    for t in targets:
        try:
            same = t.resolve() == src.resolve() or (t.exists() and src.exists() and os.path.samefile(t, src))
        except (OSError, RuntimeError):
            same = False
        if same:
            raise BatchInputError(f"{output}: 输出文件就是输入文件，会覆盖名单；请换一个文件名 / the output is the input file "
                                  f"and would overwrite it: choose another output name (-o)")


IN_FLIGHT = 2  # chunks evaluated at once: one chunk's single-threaded steps overlap the other's polars work


def _local_results(chunks: Iterable[pl.DataFrame], on: dt.date, rules, long: bool, engine: str,
                   facts_to_collect: bool = True) -> Iterator[ChunkResult]:
    """Chunk results in input order; up to IN_FLIGHT chunks are evaluated at once (threads: polars and
    numpy release the GIL), while the next chunk is read."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from .chunk import evaluate_chunk

    width = 1 if engine == "single" else IN_FLIGHT
    offset = 0
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="batch-eval") as pool:
        pending: deque = deque()
        reader = chunks if isinstance(chunks, _Prefetch) else _Prefetch(chunks)
        raws = iter(reader)

        def submit() -> bool:
            nonlocal offset
            raw = next(raws, None)
            if raw is None:
                return False
            future = pool.submit(evaluate_chunk, raw, on, rules, offset, long, engine, facts_to_collect)
            future.add_done_callback(reader.finished)  # its raw rows are let go: the next chunk may be read
            pending.append(future)
            offset += raw.height
            return True

        try:
            while len(pending) < width and submit():
                pass
            while pending:
                done = pending.popleft().result()
                # the next chunk starts before this result is handed on (the writer encodes it meanwhile):
                # otherwise one chunk is evaluated alone while each result is written. None is queued
                # behind the workers: its raw chunk would wait in memory.
                submit()
                yield done
        finally:
            for f in pending:
                f.cancel()


class _Prefetch:
    """Read chunks in a thread (polars and numpy release the GIL), at most IN_FLIGHT of them alive: read and
    not yet `finished()` with by the consumer (their evaluation ended). So a chunk is read when a worker
    becomes free, while the other still evaluates, and no read chunk waits in memory for a worker: one
    raw chunk fewer alive than reading one ahead of the two evaluated (10-90 MiB lower peaks, the
    same speed; docs/batch.md, ninth session). One chunk more may be read until the first evaluation ends:
    it builds the place programs (~0.4 s for the catalogue) while the other worker waits for them, and
    the reader has that core (the full catalogue at 1M rows: 0.98x the wall time of reading one ahead
    throughout, against 1.03x without it). The thread starts at once: run_batch reads the first chunks
    while the rules (and their models) load. A consumer that takes more than IN_FLIGHT + 1 chunks must
    call finished() once per chunk it is done with. Errors are raised in the consumer, in order."""

    def __init__(self, items: Iterable[Any], alive: int = IN_FLIGHT):
        import queue

        self.q: queue.Queue = queue.Queue()
        self.slots = threading.Semaphore(alive + 1)
        self.lock = threading.Lock()
        self.first = True  # the extra slot is the first evaluation's: its end releases none
        self.done = object()
        self.stop = threading.Event()
        self.items = items
        threading.Thread(target=self._work, name="batch-reader", daemon=True).start()

    def _work(self) -> None:
        try:
            items = iter(self.items)
            while True:
                while not self.slots.acquire(timeout=0.1):
                    if self.stop.is_set():
                        return
                if self.stop.is_set():
                    return
                item = next(items, self.done)
                self.q.put((item, None))
                if item is self.done:
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self.q.put((None, e))

    def finished(self, *_: Any) -> None:
        """One chunk taken from this reader is done with (a future's done-callback): another may be read
        (but not after the first: the extra slot is then given back)."""
        with self.lock:
            first, self.first = self.first, False
        if not first:
            self.slots.release()

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                item, err = self.q.get()
                if err is not None:
                    raise err
                if item is self.done:
                    return
                yield item
        finally:
            self.stop.set()

    def close(self) -> None:
        """Stop reading (also when never iterated)."""
        self.stop.set()


def _empty_output(src: TableSource, rules, long: bool, meta: dict[str, str], facts_to_collect: bool = True
                  ) -> pl.DataFrame:
    from .chunk import evaluate_chunk

    raw = pl.DataFrame({h: pl.Series([], dtype=pl.String) for h in src.header})
    res = evaluate_chunk(raw, dt.date.fromisoformat(meta["evaluated_on"]), rules, 0, long,
                         facts_to_collect=facts_to_collect)
    return res.long.frame() if long else res.summary
