"""Hostile company lists, made at run time (nothing binary is committed): name -> (file name, bytes).

Each entry is one of the inputs that crashed the batch or the app, or gave a silently wrong answer
(issue 18); tests/test_fuzz_files.py says what each must now give.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from typing import Callable

HEADER = ["企业名称", "所在省份", "所在城市", "所在县（市、区）", "所属行业", "从业人员", "上年度营业收入"]
ROW = ["甲公司", "河北省", "石家庄市", "长安区", "餐饮业", 40, 3_000_000]


def xlsx(rows: list[list], formats: dict[tuple[int, int], int | str] | None = None,
         extra: dict[str, object] | None = None) -> bytes:
    """An .xlsx of `rows` (xlsxwriter); formats: (row, col) -> built-in number format id or format text;
    extra: cell reference -> value written far from the table."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False})
    ws = wb.add_worksheet()
    made: dict = {}
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            fmt = (formats or {}).get((r, c))
            if fmt is not None and fmt not in made:
                made[fmt] = wb.add_format({"num_format": fmt})
            f = made.get(fmt) if fmt is not None else None
            if isinstance(v, (dt.date, dt.datetime)):
                ws.write_datetime(r, c, v, f or wb.add_format({"num_format": "yyyy-mm-dd"}))
            elif isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool)):
                ws.write_number(r, c, v, f)
            elif v is None:
                continue
            else:
                ws.write(r, c, v, f)
    for ref, v in (extra or {}).items():
        ws.write(ref, v)
    wb.close()
    return buf.getvalue()


def with_error_cell() -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet()
    ws.write_row(0, 0, HEADER)
    ws.write_row(1, 0, ROW[:5])
    ws.write_formula(1, 5, "=1/0", None, "#DIV/0!")
    ws.write_row(2, 0, ROW)
    wb.close()
    return buf.getvalue()


