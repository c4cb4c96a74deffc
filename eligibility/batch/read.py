"""Reading company lists: CSV (UTF-8, GB18030, UTF-16; any line ends), JSON Lines, Excel and Parquet,
from a path or bytes, in chunks of whole rows.

Its own module because it is the one part that knows file formats and nothing of rules: open_table
checks limits and detects format, encoding, separator and header before anything is parsed; a
TableSource yields raw chunks whose cells are text as the file holds them. A problem with one row
(ragged, unclosed quote, bad JSON, an Excel error cell) is that row's READ_ERRORS text, never a
refusal of the file; BatchInputError is raised only when the file as a whole cannot be read.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import polars as pl

from ..errors import BatchInputError, InputLimitError
from ..xlsx_guard import MAX_COLUMNS, ReadLimits

if TYPE_CHECKING:  # numpy is imported where it is used: `eligibility batch` starts reading before it loads
    import numpy as np

READ_ERRORS = "__errors__"  # read_table's column of per-row reading problems (ragged rows, bad JSON)
DEFAULT_CHUNK_ROWS = 200_000  # ~1.2 GB peak on the bench list; larger chunks spread each program's fixed cost
ERROR_SEP = " | "
BLOCK_BYTES = 16 << 20
MAX_RECORD_BYTES = 64 << 20
SAMPLE_BYTES = 1 << 20
Source = str | os.PathLike | bytes | bytearray | memoryview


# the app's upload: everything checked before parsing keeps a hostile file under ~1 GiB of memory (the
# Excel reader's grid of 2,001 × 1,024 cells at most; a CSV or JSON Lines file of 5 MB)
UPLOAD_LIMITS = ReadLimits(max_bytes=5 * 1024 * 1024, max_rows=2000, max_cells=4_000_000, max_xml_bytes=64 << 20,
                           formats=("csv", "xlsx", "jsonl"), legacy_excel=False)


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
            for block in scan_records(f, self.separator, self.name, len(self.header)):
                yield self._parse_part(block)

    def _parse_part(self, block: "Block | tuple") -> pl.DataFrame:
        if not isinstance(block, Block):
            block = Block(*block)
        part, nfields = block.part, block.counts
        n_cols = len(self.header)
        if nfields is None:  # scan_records: every record has n_cols fields unless one has more
            df = self._polars_part(part, block.n_records, strict=True) \
                if self.encoding == "utf-8" and not block.any_blank() else None
            if df is not None:
                return df
            nfields = _field_counts(part, block.starts, self.separator)
        starts, ends = block.starts, block.ends
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
            import numpy as np

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

    def _polars_part(self, utf8: bytes, n_records: int, strict: bool = False) -> pl.DataFrame | None:
        """polars' reader on a block of whole records; None when it refuses (invalid UTF-8, odd quoting,
        strict: a record with too many fields) or splits the records differently from the scan."""
        try:
            df = pl.read_csv(utf8, has_header=False, new_columns=self.header, separator=self.separator,
                             schema={h: pl.String for h in self.header}, truncate_ragged_lines=not strict,
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
    from ..facts import norm_header, default_facts

    if len(fields) > MAX_COLUMNS:
        raise InputLimitError(f"{name}: 表头有{len(fields):,}列，最多{MAX_COLUMNS:,}列 / the header has {len(fields):,} "
                              f"columns; at most {MAX_COLUMNS:,} are read")
    facts = default_facts()
    seen: dict[str, int] = {}
    for i, f in enumerate(fields, start=1):
        h = "" if f is None else str(f).strip().lstrip("\ufeff")
        if not h or facts.column_for(h) is None:
            continue
        key = norm_header(h)
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


def scan_records(f, sep: str, name: str, n_fields: int | None = None
                  ) -> Iterator[tuple[bytes, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Split a CSV byte stream into blocks of whole records (quotes balanced at each record end).

    Yields (bytes, record starts, record ends (exclusive, before the newline), fields per record).
    Works on UTF-8 and GB18030 alike: neither uses the bytes of '\\n', '"' or separators inside a
    multi-byte character. Fields per record is None for a block without quotes whose separators add up
    to n_fields per record: then every record has n_fields fields unless one has more, which the
    caller's strict read notices (counting per record costs more than the rest of the scan).
    """
    sep_b = ord(sep)
    carry = b""
    eof = False
    first_block, scratch = True, None
    while not eof:
        block = _whole_records(f, BLOCK_BYTES) if not carry else None
        if block is None:
            block = f.read(BLOCK_BYTES)
        eof = not block
        buf = carry + block if carry else block
        if not buf:
            break
        if n_fields is not None and n_fields > 1 and buf.find(b'"') < 0 and (cut := buf.rfind(b"\n") + 1) and \
                (cut == len(buf) or not eof):
            # no quote (the common case), whole records up to the last newline: when the separators add up
            # to n_fields a record, the record bounds are left to be found if asked (Block)
            if first_block:  # bytes.count takes 2-3x numpy's time but needs no numpy, which then loads while this
                # block is read: `eligibility batch` starts reading ~0.05 s sooner
                n_records, n_seps = buf.count(b"\n", 0, cut), buf.count(sep.encode(), 0, cut)
                first_block = False
            else:
                import numpy as np

                whole = np.frombuffer(buf, dtype=np.uint8, count=cut)
                if scratch is None or len(scratch) < cut:
                    scratch = np.empty(cut, dtype=np.bool_)
                n_records = _count_byte(whole, 10, scratch)
                n_seps = _count_byte(whole, sep_b, scratch)
            if n_seps == (n_fields - 1) * n_records:
                part, carry = buf[:cut], buf[cut:]
                yield Block(part, None, None, None, n_records)
                continue
        import numpy as np

        a = np.frombuffer(buf, dtype=np.uint8)
        if buf.find(b'"') < 0:  # no quote in the block: every newline ends a record
            ends = _final_ends(np.flatnonzero(a == 10), buf, eof,
                               f"{name}: 一行超过{MAX_RECORD_BYTES >> 20} MB / a row longer than "
                               f"{MAX_RECORD_BYTES >> 20} MB")
            if ends is None:
                carry = buf
                continue
            cut = int(ends[-1]) + 1
            part, carry = buf[:cut], buf[cut:]
            starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
            if n_fields is not None and \
                    np.count_nonzero(a[:cut] == sep_b) == (n_fields - 1) * len(starts):
                yield part, starts, ends.astype(np.int64), None
            else:
                yield part, starts, ends.astype(np.int64), _field_counts(part, starts, sep)
            continue
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
            yield from _unclosed(buf, int(ends[-1]) + 1 if len(ends) else 0, sep, name, n_fields)
            return
        found = len(ends)
        ends = _final_ends(ends, buf, eof, f"{name}: 引号不配对，无法分行 / unbalanced quotes: no end of row "
                                           f"found in {MAX_RECORD_BYTES >> 20} MB")
        if ends is None:
            carry = buf
            continue
        if len(ends) > found:  # the last record, without a newline, ends after the last special
            end_at = np.append(end_at, len(special))
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


