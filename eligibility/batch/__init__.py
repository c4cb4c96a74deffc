"""Company lists: read any table, evaluate every row against every rule, write one row per company.

    read_table(source, name=None) -> polars.DataFrame           # CSV/XLSX/Parquet/JSONL, path or bytes
    evaluate_frame(df, on, rules=None, progress=None) -> polars.DataFrame   # summary rows
    run_batch(input, output, on, long=False, engine="polars", scheduler=None, chunk_rows=...) -> BatchSummary

Nothing is lost: every input row gives an output row, in order; a row whose values do not fit the
fact dictionary keeps its place with an `errors` text naming each bad field and is not evaluated.
Values are parsed as FactSpec.parse parses them: vectorised for plain numbers, and for everything
else once per distinct value by FactSpec.parse itself. Rules are evaluated by columnar.Program;
the few rows it cannot hold exactly (numbers with more than three decimals) go through
evaluate.evaluate(), and the few amounts whose float bound straddles a half-fen through
evaluate.compute_amount(). engine="single" runs every row through evaluate() (the reference).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import polars as pl

from ..validity import as_date
from .. import __version__
from ..columnar import (PLAIN_COLLECT, SCALE, STATUS_CODES, TOP_FACTS, Program, decode_mask, dtype_of,
                       scale_of)
from ..conditions import OPERATORS, Compare, Group
from ..errors import BatchInputError, CompanyValidationError, InputLimitError
from ..facts import NUMERIC_TYPES, FactDictionary, FactSpec, FactValueError
from ..xlsx_guard import MAX_COLUMNS, ReadLimits

READ_ERRORS = "__errors__"  # read_table's column of per-row reading problems (ragged rows, bad JSON)
DEFAULT_CHUNK_ROWS = 200_000  # ~1.2 GB peak on the bench list; larger chunks spread each program's fixed cost
LONG_CHUNK_ROWS = 25_000  # --long: ~40 output rows per company (up to ~150 in 石家庄); ~1.3 GB peak
WRITE_ROWS = 100_000  # output rows converted and written at a time
SLICE_RULE_ROWS = 24_000_000  # rules × rows a program evaluates at once: 100,000 rows of the whole catalogue
MIN_CHUNK_ROWS = 5_000  # each chunk costs ~0.2 s whatever its size: evaluate_frame never uses smaller ones
ERROR_SEP = " | "
OVERFLOW_MESSAGE = "金额: 数值过大，无法计算 / amount: the figures are too large to compute"
RESULT_COLUMNS = ("row", "errors", "n_eligible", "n_undetermined", "total_amount", "total_in_effect", "total_up_to",
                  "eligible", "facts_to_collect")
LONG_COLUMNS = ("row", "errors", "rule_id", "title", "status", "amount", "per", "counted_in_total", "in_effect",
                "missing", "amount_missing")
# what produced a file (rules_version, evaluated_on, tool_version) is constant: it is written once, in the
# Parquet metadata, the Excel `about` sheet and the `<output>.manifest.json` sidecar, not in every row
MANIFEST_SUFFIX = ".manifest.json"
AMOUNT = pl.Decimal(38, 2)
BLOCK_BYTES = 16 << 20
MAX_RECORD_BYTES = 64 << 20
SPARE_FIELDS = 8
SAMPLE_BYTES = 1 << 20
EXCEL_MAX_ROWS = 1_048_575

Source = str | os.PathLike | bytes | bytearray | memoryview
# the app's upload: everything checked before parsing keeps a hostile file under ~1 GiB of memory (the
# Excel reader's grid of 2,001 × 1,024 cells at most; a CSV or JSON Lines file of 5 MB)
UPLOAD_LIMITS = ReadLimits(max_bytes=5 * 1024 * 1024, max_rows=2000, max_cells=4_000_000, max_xml_bytes=64 << 20,
                           formats=("csv", "xlsx", "jsonl"), legacy_excel=False)


# ====================================================================== reading


@dataclass
class TableSource:
    """An opened input: its format, encoding, header and a way to read it in chunks."""

    fmt: str  # csv | xlsx | parquet | jsonl
    name: str
    data: bytes | None = None  # the bytes, when not a file
    path: Path | None = None
    encoding: str = "utf-8"
    separator: str = ","
    header: list[str] = field(default_factory=list)
    data_offset: int = 0  # first byte after the header record (csv)
    cr_only: bool = False  # old Mac line ends: every CR is a line end (read as LF, byte for byte)
    workbook: bytes | None = None  # .xlsx: the workbook checked (and mended) by xlsx_guard

    def _open(self):
        f = io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")
        return _CRtoLF(f) if self.cr_only else f

    def chunks(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pl.DataFrame]:
        """Raw rows, exactly chunk_rows at a time (the last may be shorter), in file order."""
        reader = {"csv": self._csv_parts, "jsonl": self._jsonl_parts, "parquet": self._parquet_parts,
                  "xlsx": self._excel_parts}[self.fmt]
        yield from _rechunk(reader(), chunk_rows)

    # ---------------------------------------------------------------- csv

    def _csv_parts(self) -> Iterator[pl.DataFrame]:
        if self.encoding == "utf-16":
            text = _lf(_decode_all(self._open().read(), "utf-16"))
            sub = TableSource("csv", self.name, text.encode("utf-8"), encoding="utf-8", separator=self.separator)
            sub.header, sub.data_offset = _csv_header(sub.data, "utf-8", self.separator, self.name)
            yield from sub._csv_parts()
            return
        with self._open() as f:
            f.seek(self.data_offset)
            for part, starts, ends, quoted in _scan_records(f, self.separator, self.name):
                yield self._parse_part(part, starts, ends, quoted)

    def _parse_part(self, part: bytes, starts: np.ndarray, ends: np.ndarray, nfields: np.ndarray) -> pl.DataFrame:
        n_cols = len(self.header)
        if len(nfields) == 1 and nfields[0] == UNCLOSED:  # the row is kept, with its error; the next line goes on
            fields = next(csv.reader([part.decode(self.encoding, errors="replace").rstrip("\r")],
                                     delimiter=self.separator, quoting=csv.QUOTE_NONE), [])
            fields = (fields + [None] * n_cols)[:n_cols]
            return pl.DataFrame({**{h: pl.Series([v or None], dtype=pl.String) for h, v in zip(self.header, fields)},
                                 READ_ERRORS: pl.Series([UNCLOSED_MESSAGE], dtype=pl.String)})
        blank = _blank_records(part, starts, ends)
        df = self._polars_part(part, len(starts)) if self.encoding == "utf-8" else None  # polars checks UTF-8
        if df is None:
            text, bad_text, utf8 = self._decode(part)
            if not bad_text and utf8 is not part:  # re-encoded from GB18030 etc. (UTF-8 was tried above)
                df = self._polars_part(utf8, len(starts))
            if df is None:  # the csv module decides (odd quoting, undecodable bytes)
                return _python_csv_part(text, self.header, self.separator, bad_text)
        ragged = (nfields != n_cols) & ~blank
        if ragged.any():
            msgs: list[str | None] = [None] * df.height
            for i in np.flatnonzero(ragged).tolist():
                msgs[i] = _ragged_message(int(nfields[i]), n_cols)
            df = df.with_columns(pl.Series(READ_ERRORS, msgs, dtype=pl.String))
        if blank.any():
            df = df.filter(pl.Series(~blank))
        return df

    def _decode(self, part: bytes) -> tuple[str, bool, bytes]:
        """(text, whether it had undecodable bytes, its UTF-8 bytes)."""
        encoding = self.encoding
        try:
            text = part.decode(encoding)
            bad_text = False
        except UnicodeDecodeError:
            try:  # the sample was plain ASCII: the Chinese may come later, in GB18030
                text = part.decode("gb18030") if encoding == "utf-8" else part.decode(encoding, errors="strict")
                encoding, bad_text = "gb18030", False
            except UnicodeDecodeError:
                text = part.decode(self.encoding, errors="replace")
                bad_text = True
        return text, bad_text, part if encoding == "utf-8" and not bad_text else text.encode("utf-8")

    def _polars_part(self, utf8: bytes, n_records: int) -> pl.DataFrame | None:
        """polars' reader on a block of whole records; None when it refuses (invalid UTF-8, odd quoting)
        or splits the records differently from the scan."""
        try:
            df = pl.read_csv(utf8, has_header=False, new_columns=self.header, separator=self.separator,
                             schema={h: pl.String for h in self.header}, truncate_ragged_lines=True,
                             quote_char='"', infer_schema=False)
        except Exception:  # noqa: BLE001
            return None
        return df if df.height == n_records else None

    # ---------------------------------------------------------------- json lines

    def _jsonl_parts(self) -> Iterator[pl.DataFrame]:
        columns: list[str] | None = self._jsonl_keys()
        with self._open() as f:
            head = f.read(3)
            if head != codecs.BOM_UTF8:
                f.seek(0)
            carry = b""
            while True:
                block = f.read(BLOCK_BYTES)
                buf = carry + block
                if not block:
                    part, carry = buf, b""
                else:
                    cut = buf.rfind(b"\n")
                    if cut < 0:
                        carry = buf
                        continue
                    part, carry = buf[:cut + 1], buf[cut + 1:]
                if part.strip():
                    df, columns = _jsonl_part(part, columns, self.name)
                    if df.height:
                        yield df
                if not block:
                    break
        if columns is None:
            raise BatchInputError(f"{self.name}: 文件中没有数据行 / no data rows")

    def _jsonl_keys(self) -> list[str] | None:
        """Every key of the file's objects, in first-seen order (a first pass: a key that first appears in
        a late row must still become a column in every chunk). None when no line is a JSON object."""
        seen: dict[str, None] = {}
        with self._open() as f:
            for ln in f:
                ln = ln.strip()
                if not ln:
                    continue
                try:
                    obj = json.loads(ln)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    continue
                if isinstance(obj, dict):
                    seen.update(dict.fromkeys(_valid_text(str(k)) for k in obj))
                    if len(seen) > MAX_COLUMNS:
                        raise InputLimitError(f"{self.name}: 列数超过{MAX_COLUMNS}（不同的键）/ more than {MAX_COLUMNS} "
                                              f"columns (distinct keys)")
        return list(seen) if seen else None

    # ---------------------------------------------------------------- parquet / excel

    def _parquet_parts(self) -> Iterator[pl.DataFrame]:
        try:  # polars' own reader: faster than pyarrow's batches, and its strings are compact views
            source = io.BytesIO(self.data) if self.data is not None else self.path
            yield from pl.scan_parquet(source).collect_batches(chunk_size=64_000)
        except BatchInputError:
            raise
        except Exception as e:  # noqa: BLE001
            raise BatchInputError(f"{self.name}: 无法读取Parquet文件 / cannot read Parquet: {e}") from None

    def _excel_parts(self) -> Iterator[pl.DataFrame]:
        if self.workbook is not None:
            yield _read_excel(self.workbook, self.name)
        else:  # .xls
            yield _read_excel(self.data if self.data is not None else self.path.read_bytes(), self.name)


def show_name(name: str) -> str:
    """A file name fit for a one-line message (control characters escaped)."""
    return name if name.isprintable() else repr(name)


def open_table(source: Source, name: str | None = None, limits: ReadLimits | None = None) -> TableSource:
    """Detect the format (and for CSV the encoding, separator and header) without reading it all.

    `limits` (default: the command line's) are checked here, before anything is parsed: the file's
    size, its format, and for an .xlsx workbook the rows, columns and cells of its sheet
    (xlsx_guard); BatchInputError names what is over."""
    limits = limits or ReadLimits()
    if not isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike)):
        raise BatchInputError(f"{name or 'input'}: 应为文件路径或字节 / expected a file path or bytes, got "
                              f"{type(source).__name__}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data: bytes | None = bytes(source)
        path = None
        name = name or "input"
        head = data[:SAMPLE_BYTES]
        size = len(data)
    else:
        path = Path(source)
        data = None
        name = name or str(source)
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(SAMPLE_BYTES)
        except IsADirectoryError:
            raise BatchInputError(f"{name}: 是目录而不是文件 / is a folder, not a file") from None
        except (OSError, ValueError) as e:  # ValueError: a NUL in the path
            raise BatchInputError(f"{show_name(name)}: 无法打开 / cannot open: {getattr(e, 'strerror', None) or e}") from None
    if size == 0:
        raise BatchInputError(f"{name}: 文件为空（0字节）/ the file is empty (0 bytes)")
    if limits.max_bytes is not None and size > limits.max_bytes:
        raise InputLimitError(f"{name}: 文件超过{limits.max_bytes >> 20} MB / the file is over {limits.max_bytes >> 20} MB")
    fmt = _detect_format(head, name)
    if fmt not in limits.formats:
        raise BatchInputError(f"{name}: 此处不接受{fmt}格式，请用{'、'.join(limits.formats)} / {fmt} files are not "
                              f"accepted here; use {', '.join(limits.formats)}")
    src = TableSource(fmt, name, data, path)
    if fmt == "xlsx":
        from .. import xlsx_guard

        if not head.startswith(b"PK"):  # .xls: bounded by its format (65,536 rows × 256 columns)
            if not limits.legacy_excel:
                raise BatchInputError(f"{name}: 请在Excel中另存为.xlsx或CSV后上传 / old .xls workbooks are not accepted "
                                      f"here: save it as .xlsx or CSV")
        else:
            try:
                raw = data if data is not None else path.read_bytes()
            except OSError as e:
                raise BatchInputError(f"{name}: 无法打开 / cannot open: {e.strerror or e}") from None
            src.workbook = xlsx_guard.check(raw, name, limits)
    if fmt == "csv":
        src.encoding = _detect_encoding(head, name, size <= SAMPLE_BYTES)
        src.cr_only = (src.encoding != "utf-16" and b"\r\n" not in head  # lines end in CR (a LF or two in cells)
                       and head.count(b"\r") > head.count(b"\n"))
        offset = 0
        if head.startswith(codecs.BOM_UTF8):
            offset = 3
        sample = head[offset:].replace(b"\r", b"\n") if src.cr_only else head[offset:]
        if src.encoding == "utf-16":
            text = _lf(_decode_all(src._open().read(), "utf-16"))
            _check_text(text, name)
            sample = text[:SAMPLE_BYTES].encode("utf-8")
        src.separator = _sniff_separator(sample, src.encoding if src.encoding != "utf-16" else "utf-8")
        if src.encoding != "utf-16":
            with src._open() as f:
                f.seek(offset)
                size = SAMPLE_BYTES
                while True:  # a header normally fits in the sample; a quoted newline may need more
                    data = f.read(size)
                    src.header, rel = _csv_header(data, src.encoding, src.separator, name)
                    if rel < len(data) or len(data) < size or size >= MAX_RECORD_BYTES:
                        break
                    f.seek(offset)
                    size *= 8
            if rel >= len(data) and data.count(b'"') % 2:
                raise BatchInputError(f"{name}: 表头中的引号未闭合 / the header row has a quote (\") that is never closed")
            src.data_offset = offset + rel
        else:
            src.header, _ = _csv_header(text.encode("utf-8"), "utf-8", src.separator, name)
    elif fmt == "jsonl":
        src.header = []
    elif fmt == "parquet":  # the columns of a file with no rows still reach the output and the warnings
        try:
            src.header = list(pl.read_parquet_schema(io.BytesIO(src.data) if src.data is not None else src.path))
        except Exception as e:  # noqa: BLE001
            raise BatchInputError(f"{name}: 无法读取Parquet文件 / cannot read Parquet: {e}") from None
    return src


def read_table(source: Source, name: str | None = None, limits: ReadLimits | None = None) -> pl.DataFrame:
    """The whole table as read (CSV cells as text); problems with single rows are in READ_ERRORS.
    With limits.max_rows, a longer table is refused (an .xlsx one before it is loaded)."""
    src = open_table(source, name, limits)
    frames = list(src.chunks(DEFAULT_CHUNK_ROWS))
    if not frames:
        cols = src.header or []
        return pl.DataFrame({c: pl.Series([], dtype=pl.String) for c in cols})
    df = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if limits is not None and limits.max_rows is not None and df.height > limits.max_rows:
        raise InputLimitError(f"{src.name}: 名单共{df.height:,}行，超过上限{limits.max_rows:,}行 / the list has "
                              f"{df.height:,} rows, over the limit of {limits.max_rows:,}")
    return df


def _detect_format(head: bytes, name: str) -> str:
    ext = Path(name).suffix.lower()
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xlsx"
    if ext in (".parquet", ".pq"):
        raise BatchInputError(f"{name}: 不是Parquet文件 / not a Parquet file (no PAR1 header)")
    if ext in (".xlsx", ".xlsm", ".xls"):
        raise BatchInputError(f"{name}: 不是Excel文件 / not an Excel workbook")
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


def _detect_encoding(head: bytes, name: str, complete: bool) -> str:
    if head.startswith(codecs.BOM_UTF8):
        body = head[3:]
        enc = "utf-8"
    elif head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    else:
        body = head
        enc = None
    if b"\x00" in body:
        raise BatchInputError(f"{name}: 不是文本表格（含有二进制数据）/ not a text table: the file contains binary data")
    for candidate in ([enc] if enc else ["utf-8", "gb18030"]):
        dec = codecs.getincrementaldecoder(candidate)()
        try:
            dec.decode(body, final=complete)
        except UnicodeDecodeError:
            continue
        _check_text(body.decode(candidate, errors="ignore"), name)
        return candidate
    raise BatchInputError(f"{name}: 无法识别文字编码（应为UTF-8或GB18030/GBK）/ unknown text encoding: the file is "
                          f"neither UTF-8 nor GB18030/GBK (save it from Excel as CSV UTF-8, or as .xlsx)")


def _check_text(text: str, name: str) -> None:
    sample = text[:20000]
    odd = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\r\n\t") or 0xD800 <= ord(ch) < 0xE000
              or 0xE000 <= ord(ch) < 0xF900)
    if odd > max(5, len(sample) // 100):
        raise BatchInputError(f"{name}: 不是文本表格（含有控制字符）/ not a text table: binary data or control characters")


def _decode_all(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise BatchInputError(f"文字编码错误 / invalid {encoding} text at byte {e.start}") from None


def _sniff_separator(sample: bytes, encoding: str) -> str:
    line = sample.split(b"\n", 1)[0]
    counts = {sep: line.count(sep.encode()) for sep in (",", "\t", ";")}
    best = max(counts, key=lambda s: (counts[s], s == ","))
    return best if counts[best] else ","


def _csv_header(data: bytes, encoding: str, sep: str, name: str) -> tuple[list[str], int]:
    """The first non-blank record as column names, and the byte offset after it."""
    pos = 0
    while True:
        end = data.find(b"\n", pos)
        line = data[pos:] if end < 0 else data[pos:end]
        if line.strip(b"\r \t") or end < 0:
            break
        pos = end + 1
    if not line.strip(b"\r \t"):
        raise BatchInputError(f"{name}: 没有表头和数据 / no header row and no data")
    # the header record ends at the first newline outside quotes
    end, quotes, i = -1, 0, pos
    while True:
        nl = data.find(b"\n", i)
        if nl < 0:
            break
        quotes += data.count(b'"', i, nl)
        if quotes % 2 == 0:
            end = nl
            break
        i = nl + 1
    record = data[pos:] if end < 0 else data[pos:end]
    text = record.decode(encoding, errors="replace")
    try:
        csv.field_size_limit(MAX_RECORD_BYTES)
        fields = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    except (StopIteration, csv.Error) as e:
        raise BatchInputError(f"{name}: 表头无法读取 / cannot read the header row: {e}") from None
    _check_header(fields, name)
    return _clean_header(fields), (len(data) if end < 0 else end + 1)


def _check_header(fields: list[Any], name: str) -> None:
    """At most MAX_COLUMNS columns, and no fact header twice (the second would be read as a plain column
    and its values lost without a word)."""
    from ..facts import _norm_header, default_facts

    if len(fields) > MAX_COLUMNS:
        raise InputLimitError(f"{name}: 表头有{len(fields):,}列，最多{MAX_COLUMNS:,}列 / the header has {len(fields):,} "
                              f"columns; at most {MAX_COLUMNS:,} are read")
    facts = default_facts()
    seen: dict[str, int] = {}
    for i, f in enumerate(fields, start=1):
        h = "" if f is None else str(f).strip().lstrip("\ufeff")
        if not h or facts.column_for(h) is None:
            continue
        key = _norm_header(h)
        if key in seen:
            raise BatchInputError(f"{name}: 表头“{h}”出现了两次（第{seen[key]}列和第{i}列），请删除或改名其中一列 / the "
                                  f"header {h!r} appears twice (columns {seen[key]} and {i}): delete or rename one")
        seen[key] = i


def _clean_header(fields: list[Any]) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, f in enumerate(fields):
        n = "" if f is None else str(f).strip().lstrip("\ufeff")
        if not n or n.startswith("__UNNAMED__"):
            n = f"column_{i + 1}"
        if n in seen:
            seen[n] += 1
            n = f"{n}_{seen[n]}"
        seen.setdefault(n, 1)
        names.append(n)
    return names


def _ragged_message(k: int, n: int, more: bool = False) -> str:
    if more:
        return f"行: 该行至少有{k}列，表头有{n}列 / row: {k} or more fields, the header has {n}"
    return f"行: 该行有{k}列，表头有{n}列 / row: {k} fields, the header has {n}"


def _scan_records(f, sep: str, name: str) -> Iterator[tuple[bytes, np.ndarray, np.ndarray, np.ndarray]]:
    """Split a CSV byte stream into blocks of whole records (quotes balanced at each record end).

    Yields (bytes, record starts, record ends (exclusive, before the newline), fields per record).
    Works on UTF-8 and GB18030 alike: neither uses the bytes of '\\n', '"' or separators inside a
    multi-byte character.
    """
    sep_b = ord(sep)
    carry = b""
    eof = False
    while not eof:
        block = f.read(BLOCK_BYTES)
        eof = not block
        buf = carry + block
        if not buf:
            break
        a = np.frombuffer(buf, dtype=np.uint8)
        # one pass finds every newline, quote and separator ("specials"); the rest works on the far
        # fewer quotes and newlines among them
        special = np.flatnonzero((a == 10) | (a == 34) | (a == sep_b))
        kind = a[special]
        q_at = np.flatnonzero(kind == 34)  # indices into special
        nl_at = np.flatnonzero(kind == 10)
        if len(q_at):  # a newline ends a record only outside quotes (an even number of quotes before it)
            outside = (np.searchsorted(q_at, nl_at) & 1) == 0
            end_at, inner_nl = nl_at[outside], nl_at[~outside]
        else:
            end_at, inner_nl = nl_at, nl_at[:0]
        ends = special[end_at]
        if eof and len(q_at) % 2:  # a quote never closed: the rest of the file would be one field
            yield from _unclosed(buf, int(ends[-1]) + 1 if len(ends) else 0, sep, name)
            return
        if eof:
            if len(ends) == 0 or ends[-1] != len(buf) - 1:
                ends = np.append(ends, len(buf))  # last record without a newline
                end_at = np.append(end_at, len(special))
        elif len(ends) == 0:
            if len(buf) > MAX_RECORD_BYTES:
                raise BatchInputError(f"{name}: 引号不配对，无法分行 / unbalanced quotes: no end of row found in "
                                      f"{MAX_RECORD_BYTES >> 20} MB")
            carry = buf
            continue
        cut = int(ends[-1]) + 1
        part = buf[:cut] if cut <= len(buf) else buf
        carry = buf[cut:]
        starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
        rec_end = ends.astype(np.int64)
        # fields per record = 1 + its separators = 1 + its specials - its quotes and quoted newlines
        # - the separators between a pair of quotes
        n_sp = min(int(end_at[-1]) + 1, len(special))  # specials inside part
        first = np.concatenate(([0], end_at[:-1] + 1))
        counts = (end_at - first + 1).astype(np.int64)
        q_in = q_at[q_at < n_sp]
        inner_nl = inner_nl[inner_nl < n_sp]
        if len(q_in):
            not_sep = np.concatenate((q_in, inner_nl))
            counts -= np.bincount(np.searchsorted(end_at, not_sep), minlength=len(end_at))[:len(end_at)]
            if len(q_in) % 2:
                q_in = np.append(q_in, n_sp)
            opening, closing = q_in[0::2], q_in[1::2]
            inside = closing - opening - 1  # the specials between a pair are separators or quoted newlines
            if len(inner_nl):
                inside -= np.searchsorted(inner_nl, closing) - np.searchsorted(inner_nl, opening)
            owner = np.searchsorted(end_at, opening)
            counts -= np.bincount(owner, weights=inside, minlength=len(end_at))[:len(end_at)].astype(np.int64)
        yield part, starts, rec_end, counts


UNCLOSED = -1  # _scan_records' field count of a line whose quote is never closed
UNCLOSED_MESSAGE = "行: 引号未闭合（该行按原样读取，未评估）/ row: a quote (\") opened in this row is never closed"


def _unclosed(buf: bytes, start: int, sep: str, name: str) -> Iterator[tuple[bytes, np.ndarray, np.ndarray, np.ndarray]]:
    """The end of a file from a record whose quote is never closed: the records before it, that line on
    its own (UNCLOSED: kept with an error), then the following lines read again as records."""
    if start:
        yield from _scan_records(io.BytesIO(buf[:start]), sep, name)
    tail = buf[start:]
    nl = tail.find(b"\n")
    line = tail if nl < 0 else tail[:nl]
    if line.strip(b"\r \t"):
        yield line, np.array([0], dtype=np.int64), np.array([len(line)], dtype=np.int64), np.array([UNCLOSED])
    if nl >= 0 and nl + 1 < len(tail):
        yield from _scan_records(io.BytesIO(tail[nl + 1:]), sep, name)


class _CRtoLF:
    """A binary file read with every CR as LF (a file whose lines end in CR only): same length, same offsets."""

    def __init__(self, f):
        self.f = f

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n).replace(b"\r", b"\n")

    def seek(self, *args):
        return self.f.seek(*args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def _lf(text: str) -> str:
    """Text whose lines end in CR only, with LF line ends."""
    return text.replace("\r", "\n") if "\r" in text and "\n" not in text else text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid_text(text: str) -> str:
    """Text that can be written as UTF-8: a lone surrogate (from a JSON escape) becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _blank_records(part: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    lengths = ends - starts
    blank = lengths == 0
    one = np.flatnonzero(lengths == 1)
    if len(one):
        a = np.frombuffer(part, dtype=np.uint8)
        blank[one] = a[starts[one]] == 13
    return blank


def _python_csv_part(text: str, header: list[str], sep: str, bad_text: bool) -> pl.DataFrame:
    """The csv module's reading of a block polars would not take (odd quoting, bad bytes)."""
    n = len(header)
    cols: list[list[str | None]] = [[] for _ in range(n)]
    errs: list[str | None] = []
    csv.field_size_limit(MAX_RECORD_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            rec = None
            err = f"行: 无法读取 / row cannot be read: {e}"
        else:
            err = None
        if rec is not None and (not rec or (len(rec) == 1 and not rec[0].strip("\r"))):
            continue  # blank line
        if rec is None:
            rec = []
        elif len(rec) != n:
            err = _ragged_message(len(rec), n)
        if bad_text and any("\ufffd" in x for x in rec):
            err = (err + ERROR_SEP if err else "") + "行: 含有无法识别的字符（文字编码错误）/ row: invalid characters (encoding)"
        for j in range(n):
            v = rec[j] if j < len(rec) else None
            cols[j].append(v if v != "" else None)
        errs.append(err)
    data = {h: pl.Series(h, c, dtype=pl.String) for h, c in zip(header, cols)}
    df = pl.DataFrame(data) if data else pl.DataFrame({"column_1": pl.Series([], dtype=pl.String)})
    if any(e is not None for e in errs):
        df = df.with_columns(pl.Series(READ_ERRORS, errs, dtype=pl.String))
    return df


def _jsonl_part(part: bytes, columns: list[str] | None, name: str) -> tuple[pl.DataFrame, list[str]]:
    lines = [ln for ln in part.split(b"\n") if ln.strip(b" \t\r")]
    rows: list[dict[str, Any]] = []
    errs: list[str | None] = []
    for ln in lines:
        try:
            obj = json.loads(ln, object_pairs_hook=_no_duplicate_keys)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
            err = None
            if any(_SURROGATE.search(str(k)) or _SURROGATE.search(_json_cell(v) or "") for k, v in obj.items()):
                bad = [str(k) for k, v in obj.items() if _SURROGATE.search(str(k)) or _SURROGATE.search(_json_cell(v) or "")]
                obj = {_valid_text(str(k)): (None if v is None else _valid_text(_json_cell(v))) for k, v in obj.items()}
                err = (f"行: {'、'.join(_valid_text(b) for b in bad)}含有无效字符（单独的代理码位，已替换为\ufffd）/ row: "
                       f"invalid Unicode (a lone surrogate, replaced by \ufffd) in {', '.join(_valid_text(b) for b in bad)}")
            rows.append(obj)
            errs.append(err)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            rows.append({})
            errs.append(f"行: 不是有效的JSON对象 / row: not a valid JSON object ({_valid_text(str(e)[:60])})")
    if columns is None:
        seen: dict[str, None] = {}
        for r in rows:
            seen.update(dict.fromkeys(str(k) for k in r))
        columns = list(seen)
        if not columns and not any(e is None for e in errs):
            raise BatchInputError(f"{name}: 不是JSON Lines文件 / not a JSON Lines file (no line is a JSON object)")
    data = {c: pl.Series(c, [_json_cell(r.get(c)) for r in rows], dtype=pl.String) for c in columns}
    df = pl.DataFrame(data) if data else pl.DataFrame(height=len(rows))
    if any(e is not None for e in errs):
        df = df.with_columns(pl.Series(READ_ERRORS, errs, dtype=pl.String))
    return df, columns


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when it names a key twice (json.loads would keep the last silently)."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {_valid_text(k)!r} given twice")
        out[k] = v
    return out


def _json_cell(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else str(v)


def _read_excel(data: bytes, name: str) -> pl.DataFrame:
    """The first sheet, every cell as text as a CSV holds it (numbers in full, dates as
    "2020-01-01 00:00:00"): a column mixing numbers, dates and words, or a 1e20 among integers, is
    read cell by cell and each bad cell becomes its row's error, not a refusal of the file. A cell
    holding an Excel error (#DIV/0!, #N/A) in a fact column is its row's error, not an unknown."""
    import fastexcel

    from ..facts import default_facts

    try:
        sheet = fastexcel.read_excel(data).load_sheet(0, header_row=None, dtypes="string")
        batch, cell_errors = sheet.to_arrow_with_errors()
        df = pl.from_arrow(batch)
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException as e:  # noqa: BLE001 - calamine's errors name the problem; a Rust panic is a BaseException
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if "out of bounds" in msg or "out of range" in msg:  # a date-formatted cell holding, say, 1e20
            msg += " (一个日期格式的单元格中的数值超出日期范围 / a cell formatted as a date holds a number beyond any date)"
        raise BatchInputError(f"{name}: 无法读取Excel文件 / cannot read the workbook: {msg}") from None
    assert isinstance(df, pl.DataFrame)
    if df.height == 0:
        return pl.DataFrame()
    df = df.with_columns(pl.all().cast(pl.String))
    fields = list(df.row(0))
    _check_header(fields, name)
    names = _clean_header(fields)
    facts = default_facts()
    errors: dict[int, list[str]] = {}
    for err in (cell_errors.errors if cell_errors is not None else ()):
        row, col = err.offset_position
        if row >= 1 and col < len(names) and facts.column_for(names[col]) is not None:
            kind = re.sub(r"^.*got '?Error\(|\)'?$", "", err.detail)
            errors.setdefault(row - 1, []).append(f"{names[col]}: 单元格是Excel错误值（{kind}）/ the cell holds an Excel "
                                                  f"error ({kind})")
    body = df.slice(1).rename(dict(zip(df.columns, names)))
    body = body.with_columns(pl.Series(READ_ERRORS, [ERROR_SEP.join(errors[i]) if i in errors else None
                                                     for i in range(body.height)], dtype=pl.String))
    empty = pl.all_horizontal(pl.all().is_null())
    body = body.filter(~empty)
    return body if errors else body.drop(READ_ERRORS)


def _rechunk(parts: Iterable[pl.DataFrame], n: int) -> Iterator[pl.DataFrame]:
    """Exactly n rows per chunk whatever the parts: output files then do not depend on the reader."""
    pending: list[pl.DataFrame] = []
    have = 0
    for part in parts:
        while part.height:
            take = min(n - have, part.height)
            pending.append(part.slice(0, take))
            part = part.slice(take)
            have += take
            if have == n:
                yield pl.concat(pending, how="diagonal_relaxed") if len(pending) > 1 else pending[0]
                pending, have = [], 0
    if pending:
        yield pl.concat(pending, how="diagonal_relaxed") if len(pending) > 1 else pending[0]


# ====================================================================== parsing


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
    double are equal (DBL_DIG = 15): when k = round(f·1000) gives k/1000 == f, the cell is exactly k
    thousandths. Everything else (commas, '%', '元', more decimals, longer cells) is left to the
    pattern path."""
    col = pl.col(f"c{j}")
    if spec.type == "int":
        return [col.cast(pl.Int64, strict=False).alias(f"t{j}")]
    f = pl.col(f"f{j}")
    k = (f * SCALE).round(0)
    # k / SCALE correctly rounded: polars divides by a scalar through its reciprocal (an ulp off for ~1 in
    # 7 values), by a column exactly
    exact = (k / (k * 0 + SCALE) == f) & (f.abs() < 1e12) & (col.str.len_bytes() <= _PLAIN_LEN)
    return [col.cast(pl.Float64, strict=False).alias(f"f{j}"), pl.when(exact).then(k.cast(pl.Int64)).alias(f"t{j}")]


def _parse_text_columns(raw: pl.DataFrame, jobs: list[tuple[str, FactSpec]]) -> list[Parsed]:
    """parse_column for many text columns in a few polars queries (polars spreads the columns over the
    cores and releases the GIL): plain numbers by polars' number parser (_plain_number), then by
    patterns in the columns where that left cells; every other cell by FactSpec.parse, once per
    distinct value, mapped back through an Enum code. Every value read more than once is a column of
    an earlier stage: collected without optimisation, polars does not share repeated sub-expressions."""
    numeric = [j for j, (_, spec) in enumerate(jobs) if spec.type in NUMERIC_TYPES]
    a = raw.lazy().select(pl.col(h).alias(f"c{j}") for j, (h, _) in enumerate(jobs))  # no name clashes
    plain = [_plain_number(j, jobs[j][1]) for j in numeric]
    for stage in range(2):
        a = a.with_columns(p[stage] for p in plain if stage < len(p))
    a = a.collect(**PLAIN_COLLECT)
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
    uniq = a.select(pl.col(f"c{j}").filter(pl.col(f"slow{j}")).unique(maintain_order=True).implode()
                    .alias(f"u{j}") for j in range(len(jobs))).row(0)
    codes, exprs = [], []
    for j, (_, spec) in enumerate(jobs):
        if uniq[j]:
            codes.append(pl.when(pl.col(f"slow{j}")).then(pl.col(f"c{j}")).cast(pl.Enum(uniq[j])).to_physical()
                         .alias(f"code{j}"))
    a = a.with_columns(codes)
    for j, (_, spec) in enumerate(jobs):
        dtype = dtype_of(spec.type)
        values = uniq[j]
        if values:
            vals, errs, inex = _parse_values(values, spec)
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
        parsed.append(Parsed(value, out[f"error{j}"], (value.is_not_null() | inexact).alias("p"), inexact))
    return parsed


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
    errors = _consistency(frame, errors, facts)
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


def _consistency(frame: pl.DataFrame, errors: pl.Series, facts: FactDictionary) -> pl.Series:
    """facts.consistency() errors, which evaluate() raises: found by a columnar mask, worded by the
    function itself on the few rows concerned (a new check there needs a mask here: the agreement
    tests say so)."""
    from ..facts import consistency

    mask = _const(False, frame.height, pl.Boolean)
    if {"unemployment_claimants", "insured_employees"} <= set(frame.columns):
        mask = (frame["unemployment_claimants"] > frame["insured_employees"]).fill_null(False)
    places = [c for c in ("province", "city", "county") if c in frame.columns]
    if set(places) & {"city", "county"}:  # places.issues(), once per distinct place
        from ..places import issues as place_issues

        keys = frame.select(places).unique(maintain_order=True)
        bad = [bool(place_issues({k: v for k, v in rec.items() if v is not None}))
               for rec in keys.iter_rows(named=True)]
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


def _decoded(spec: FactSpec, v: Any) -> Any:
    """An encoded value back as FactSpec.parse returns it."""
    if spec.type in NUMERIC_TYPES and spec.type != "int":
        d = Decimal(v) / SCALE
        return Decimal(int(d)) if d == d.to_integral_value() else d.normalize()
    return v


# ====================================================================== evaluating


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


def _place_programs(frame: pl.DataFrame, rules, on: dt.date) -> list[tuple[Program, np.ndarray | None]]:
    """Rows grouped by the rules their province and city leave open, each group with a program of just
    those rules (None: all rows, the full program).

    A rule whose jurisdiction comparison is false for a row is ineligible whatever the other facts
    (all() with a false child), and an ineligible rule adds nothing to a summary or a long output; so
    a 河南省 row need not compute the 石家庄 rules. Places left open (unknown) keep every rule they
    could match; places that keep most of the catalogue share the full program."""
    cols = [c for c in _PLACE_FACTS if c in frame.columns]
    full = program_for(rules, on)
    if not cols or frame.height == 0 or len(full.plans) <= _SMALL_CATALOGUE:
        return [(full, None)]
    place = frame.select(cols)
    keys = place.unique(maintain_order=True)
    if keys.height == 1 and all(v is None for v in keys.row(0)):
        return [(full, None)]
    gid = place.join(keys.with_row_index("__g"), on=cols, how="left", nulls_equal=True,
                     maintain_order="left")["__g"].to_numpy()
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


def _slices(pos: np.ndarray | None, n: int, n_rules: int) -> Iterator[np.ndarray | None]:
    """A place group's rows in runs of at most SLICE_RULE_ROWS / n_rules rows (None: all n rows, at once).

    A program's working columns grow with its rules: slicing bounds a chunk's memory whatever the mix
    of places in the list (a list of 石家庄 firms meets every rule in every row)."""
    rows = n if pos is None else len(pos)
    step = max(MIN_CHUNK_ROWS, SLICE_RULE_ROWS // max(n_rules, 1))
    if rows <= step:
        yield pos
        return
    every = np.arange(n) if pos is None else pos
    for start in range(0, rows, step):
        yield every[start:start + step]


def _rules(rules, only: Iterable[str] | None = None):
    if rules is None:
        from ..evaluate import default_rules

        rules = default_rules()
    if only:
        rules = rules.select(list(only))
    return rules


@dataclass
class ChunkResult:
    summary: pl.DataFrame
    long: pl.DataFrame | None
    rows: int
    errors: int
    bad_by_column: dict[str, int]
    exact_rows: int = 0  # rows evaluated by evaluate() (inexact numbers)
    exact_amounts: int = 0  # amounts recomputed by compute_amount()


def _meta(rules, on: dt.date) -> dict[str, str]:
    meta = {"rules_version": rules.version, "evaluated_on": on.isoformat(), "tool_version": __version__}
    if getattr(rules, "only", ()):  # a selection of the rules (--only): what was evaluated
        meta["only"] = " ".join(rules.only)
    return meta


def _row_values(raw_row: dict[str, Any], plan: ColumnPlan, facts: FactDictionary) -> tuple[list[str], dict[str, Any]]:
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


def evaluate_chunk(raw: pl.DataFrame, on: Any, rules=None, row_offset: int = 0, long: bool = False,
                   engine: str = "polars", facts_to_collect: bool = True) -> ChunkResult:
    """Evaluate one chunk of raw rows (the unit of work of every engine, Dask workers included).
    facts_to_collect=False: the summary has no `facts_to_collect` column, and (unless long) the
    missing-fact masks it is ranked from are not computed."""
    rules = _rules(rules)
    on = as_date(on)
    plan = ColumnPlan.build(raw.columns, rules.facts)
    if engine == "single":
        return _reference_chunk(raw, plan, on, rules, row_offset, long, range(raw.height), facts_to_collect)
    enc = encode_frame(raw, plan, rules.facts)
    n = raw.height
    meta = _meta(rules, on)
    ok = enc.errors.is_null()
    base = pl.DataFrame({
        "row": pl.Series("row", np.arange(row_offset + 1, row_offset + n + 1), dtype=pl.Int64),
        **{out: raw[h] for h, out in plan.passthrough},
        "errors": enc.errors,
    })
    pieces: list[pl.DataFrame] = []
    long_pieces: list[pl.DataFrame] = []
    exact_amounts = 0
    overflow: list[int] = []
    groups = _place_programs(enc.frame, rules, on)
    frame, split = enc.frame, any(pos is not None for _, pos in groups)
    if split:  # the derived columns once for the chunk, not once per program
        frame = program_for(rules, on).derive(frame)
    have = set(frame.columns)
    masks = long or facts_to_collect
    for prog, whole in groups:
        for pos in _slices(whole, n, len(prog.plans)):
            if pos is None:
                res = prog.run(frame, split, masks)
            elif whole is None:  # a run of consecutive rows
                res = prog.run(frame.slice(int(pos[0]), len(pos)), split, masks)
            else:  # only the columns this program reads are gathered (derive() made them all: never none)
                res = prog.run(frame.select(c for c in prog.reads if c in have)[pos], True, masks)
            fixes = prog.ambiguous(res)
            if fixes:
                res, k, over = _fix_amounts(res, fixes, raw, plan, rules, pos)
                exact_amounts += k
                overflow += [p if pos is None else int(pos[p]) for p in over]
            summ = res.with_columns(prog.summary_exprs())  # with_columns: constants (no rules) fill every row
            n_eligible, n_undetermined, eligible = prog.status_summary(res)
            pieces.append(pl.DataFrame({
                "__pos": pl.Series(np.arange(n) if pos is None else pos, dtype=pl.Int64),
                "n_eligible": n_eligible,
                "n_undetermined": n_undetermined,
                "total_amount": summ["__total"],
                "total_in_effect": summ["__total_open"],
                "total_up_to": summ["__total_up_to"],
                "eligible": eligible,
                **({"facts_to_collect": prog.facts_to_collect(res)} if facts_to_collect else {}),
            }))
            if long:
                sub = base if pos is None else base[pos]
                long_pieces.append(_long_columnar(prog, res, sub, plan, ok if pos is None else ok.gather(pos), meta))
            del res, summ
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
            long_df = pl.concat([long_df.filter(~pl.col("row").is_in(list(drop))), ref.long]).sort(
                "row", maintain_order=True)
    return ChunkResult(summary, long_df, n, int(enc.errors.is_not_null().sum()), enc.bad_by_column,
                       exact_rows, exact_amounts)


def _finish_summary(summary: pl.DataFrame, ok: pl.Series, meta: dict[str, str]) -> pl.DataFrame:
    okc = pl.lit(ok)
    cents = lambda c: (pl.col(c).cast(AMOUNT) / pl.lit(100).cast(pl.Decimal(38, 0))).cast(AMOUNT)  # noqa: E731
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
            _, values = _row_values(row, plan, rules.facts)
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


def _long_columnar(prog: Program, res: pl.DataFrame, summary: pl.DataFrame, plan: ColumnPlan, ok: pl.Series,
                   meta: dict[str, str]) -> pl.DataFrame:
    """The long form from the program's columns: (row, rule) pairs that are eligible or undetermined,
    found at once in the status matrix (row-major, so in row then catalogue order), then each rule's
    amount, counted flag and missing facts gathered for its pairs (masks decoded once per distinct
    value)."""
    plans = prog.plans
    n = res.height
    okn = ok.to_numpy()
    if not plans or n == 0:
        return _assemble_long(_empty_hits(), prog.rules, summary, plan, meta)
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
    counted_exprs = prog.counted()
    flags = res.select(e.fill_null(False).alias(f"k{i}") for i, e in counted_exprs.items()) if counted_exprs \
        else None
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
    return _assemble_long(hits, prog.rules, summary, plan, meta, ordered=True)


_HITS = {"pos": pl.Int64, "status": pl.Int8, "amount": pl.Int64, "counted": pl.Boolean, "rule": pl.Int32,
         "missing": pl.Categorical, "amount_missing": pl.Categorical}


def _empty_hits() -> pl.DataFrame:
    return pl.DataFrame(schema=_HITS)


def _assemble_long(hits: pl.DataFrame, rules, summary: pl.DataFrame, plan: ColumnPlan, meta: dict[str, str],
                   ordered: bool = False) -> pl.DataFrame:
    """One row per company × eligible-or-undetermined rule (hits: summary position, rule index, ...),
    in row then catalogue order; a company with none keeps one empty row. The repeated texts are
    categoricals (a code per row, each text once: a long chunk has ~40 rows per company); _Writer and
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
    base = summary.select(["row", *[out for _, out in plan.passthrough], "errors"]).gather(
        np.repeat(np.arange(n), slots))
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
        (pl.col("amount").cast(AMOUNT) / pl.lit(100).cast(pl.Decimal(38, 0))).cast(AMOUNT).alias("amount"),
    )


def _plain(df: pl.DataFrame) -> pl.DataFrame:
    """Categorical columns as plain strings (what the outputs and the public API hold)."""
    import polars.selectors as cs

    return df.with_columns(cs.categorical().cast(pl.String))


# ---------------------------------------------------------------------- the reference (single) path


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
        errors, values = _row_values(row, plan, facts)
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
    meta = _meta(rules, on)
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
        long_df = _assemble_long(hits, rules, summary, plan, meta)
    return ChunkResult(summary, long_df, len(positions), n_err, bad, len(positions), 0)


# ====================================================================== frames and files


def _chunk_rows(chunk_rows: int | None, long: bool) -> int:
    """The caller's chunk size, else the default for the output form."""
    if chunk_rows is None:
        return LONG_CHUNK_ROWS if long else DEFAULT_CHUNK_ROWS
    return chunk_rows


def evaluate_frame(df: pl.DataFrame, on: Any = None, rules=None, progress: Callable[[int, int], Any] | None = None,
                   *, long: bool = False, chunk_rows: int | None = None, engine: str = "polars",
                   only: Iterable[str] | None = None, facts_to_collect: bool = True):
    """Summary rows for a table of companies (as read_table returns it); with long=True the pair
    (summary, long form). `progress(done_rows, total_rows)` is called after each chunk of chunk_rows
    rows (at least MIN_CHUNK_ROWS: a chunk has a fixed cost of a few tenths of a second). `only`: glob
    patterns of rule ids (RuleSet.select): just those rules are evaluated. facts_to_collect=False: no
    such column (and less work)."""
    rules = _rules(rules, only)
    on = as_date(on)
    chunk_rows = max(_chunk_rows(chunk_rows, long), MIN_CHUNK_ROWS)
    total = df.height
    sums, longs = [], []
    done = 0
    chunks = [df.slice(start, chunk_rows) for start in range(0, total, chunk_rows)] or [df]
    for res in _local_results(chunks, on, rules, long, engine, facts_to_collect):
        sums.append(res.summary)
        if long:
            longs.append(res.long)
        done += res.rows
        if progress is not None:
            progress(done, total)
    summary = pl.concat(sums) if len(sums) > 1 else sums[0]
    if long:
        return summary, _plain(pl.concat(longs) if len(longs) > 1 else longs[0])
    return summary


def evaluate_upload(df: pl.DataFrame, on: Any = None, rules=None, progress: Callable[[int, int], Any] | None = None,
                    *, chunk_rows: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(summary, long form) of an uploaded list, as the app shows them: the long form carries the first
    column that is not a fact (the company's name) and no other input column.

    The long form repeats a company's input columns on each of its up to ~240 rows: a 5 MB list of
    2,000 rows × 1,000 columns would take some 8 GB. The summary gets every input column back."""
    rules = _rules(rules)
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


class _Writer:
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

    def write_all(self, frames: Iterable[pl.DataFrame]) -> None:
        """Every frame (at least one, maybe empty: it gives the columns), in order."""
        if self.kind == ".parquet":
            self._sink_parquet(iter(frames))
            return
        for df in frames:
            self.write(df)

    def write(self, df: pl.DataFrame) -> None:
        """Append rows, a slice at a time: the long form holds its texts as categoricals, and a whole
        chunk of them spelt out at once would take several times its memory."""
        for part in self._slices(df):
            self._write(part)

    @staticmethod
    def _slices(df: pl.DataFrame) -> Iterator[pl.DataFrame]:
        for start in range(0, max(df.height, 1), WRITE_ROWS):
            yield _plain(df.slice(start, WRITE_ROWS))

    def _sink_parquet(self, frames: Iterator[pl.DataFrame]) -> None:
        """One streaming sink fed by the frames as they come (an IO source of polars': a generator it pulls
        from): no pyarrow, no per-row copies, and a bounded number of frames in memory."""
        from polars.io.plugins import register_io_source

        head = [next(frames)]  # popped when written: a chunk is not kept alive for the whole run
        schema = _plain(head[0].head(0)).schema
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
            register_io_source(source, schema=schema).sink_parquet(self.tmp, compression="zstd", metadata=md,
                                                                    row_group_size=WRITE_ROWS)
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
    chunk_rows = _chunk_rows(chunk_rows, long)
    if chunk_rows < 1:
        raise BatchInputError("--chunk-rows must be at least 1")
    t0 = time.perf_counter()
    on = as_date(on)
    if isinstance(input, (bytes, bytearray, memoryview)):
        src = open_table(input, "input")
    else:
        _not_the_input(input, output)
        src = open_table(input)
    out_path = Path(output)
    writer = _Writer(out_path, {}, "details" if long else "results")
    first_columns: list[list[str]] = []

    def watched(chunks: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        for c in chunks:
            if not first_columns:
                first_columns.append(list(c.columns))
            yield c

    # the first chunk is read while the rules load (rules may be a loader: the CLI's, which builds the models)
    reader = _Prefetch(watched(src.chunks(chunk_rows))) if engine != "dask" else None
    try:
        rules = _rules(rules() if callable(rules) else rules, only)
    except BaseException:
        if reader is not None:
            reader.close()
        raise
    meta = writer.meta = _meta(rules, on)
    stats = BatchSummary(str(src.name), str(out_path), src.fmt, src.encoding if src.fmt == "csv" else None, 0, 0, 0,
                         rules.version, on.isoformat(), __version__, engine, 0.0, manifest=str(writer.manifest))

    def frames(results: Iterable[ChunkResult]) -> Iterator[pl.DataFrame]:
        for res in results:
            stats.rows_read += res.rows
            stats.rows_with_errors += res.errors
            stats.exact_rows += res.exact_rows
            stats.exact_amounts += res.exact_amounts
            for k, v in res.bad_by_column.items():
                stats.bad_by_column[k] = stats.bad_by_column.get(k, 0) + v
            yield res.long if long else res.summary
            if progress is not None:
                progress(stats.rows_read, None)
        if stats.rows_read == 0:
            yield _empty_output(src, rules, long, meta, facts_to_collect)

    try:
        if engine == "dask":
            from ..distributed import evaluate_chunks

            results = evaluate_chunks(watched(src.chunks(chunk_rows)), on, rules, long=long, scheduler=scheduler,
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

    width = 1 if engine == "single" else IN_FLIGHT
    offset = 0
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="batch-eval") as pool:
        pending: deque = deque()
        try:
            for raw in (chunks if isinstance(chunks, _Prefetch) else _Prefetch(chunks)):
                pending.append(pool.submit(evaluate_chunk, raw, on, rules, offset, long, engine, facts_to_collect))
                offset += raw.height
                if len(pending) > width:  # one more queued: the workers stay busy while the caller writes
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


class _Prefetch:
    """Read the next chunk in a thread while this one is evaluated (polars and numpy release the GIL).
    The thread starts at once: run_batch reads the first chunk while the rules (and their models) load.
    It reads a chunk only once the one before was taken (at most `depth` read and not yet taken), so the
    chunks alive are bounded the same whatever the file's length. Errors are raised in the consumer, in
    order."""

    def __init__(self, items: Iterable[Any], depth: int = 1):
        import queue

        self.q: queue.Queue = queue.Queue()
        self.slots = threading.Semaphore(depth)
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

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                item, err = self.q.get()
                self.slots.release()
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
    raw = pl.DataFrame({h: pl.Series([], dtype=pl.String) for h in src.header})
    res = evaluate_chunk(raw, dt.date.fromisoformat(meta["evaluated_on"]), rules, 0, long,
                         facts_to_collect=facts_to_collect)
    return res.long if long else res.summary

