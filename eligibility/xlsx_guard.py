"""An .xlsx workbook checked before the Excel reader loads it, and mended where it would be misread.

The reader (calamine, through fastexcel) holds the sheet as a dense grid: every row × every column
from its first to its last non-empty cell. A single value at XFD1048576 asks for 17 billion cells
(~512 GB) and the process aborts; a 2 MB zip can also expand to gigabytes of XML. So, before any
parsing, on the zip's own decompressed streams (sizes counted, never trusted from the headers): the
parts the reader reads, and the first sheet's rows, columns and cells, against ReadLimits. A value
beyond a limit is named by its row or cell reference. Empty styled cells (<c r="XFD9" s="1"/>) do
not count: the reader skips them too.

East-Asian Excel's built-in date formats (numFmtId 27-36 and 50-58, e.g. 2020年1月1日) are not
dates to the reader: such a cell reads as its serial number (2020-01-01 as 43,831 employees). Their
styles are given format 14, a date format it knows, in a rewritten copy of the workbook: the cell
then reads as "2020-01-01 00:00:00", which a number fact refuses by name and a date fact reads.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass

from .errors import BatchInputError, InputLimitError

CHUNK = 1 << 20
MAX_PARTS = 10_000  # entries in the zip
MAX_SMALL_PART = 16 << 20  # workbook.xml, its relationships, styles.xml
MAX_ROW_BYTES = 64 << 20  # one <row> element
MAX_COLUMNS = 1024
EXCEL_MAX_COLUMNS = 16_384
CJK_DATE_FORMATS = frozenset(range(27, 37)) | frozenset(range(50, 59))
DATE_FORMAT = 14  # m/d/yyyy: a built-in date format the reader knows

_NAME = rb"[A-Za-z_][\w.-]*"


@dataclass(frozen=True)
class ReadLimits:
    """What a company-list reader accepts, checked before the file is parsed."""

    max_bytes: int | None = None  # the file itself
    max_rows: int | None = None  # data rows (the header aside)
    max_cells: int = 64_000_000  # an .xlsx sheet's rows × columns, as the reader allocates them (32 bytes each)
    max_xml_bytes: int = 4 << 30  # an .xlsx part (sheet, shared strings), decompressed
    max_columns: int = MAX_COLUMNS
    formats: tuple[str, ...] = ("csv", "xlsx", "parquet", "jsonl")
    legacy_excel: bool = True  # .xls: its size is bounded by the format (65,536 × 256), not checked here


@dataclass
class SheetShape:
    rows: int = 0  # rows holding a value
    cells: int = 0  # cells holding a value (an upper bound)
    first_row: int | None = None
    last_row: int = 0
    width: int = 0  # the widest column holding a value (0: A-Z only)
    widest: str = ""  # a reference of a cell in that column


def col_letters(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def col_number(letters: bytes | str) -> int:
    n = 0
    for ch in letters.decode() if isinstance(letters, bytes) else letters:
        n = n * 26 + ord(ch) - 64
    return n


def _fail(name: str, zh: str, en: str, limit: bool = False) -> BatchInputError:
    return (InputLimitError if limit else BatchInputError)(f"{name}: {zh} / {en}")


def check(data: bytes, name: str, limits: ReadLimits) -> bytes:
    """The workbook as the reader should get it (mended styles, else `data` itself); BatchInputError when
    it is not a readable .xlsx or goes beyond `limits`."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise _fail(name, "不是有效的Excel文件", f"not a valid .xlsx workbook ({e})") from None
    with zf:
        if len(infos) > MAX_PARTS:
            raise _fail(name, f"Excel文件包含{len(infos):,}个部件，过多", f"the workbook has {len(infos):,} parts; "
                                                                 f"at most {MAX_PARTS:,} are read", limit=True)
        parts = {i.filename: i for i in infos}
        if "xl/workbook.xml" not in parts:
            raise _fail(name, "不是.xlsx工作簿（.xlsb、.ods请另存为.xlsx或CSV）",
                        "not an .xlsx workbook (save .xlsb or .ods files as .xlsx or CSV)")
        workbook = _read(zf, parts["xl/workbook.xml"], name, MAX_SMALL_PART)
        rels_info = parts.get("xl/_rels/workbook.xml.rels")
        rels = _read(zf, rels_info, name, MAX_SMALL_PART) if rels_info else b""
        sheet = _first_sheet(workbook, rels, parts)
        if sheet is None:
            raise _fail(name, "工作簿中没有工作表", "the workbook has no worksheet")
        if "xl/sharedStrings.xml" in parts:
            _measure(zf, parts["xl/sharedStrings.xml"], name, limits.max_xml_bytes)
        styles = _read(zf, parts["xl/styles.xml"], name, MAX_SMALL_PART) if "xl/styles.xml" in parts else None
        scan_sheet(zf, parts[sheet], name, limits)
        mended = mend_styles(styles) if styles is not None else None
        if mended is None:
            return data
        return _rewrite(zf, infos, {"xl/styles.xml": mended}, name)