_PROBE_BYTES = 1 << 16


def _whole_records(f, size: int) -> bytes | None:
    """Up to `size` bytes of a plain or in-memory file, ending after the last newline among them (or at the
    end of the file), read in one piece: no carried tail to join to the next block, no slice to copy
    (two copies of every block fewer). None when it cannot tell (another kind of stream, no newline in
    the block's last 64 KiB): the caller reads `size` bytes and carries the tail."""
    if type(f) not in (io.BufferedReader, io.BytesIO):
        return None
    pos, span = f.tell(), min(size, _PROBE_BYTES)
    f.seek(pos + size - span)
    probe = f.read(span)
    f.seek(pos)
    if len(probe) < span:  # the file ends within this block: all of it
        return f.read(size)
    k = probe.rfind(b"\n")
    return f.read(size - span + k + 1) if k >= 0 else None


def _count_byte(a: np.ndarray, byte: int, scratch: np.ndarray) -> int:
    """How many bytes of `a` equal `byte`, comparing into a reused buffer (no fresh 16 MB to fault in)."""
    import numpy as np
    eq = scratch[:len(a)]
    np.equal(a, byte, out=eq)
    return int(np.count_nonzero(eq))


def _final_ends(ends: np.ndarray, buf: bytes, eof: bool, too_long: str) -> np.ndarray | None:
    """A block's record ends made final: at the end of the file the last record may lack its newline;
    before it, a block with no record end is carried over to the next read (None), up to a limit."""
    import numpy as np
    if eof:
        if len(ends) == 0 or ends[-1] != len(buf) - 1:
            return np.append(ends, len(buf))  # last record without a newline
        return ends
    if len(ends) == 0:
        if len(buf) > MAX_RECORD_BYTES:
            raise BatchInputError(too_long)
        return None
    return ends