def raw_xlsx(sheet_rows: bytes, shared: bytes | tuple[bytes, bytes, int] | None = None, sheet_prefix: str = "") -> bytes:
    """A minimal workbook around hand-written sheetData (for what no writer produces on purpose)."""
    p = f"{sheet_prefix}:" if sheet_prefix else ""
    ns = (f'xmlns:{sheet_prefix}="http://schemas.openxmlformats.org/spreadsheetml/2006/main"' if sheet_prefix
          else 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                   'spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType='
                   '"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
                   'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
                   'relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.'
                   'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
                   'openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
                   + ('<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                      'relationships/sharedStrings" Target="sharedStrings.xml"/>' if shared is not None else "")
                   + '</Relationships>')
        if isinstance(shared, tuple):  # (head, tail, megabytes of "A" between): written a block at a time
            with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
                f.write(shared[0])
                for _ in range(shared[2]):
                    f.write(b"A" * (1 << 20))
                f.write(shared[1])
        elif shared is not None:
            z.writestr("xl/sharedStrings.xml", shared)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0"?><{p}worksheet {ns}><{p}sheetData>'.encode())
            f.write(sheet_rows)
            f.write(f"</{p}sheetData></{p}worksheet>".encode())
    return buf.getvalue()


def numbers_sheet(rows: int, cols: int = 10) -> bytes:
    """Rows of small numbers with a header: compresses about 50:1."""
    letters = [chr(65 + i) for i in range(cols)]
    out = [b'<row r="1">' + b"".join(b'<c r="%s1" t="inlineStr"><is><t>c%d</t></is></c>' % (c.encode(), i)
                                     for i, c in enumerate(letters)) + b"</row>"]
    for r in range(2, rows + 1):
        out.append(b'<row r="%d">' % r + b"".join(b'<c r="%s%d"><v>1</v></c>' % (c.encode(), r) for c in letters)
                   + b"</row>")
    return b"".join(out)


def csv_bytes(text: str) -> bytes:
    return text.encode("utf-8")


GOOD_CSV = ",".join(HEADER) + "\n" + ",".join(str(v) for v in ROW) + "\n"


def makers() -> dict[str, Callable[[], tuple[str, bytes]]]:
    """Every hand-made case of the issue, by name: a function making (file name, bytes)."""
    head = [HEADER]
    return {
        # crashes
        "far_cell_xlsx": lambda: ("far.xlsx", xlsx(head + [ROW], extra={"XFD1048576": "x"})),
        "far_row_xlsx": lambda: ("far_row.xlsx", xlsx(head + [ROW], extra={"A1048576": "x"})),
        "huge_exponent_text": lambda: ("ovf.xlsx", xlsx(head + [ROW[:5] + ["1e1000000", 1], ROW])),
        "huge_exponent_csv": lambda: ("ovf.csv", csv_bytes(GOOD_CSV + "乙,河北省,石家庄市,长安区,餐饮业,1e1000000,5\n")),
        "lone_surrogate_jsonl": lambda: ("s.jsonl", b'{"name": "\\udc80x", "province": "\\u6cb3\\u5317\\u7701"}\n'
                                            b'{"name": "ok", "province": "\\u6cb3\\u5317\\u7701"}\n'),
        "shared_strings_bomb": lambda: ("ss.xlsx", raw_xlsx(b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>',
                                                    shared=(b'<sst xmlns="http://schemas.openxmlformats.org/'
                                                            b'spreadsheetml/2006/main"><si><t>', b"</t></si></sst>", 80))),
        "rows_bomb_xlsx": lambda: ("bomb.xlsx", raw_xlsx(numbers_sheet(60_000))),
        "no_refs_wide_row": lambda: ("norefs.xlsx", raw_xlsx(b'<row><c t="inlineStr"><is><t>a</t></is></c></row><row>'
                                                     + b"<c><v>1</v></c>" * 3000 + b"</row>")),
        "prefixed_far_cell": lambda: ("pfx.xlsx", raw_xlsx(b'<x:row r="1"><x:c r="A1"><x:v>1</x:v></x:c></x:row>'
                                                   b'<x:row r="9"><x:c r="ZZZ9"><x:v>1</x:v></x:c></x:row>',
                                                   sheet_prefix="x")),
        "zip_not_xlsx": lambda: ("z.xlsx", _zip({"hello.txt": b"hi"})),
        "broken_zip": lambda: ("b.xlsx", b"PK\x03\x04" + b"\x00" * 100),
        # silently wrong answers
        "excel_date_in_number": lambda: ("d.xlsx", xlsx(head + [ROW[:5] + [dt.datetime(2020, 1, 1), 1], ROW])),
        "cjk_date_format": lambda: ("cjk.xlsx", xlsx(head + [ROW[:5] + [43831, 1], ROW], formats={(1, 5): 31})),
        "excel_error_cell": lambda: ("err.xlsx", with_error_cell()),
        "big_float_cell": lambda: ("big.xlsx", xlsx(head + [ROW[:5] + [1e20, 1], ROW])),
        "decimal_comma": lambda: ("comma.csv", csv_bytes(GOOD_CSV + '乙,河北省,石家庄市,长安区,餐饮业,"1,5",5\n')),
        "cr_only": lambda: ("cr.csv", GOOD_CSV.replace("\n", "\r").encode() + "乙,河北省,石家庄市,长安区,餐饮业,5,5\r".encode()),
        "duplicate_header": lambda: ("dup.csv", csv_bytes("企业名称,从业人员,从业人员\n甲,5,7\n")),
        "unclosed_quote": lambda: ("q.csv", csv_bytes(GOOD_CSV + '乙,"河北省,石家庄市,长安区,餐饮业,5,5\n'
                                             "丙,河北省,石家庄市,长安区,餐饮业,6,6\n丁,河南省,郑州市,,零售业,7,7\n")),
        "unclosed_quote_header": lambda: ("qh.csv", csv_bytes('企业名称,"所在省份\n甲,河北省\n')),
        "duplicate_json_key": lambda: ("k.jsonl", '{"province": "河北省", "employees": 5, "employees": 7}\n'.encode()),
        "invisible_place": lambda: ("zw.csv", csv_bytes("企业名称,所在省份,所在城市,所在县（市、区）,主体类型,所属行业,从业人员,上年度营业收入\n"
                                                "甲,河北省,石家庄市,长安区,企业,餐饮业,40,3000000\n"
                                                "乙,河北省,石家庄市\u200b,\u200f长安区,企业,餐饮业,40,3000000\n")),
        "unknown_place": lambda: ("place.csv", csv_bytes(GOOD_CSV + "乙,河北省,石家桩市,长安区,餐饮业,40,3000000\n")),
        "too_many_columns": lambda: ("wide.csv", csv_bytes(",".join(f"c{i}" for i in range(2000)) + "\n" + "1," * 1999 + "1\n")),
        "too_many_keys": lambda: ("wide.jsonl", (json.dumps({f"k{i}": 1 for i in range(2000)}) + "\n").encode()),
        "deep_json_line": lambda: ("deep.jsonl", b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b'}\n{"province": "\\u6cb3\\u5317\\u7701"}\n'),
        # data that turns into code
        "formula_text": lambda: ("f.csv", csv_bytes("企业名称,@cmd,所在省份\n\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-1+1,河北省\n"
                                            "+86 138,-5,河北省\n")),
    }


def hostile() -> dict[str, tuple[str, bytes]]:
    """Every case made."""
    return {k: make() for k, make in makers().items()}


def _zip(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in parts.items():
            z.writestr(k, v)
    return buf.getvalue()