def _zip_errors():
    return (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError, ValueError)


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limit: int) -> bytes:
    """A part decompressed, refused beyond `limit` bytes (counted, not taken from the zip header)."""
    try:
        with zf.open(info) as f:
            out = f.read(limit + 1)
    except _zip_errors() as e:
        raise _fail(name, f"Excel文件已损坏（{info.filename}）", f"damaged workbook: {info.filename}: {e}") from None
    if len(out) > limit:
        raise _fail(name, f"Excel文件的{info.filename}超过{limit >> 20} MB",
                    f"{info.filename} expands to more than {limit >> 20} MB", limit=True)
    return out


def _measure(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limit: int) -> int:
    total = 0
    try:
        with zf.open(info) as f:
            while block := f.read(CHUNK):
                total += len(block)
                if total > limit:
                    raise _fail(name, f"Excel文件的{info.filename}解压后超过{limit >> 20} MB",
                                f"{info.filename} expands to more than {limit >> 20} MB", limit=True)
    except BatchInputError:
        raise
    except _zip_errors() as e:
        raise _fail(name, f"Excel文件已损坏（{info.filename}）", f"damaged workbook: {info.filename}: {e}") from None
    return total


def _attr(attrs: bytes, key: bytes) -> str | None:
    m = re.search(rb"(?:^|\s)" + key + rb"\s*=\s*[\"']([^\"']*)[\"']", attrs)
    return m.group(1).decode("utf-8", "replace") if m else None


def _first_sheet(workbook: bytes, rels: bytes, parts: dict) -> str | None:
    """The part of the workbook's first sheet (the one the reader loads), else the first worksheet part."""
    m = re.search(rb"<(?:" + _NAME + rb":)?sheet\s([^>]*)>", workbook)
    if m:
        rid = re.search(rb"\s?" + _NAME + rb":id\s*=\s*[\"']([^\"']*)[\"']", m.group(1))
        if rid:
            for rel in re.finditer(rb"<(?:" + _NAME + rb":)?Relationship\s([^>]*)>", rels):
                if _attr(rel.group(1), b"Id") == rid.group(1).decode("utf-8", "replace"):
                    target = _attr(rel.group(1), b"Target") or ""
                    path = target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target)
                    if path in parts:
                        return path
    sheets = sorted(p for p in parts if p.startswith("xl/worksheets/") and p.endswith(".xml"))
    return sheets[0] if sheets else None


def scan_sheet(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: ReadLimits) -> SheetShape:
    """Rows, columns and cells holding a value, read from the decompressed stream a block at a time;
    BatchInputError naming the row or cell once a limit is passed.

    A quick pass (C-speed searches over each block) bounds them from above; only a sheet it finds over
    a limit, or with cells lacking a reference, gets the exact pass (row by row: empty styled cells
    and rows left out, as the reader leaves them)."""
    quick = SheetShape()
    irregular = _stream(zf, info, name, limits, lambda work, rx: _quick(work, rx, quick))
    if not irregular and _over(quick, limits) is None:
        return quick
    exact = SheetShape()
    prev = [0]

    def rows(work: bytes, rx: _Regexes) -> bool:
        prev[0] = _rows(work, rx, exact, prev[0], name, limits)
        return False

    _stream(zf, info, name, limits, rows)
    return exact


def _stream(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: ReadLimits, step) -> bool:
    """step(whole rows of the sheet's XML, regexes) for each block; whether any step said True."""
    total = 0
    carry = b""
    regex = None
    flagged = False
    try:
        with zf.open(info) as f:
            while True:
                block = f.read(CHUNK)
                total += len(block)
                if total > limits.max_xml_bytes:
                    raise _fail(name, f"工作表解压后超过{limits.max_xml_bytes >> 20} MB",
                                f"the sheet expands to more than {limits.max_xml_bytes >> 20} MB", limit=True)
                buf = carry + block
                if regex is None:
                    m = re.search(rb"<(?:(" + _NAME + rb"):)?sheetData\b", buf)
                    if m is None:
                        if not block:
                            return flagged  # no sheetData: an empty sheet
                        carry = buf[-256:]
                        continue
                    regex = _Regexes(m.group(1) + b":" if m.group(1) else b"")
                if block:
                    cut = buf.rfind(regex.row_end)
                    if cut < 0:
                        if len(buf) > MAX_ROW_BYTES:
                            raise _fail(name, "工作表中有一行超过64 MB", "a row of the sheet is over 64 MB", limit=True)
                        carry = buf
                        continue
                    cut += len(regex.row_end)
                    work, carry = buf[:cut], buf[cut:]
                else:
                    work, carry = buf, b""
                flagged = step(work, regex) or flagged
                if not block:
                    break
    except BatchInputError:
        raise
    except _zip_errors() as e:
        raise _fail(name, "Excel文件已损坏（工作表）", f"damaged workbook: the sheet: {e}") from None
    return flagged