def _field_counts(part: bytes, starts: np.ndarray, sep: str) -> np.ndarray:
    """Fields per record of a block without quotes: 1 + its separators."""
    import numpy as np
    return np.add.reduceat(np.frombuffer(part, dtype=np.uint8) == ord(sep), starts, dtype=np.int64) + 1


UNCLOSED = -1  # scan_records' field count of a line whose quote is never closed
UNCLOSED_MESSAGE = "行: 引号未闭合（该行按原样读取，未评估）/ row: a quote (\") opened in this row is never closed"


class Block:
    """A block of whole records from scan_records: (bytes, record starts, record ends, fields per record)
    when unpacked. Made with no bounds (n_records newline-ended records without quotes whose separators
    add up to n_fields > 1 a record), it finds them only when asked: polars reads such a block whole and
    needs none.""" 

    __slots__ = ("part", "counts", "n_records", "_starts", "_ends")

    def __init__(self, part: bytes, starts: np.ndarray | None, ends: np.ndarray | None, counts: np.ndarray | None,
                 n_records: int | None = None):
        self.part, self.counts, self._starts, self._ends = part, counts, starts, ends
        self.n_records = len(starts) if n_records is None else n_records

    def _bounds(self) -> None:
        import numpy as np
        ends = np.flatnonzero(np.frombuffer(self.part, dtype=np.uint8) == 10).astype(np.int64)
        self._ends, self._starts = ends, np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)

    @property
    def starts(self) -> np.ndarray:
        if self._starts is None:
            self._bounds()
        return self._starts

    @property
    def ends(self) -> np.ndarray:
        if self._ends is None:
            self._bounds()
        return self._ends

    def any_blank(self) -> bool:
        """A record that is empty or only a CR (what _blank_records finds). Made without bounds: none that
        a strict read would keep. Its separators add up to n_fields - 1 (≥ 1) per record, so an empty record
        (no separator) means another with too many, which polars' strict read refuses: the block is then
        read again with its bounds and field counts."""
        if self._starts is None:
            return False
        return bool(_blank_records(self.part, self._starts, self._ends).any())

    def __iter__(self) -> Iterator[Any]:
        return iter((self.part, self.starts, self.ends, self.counts))


