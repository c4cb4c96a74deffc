"""Writing results: CSV, Parquet or Excel, with the `<output>.manifest.json` sidecar.

Its own module because the output's bytes are decided here alone (the same whatever engine or chunk
size produced the frames): categoricals are spelt out as strings a slice at a time, text a spreadsheet
would run is made inert (safe_cells), and a file appears under its name only once complete.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import polars as pl

from ..errors import BatchInputError

if TYPE_CHECKING:
    from .chunk import LongForm  # duck-typed here: height, slice(start, n) and head(0) give plain frames

WRITE_ROWS = 100_000  # output rows converted and written at a time
# a long form's input columns are put back (LongForm) for at most this many cells at a time: a list with 1,000
# extra columns is written 5,000 long rows at a time, not 100,000 (which would take ~2 GB of strings)
WRITE_INPUT_CELLS = 5_000_000
# what produced a file (rules_version, evaluated_on, tool_version) is constant: it is written once, in the
# Parquet metadata, the Excel `about` sheet and the `<output>.manifest.json` sidecar, not in every row
MANIFEST_SUFFIX = ".manifest.json"
EXCEL_MAX_ROWS = 1_048_575


def plain_strings(df: pl.DataFrame) -> pl.DataFrame:
    """Categorical columns as plain strings (what the outputs and the public API hold)."""
    import polars.selectors as cs

    return df.with_columns(cs.categorical().cast(pl.String))


class Writer:
    """Writes the result frames with polars' own writers: CSV appended a slice at a time, Parquet streamed
    by one sink (its row groups encoded on polars' threads, the versions in the file metadata), Excel at
    the end. Every format gets the `<output>.manifest.json` sidecar (what produced the file), and files
    appear under their names only when complete."""

    def __init__(self, path: Path, meta: dict[str, str], sheet: str = "results"):
        self.path = path
        self.kind = path.suffix.lower()
        if self.kind not in (".csv", ".xlsx", ".parquet"):
            raise BatchInputError(f"{path}: 输出格式应为 .csv、.xlsx 或 .parquet / the output must end in .csv, "
                                  f".xlsx or .parquet")
        self.meta = meta
        self.sheet = sheet
        self.first = True
        self.frames: list[pl.DataFrame] = []
        self.rows = 0
        self.tmp = path.with_name(path.name + ".part")
        self.manifest = path.with_name(path.name + MANIFEST_SUFFIX)

    def write_all(self, frames: Iterable[pl.DataFrame | LongForm]) -> None:
        """Every frame (at least one, maybe empty: it gives the columns), in order. A chunk's LongForm
        gets its input columns back a write slice at a time (never the whole chunk's at once)."""
        if self.kind == ".parquet":
            self._sink_parquet(iter(frames))
            return
        for df in frames:
            self.write(df)

    def write(self, df: pl.DataFrame | LongForm) -> None:
        """Append rows, a slice at a time: the long form holds its texts as categoricals, and a whole
        chunk of them spelt out at once would take several times its memory."""
        for part in self._slices(df):
            self._write(part)

    @staticmethod
    def _slices(df: pl.DataFrame | LongForm) -> Iterator[pl.DataFrame]:
        step = WRITE_ROWS
        width = getattr(df, "input_width", 0)  # a LongForm: its input columns are gathered for each slice
        if width:
            step = max(1, min(WRITE_ROWS, WRITE_INPUT_CELLS // width))
        for start in range(0, max(df.height, 1), step):
            yield plain_strings(df.slice(start, step))

    def _sink_parquet(self, frames: Iterator[pl.DataFrame | LongForm]) -> None:
        """One streaming sink fed by the frames as they come (an IO source of polars': a generator it pulls
        from): no pyarrow, no per-row copies, and a bounded number of frames in memory."""
        from polars.io.plugins import register_io_source

        head = [next(frames)]  # popped when written: a chunk is not kept alive for the whole run
        schema = plain_strings(head[0].head(0)).schema
        failed: list[BaseException] = []

        def source(with_columns, predicate, n_rows, batch_size) -> Iterator[pl.DataFrame]:
            try:
                for df in _chain(head, frames):
                    for part in self._slices(df):
                        self.rows += part.height
                        if part.schema != schema:
                            part = part.cast(dict(schema))
                        yield part if with_columns is None else part.select(with_columns)
            except BaseException as e:  # raised again in the caller as it was, not as polars wraps it
                failed.append(e)
                raise

        md = {f"eligibility.{k}": v for k, v in self.meta.items()}
        try:
            # zstd level 1: on the 1M bench summary 23 % less CPU than polars' default level, and 4 % smaller
            register_io_source(source, schema=schema).sink_parquet(
                self.tmp, compression="zstd", compression_level=1, metadata=md, row_group_size=WRITE_ROWS)
        except BaseException:
            if failed:
                raise failed[0] from None
            raise
        self.first = False

    def _write(self, df: pl.DataFrame) -> None:
        self.rows += df.height
        if self.kind == ".csv":
            from .. import safe_cells

            with open(self.tmp, "wb" if self.first else "ab") as f:  # text a spreadsheet would run: made inert
                safe_cells.frame(df).write_csv(f, include_header=self.first, include_bom=self.first)
        else:
            if self.rows > EXCEL_MAX_ROWS:
                raise BatchInputError(f"{self.path}: Excel最多{EXCEL_MAX_ROWS}行，请改用.csv或.parquet / too many rows "
                                      f"for Excel; write .csv or .parquet")
            self.frames.append(df)
        self.first = False

    def close(self, facts: dict[str, Any] | None = None) -> None:
        if self.kind == ".xlsx":
            import xlsxwriter

            df = pl.concat(self.frames) if self.frames else pl.DataFrame()
            created = dt.datetime.combine(dt.date.fromisoformat(self.meta["evaluated_on"]), dt.time())
            from ..safe_cells import XLSX_OPTIONS

            wb = xlsxwriter.Workbook(str(self.tmp), {"constant_memory": False, **XLSX_OPTIONS})  # text stays text
            wb.set_properties({"created": created, "comments": json.dumps(self.meta)})
            df.write_excel(wb, worksheet=self.sheet, autofit=False)
            about = wb.add_worksheet("about")
            for r, (k, v) in enumerate(self.meta.items()):
                about.write(r, 0, k)
                about.write(r, 1, v)
            wb.close()
        manifest = {**self.meta, "output": self.path.name, "form": self.sheet, "rows": self.rows, **(facts or {})}
        part = self.manifest.with_name(self.manifest.name + ".part")
        part.write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", "utf-8")
        if self.tmp.exists():
            os.replace(self.tmp, self.path)
        elif self.kind == ".csv":
            self.path.write_bytes(b"")
        os.replace(part, self.manifest)

    def abort(self) -> None:
        for p in (self.tmp, self.manifest.with_name(self.manifest.name + ".part")):
            if p.exists():
                p.unlink()


def _chain(head: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    while head:
        yield head.pop()
    yield from rest