def _quick(work: bytes, rx: "_Regexes", shape: SheetShape) -> bool:
    """Upper bounds from one block: every row that is not self-closing, the widest cell reference.
    True when a row or cell has no reference where writers put it (then the exact pass is needed)."""
    import numpy as np

    nums = rx.row_number.findall(work)
    if nums:
        ints = np.array(nums).astype(np.int64)  # parsed in C
        top, low = int(ints.max()), int(ints.min())
        shape.last_row = max(shape.last_row, top)
        shape.first_row = low if shape.first_row is None else min(shape.first_row, low)
        shape.rows += len(nums)
    if rx.beyond_z.search(work):  # a column beyond Z
        # no reference with a row number after the letters: max() of nothing, a damaged sheet as before
        w = widest_reference(work) or col_number(max(
            rx.ref4.findall(work) or rx.ref3.findall(work) or rx.ref2.findall(work), key=lambda b: (len(b), b)))
        if w > shape.width:
            shape.width, shape.widest = w, col_letters(w)
    c, r = rx.cell_open, rx.row_open
    return (work.count(c + b" ") != work.count(rx.cell_ref) or work.count(r + b" ") != work.count(rx.row_ref)
            or c + b">" in work or r + b">" in work)


def widest_reference(work: bytes) -> int:
    """The largest column number among the references r="XX…9" of two letters or more in `work` (0: none),
    in numpy: the same as the largest col_number of every match of r="([A-Z]{2,})\\d, without making a
    bytes object per cell (a 40-column sheet has 30,000 such references per block). A reference of more
    than 8 letters is far beyond any limit: it counts as 26**8 plus its length."""
    import numpy as np

    a = np.frombuffer(work, np.uint8)
    n = len(a)
    if n < 6:
        return 0
    up = (a >= 65) & (a <= 90)
    start = np.flatnonzero((a[:-4] == 114) & (a[1:-3] == 61) & (a[2:-2] == 34) & up[3:-1] & up[4:]) + 3
    if not len(start):
        return 0
    length = np.full(len(start), 2)
    while True:  # the letters of each reference
        idx = start + length
        inside = idx < n
        more = np.zeros(len(start), bool)
        more[inside] = up[idx[inside]]
        if not more.any():
            break
        length += more
    end = start + length
    inside = end < n
    digit = np.zeros(len(start), bool)
    digit[inside] = (a[end[inside]] >= 48) & (a[end[inside]] <= 57)
    start, length = start[digit], length[digit]
    if not len(start):
        return 0
    top = int(length.max())
    if top > 8:
        return 26 ** 8 + top
    start = start[length == top]
    value = np.zeros(len(start), np.int64)
    for k in range(top):
        value = value * 26 + (a[start + k].astype(np.int64) - 64)
    return int(value.max())


def _over(shape: SheetShape, limits: ReadLimits) -> str | None:
    if shape.width > limits.max_columns:
        return "columns"
    if limits.max_rows is not None and shape.rows > limits.max_rows + 1:
        return "rows"
    if (shape.last_row - (shape.first_row or 1) + 1) * max(shape.width, 26) > limits.max_cells:
        return "cells"
    return None


class _Regexes:
    def __init__(self, p: bytes):
        q = re.escape(p)
        self.row_end = b"</" + p + b"row>"
        self.row = re.compile(rb"<" + q + rb"row\b([^>]*?)/>|<" + q + rb"row\b([^>]*)>(.*?)</" + q + rb"row>", re.S)
        self.value_cell = re.compile(rb"<" + q + rb"c\b[^>]*(?<!/)>")
        self.cell_open = b"<" + p + b"c"
        tail = rb"\d+[\"'][^>]*?(?<!/)>"
        self.wide4 = re.compile(rb"<" + q + rb"c\s[^>]*?\br\s*=\s*[\"']([A-Z]{4,})" + tail)
        self.wide3 = re.compile(rb"<" + q + rb"c\s[^>]*?\br\s*=\s*[\"']([A-Z]{3})" + tail)
        self.wide2 = re.compile(rb"<" + q + rb"c\s[^>]*?\br\s*=\s*[\"']([A-Z]{2})" + tail)
        # the quick pass: references as the writers put them, first attribute of the tag
        self.row_open = b"<" + p + b"row"
        self.row_number = re.compile(rb"<" + q + rb"row\s+r=\"(\d+)\"[^>]*(?<!/)>")
        self.cell_ref = b"<" + p + b'c r="'
        self.row_ref = b"<" + p + b'row r="'
        self.beyond_z = re.compile(rb'r="[A-Z]{2}')
        self.ref4 = re.compile(rb'r="([A-Z]{4,})\d')
        self.ref3 = re.compile(rb'r="([A-Z]{3})\d')
        self.ref2 = re.compile(rb'r="([A-Z]{2})\d')