def _unclosed(buf: bytes, start: int, sep: str, name: str, n_fields: int | None = None
              ) -> Iterator[tuple[bytes, np.ndarray, np.ndarray, np.ndarray | None]]:
    """The end of a file from a record whose quote is never closed: the records before it, that line on
    its own (UNCLOSED: kept with an error), then the following lines read again as records."""
    import numpy as np
    if start:
        yield from scan_records(io.BytesIO(buf[:start]), sep, name, n_fields)
    tail = buf[start:]
    nl = tail.find(b"\n")
    line = tail if nl < 0 else tail[:nl]
    if line.strip(b"\r \t"):
        yield line, np.array([0], dtype=np.int64), np.array([len(line)], dtype=np.int64), np.array([UNCLOSED])
    if nl >= 0 and nl + 1 < len(tail):
        yield from scan_records(io.BytesIO(tail[nl + 1:]), sep, name, n_fields)


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
    import numpy as np
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
    kept: dict[tuple[int, int], str] = {}  # cells the reader could not give as text, kept as the sheet has them
    for err in (cell_errors.errors if cell_errors is not None else ()):
        row, col = err.offset_position
        if row < 1 or col >= len(names):
            continue
        is_fact = facts.column_for(names[col]) is not None
        date = _EXCEL_DATE.search(err.detail)
        if date:  # a number formatted as a date, beyond any date (calamine gives no text for it)
            number = _number_text(date.group(1))
            if is_fact:
                errors.setdefault(row - 1, []).append(
                    f"{names[col]}: 单元格是日期格式，但数值{number}超出日期范围 / the cell is formatted as a date but "
                    f"holds {number}, beyond any date")
            else:  # another column: passed through as the number it holds (the row is not lost)
                kept[(row - 1, col)] = number
            continue
        kind = re.sub(r"^.*got '?Error\(|\)'?$", "", err.detail)
        if is_fact:
            errors.setdefault(row - 1, []).append(f"{names[col]}: 单元格是Excel错误值（{kind}）/ the cell holds an Excel "
                                                  f"error ({kind})")
        else:
            kept[(row - 1, col)] = _EXCEL_ERRORS.get(kind, f"#{kind}")
    body = df.slice(1).rename(dict(zip(df.columns, names)))
    if kept:
        body = body.with_columns(_put_cells(body[names[c]], [(r, v) for (r, cc), v in kept.items() if cc == c])
                                 for c in sorted({c for _, c in kept}))
    body = body.with_columns(pl.Series(READ_ERRORS, [ERROR_SEP.join(errors[i]) if i in errors else None
                                                     for i in range(body.height)], dtype=pl.String))
    empty = pl.all_horizontal(pl.all().is_null())
    body = body.filter(~empty)
    return body if errors else body.drop(READ_ERRORS)


_EXCEL_DATE = re.compile(r"ExcelDateTime \{ value: ([-+0-9.eE]+)")
# calamine's CellErrorType names -> what Excel shows in the cell
_EXCEL_ERRORS = {"Div0": "#DIV/0!", "NA": "#N/A", "Name": "#NAME?", "Null": "#NULL!", "Num": "#NUM!", "Ref": "#REF!",
                 "Value": "#VALUE!", "GettingData": "#GETTING_DATA"}


def _number_text(v: str) -> str:
    """A cell's number as the reader writes numbers (95051806.0 -> "95051806")."""
    try:
        f = float(v)
    except ValueError:
        return v
    return str(int(f)) if f.is_integer() and abs(f) < 2**63 else repr(f)


def _put_cells(col: pl.Series, cells: list[tuple[int, str]]) -> pl.Series:
    out = col.clone()
    out.scatter([r for r, _ in cells], pl.Series([v for _, v in cells], dtype=pl.String))
    return out


def _rechunk(parts: Iterable[pl.DataFrame], n: int) -> Iterator[pl.DataFrame]:
    """Exactly n rows per chunk whatever the parts (output files then do not depend on the reader), each
    column in one piece: polars reads a 16 MB block as ~10 pieces, and evaluating a chunk of ~20 pieces
    costs ~10 % more than joining them first (in the reader's thread)."""
    pending: list[pl.DataFrame] = []
    have = 0
    for part in parts:
        while part.height:
            take = min(n - have, part.height)
            pending.append(part.slice(0, take))
            part = part.slice(take)
            have += take
            if have == n:
                yield _joined(pending)
                pending, have = [], 0
    if pending:
        yield _joined(pending)


def _joined(parts: list[pl.DataFrame]) -> pl.DataFrame:
    return (pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]).rechunk()