_ROW_NUMBER = re.compile(rb"(?:^|\s)r\s*=\s*[\"'](\d+)[\"']")


def _rows(work: bytes, rx: _Regexes, shape: SheetShape, prev: int, name: str, limits: ReadLimits) -> int:
    for m in rx.row.finditer(work):
        attrs = m.group(1) if m.group(1) is not None else m.group(2)
        r = _ROW_NUMBER.search(attrs)
        prev = int(r.group(1)) if r else prev + 1
        body = m.group(3)
        if not body or not rx.value_cell.search(body):
            continue  # no value in this row (empty styled cells are skipped by the reader as well)
        shape.rows += 1
        shape.first_row = prev if shape.first_row is None else min(shape.first_row, prev)
        shape.last_row = max(shape.last_row, prev)
        k = body.count(rx.cell_open)
        shape.cells += k
        if body.count(b" r=") < k and k > shape.width:  # cells without references: placed one after another
            shape.width, shape.widest = k, f"{col_letters(min(k, EXCEL_MAX_COLUMNS))}{prev}"
        wide = rx.wide4.findall(body) or rx.wide3.findall(body) or rx.wide2.findall(body)
        if wide:
            w = max(col_number(x) for x in wide)
            if w > shape.width:
                shape.width, shape.widest = w, f"{col_letters(w)}{prev}"
        _limits(shape, name, limits)
    return prev


def _limits(shape: SheetShape, name: str, limits: ReadLimits) -> None:
    if shape.width > limits.max_columns:
        raise _fail(name, f"单元格{shape.widest}在第{shape.width:,}列，最多读取{limits.max_columns:,}列；请删除表格右侧的多余内容",
                    f"cell {shape.widest} is in column {shape.width:,}; at most {limits.max_columns:,} columns are "
                    f"read: delete the stray values right of the table", limit=True)
    if limits.max_rows is not None and shape.rows > limits.max_rows + 1:
        raise _fail(name, f"名单超过{limits.max_rows:,}行", f"the list has more than {limits.max_rows:,} rows", limit=True)
    span = shape.last_row - (shape.first_row or 1) + 1
    cells = span * max(shape.width, 26)
    if cells > limits.max_cells:
        raise _fail(name, f"工作表从第{shape.first_row:,}行到第{shape.last_row:,}行（{cells:,}个单元格），超过上限{limits.max_cells:,}；"
                          f"请删除表格下方的多余内容（第{shape.last_row:,}行），或另存为CSV",
                    f"the sheet spans rows {shape.first_row:,} to {shape.last_row:,} ({cells:,} cells, over the limit "
                    f"of {limits.max_cells:,}): delete the stray values below the table (row {shape.last_row:,}) "
                    f"or save the list as CSV", limit=True)


def mend_styles(styles: bytes) -> bytes | None:
    """styles.xml with the cell formats that use an East-Asian built-in date format (and no custom
    definition of it) given format 14; None when there are none."""
    m = re.search(rb"<(?:" + _NAME + rb":)?cellXfs\b[^>]*>(.*?)</(?:" + _NAME + rb":)?cellXfs>", styles, re.S)
    if m is None:
        return None
    custom = {int(x) for x in re.findall(rb"<(?:" + _NAME + rb":)?numFmt\s[^>]*?numFmtId\s*=\s*[\"'](\d+)", styles)}
    changed = False

    def fix(x: re.Match) -> bytes:
        nonlocal changed
        n = int(x.group(2))
        if n in CJK_DATE_FORMATS and n not in custom:
            changed = True
            return x.group(1) + str(DATE_FORMAT).encode() + x.group(3)
        return x.group(0)

    body = re.sub(rb"(\snumFmtId\s*=\s*[\"'])(\d+)([\"'])", fix, m.group(1))
    return styles[:m.start(1)] + body + styles[m.end(1):] if changed else None


def _rewrite(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], replace: dict[str, bytes], name: str) -> bytes:
    out = io.BytesIO()
    try:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for info in infos:
                if info.filename in replace:
                    z.writestr(info.filename, replace[info.filename])
                    continue
                with zf.open(info) as src, z.open(info.filename, "w", force_zip64=True) as dst:
                    while block := src.read(CHUNK):
                        dst.write(block)
    except BatchInputError:
        raise
    except _zip_errors() as e:
        raise _fail(name, "Excel文件已损坏", f"damaged workbook: {e}") from None
    return out.getvalue()
