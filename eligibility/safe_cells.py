"""Text that a spreadsheet would run as a formula, made inert for every export (CSV and Excel).

A company name such as =HYPERLINK("http://…","点击") or a header starting with @ is data here, but a
spreadsheet opening the export would treat it as a formula (CSV injection, OWASP). In CSV such a
cell gets a leading apostrophe, as OWASP advises; .xlsx exports write every text as a string cell
(xlsxwriter's strings_to_formulas off). Plain numbers ("-5", "+86") are left as they are: they are
not formulas.
"""

from __future__ import annotations

import re
from typing import Any

TRIGGERS = "=+-@\t\r"
_TRIGGER_RE = r"^[=+\-@\t\r]"
_NUMBER_RE = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?%?$"
_NUMBER = re.compile(_NUMBER_RE)
XLSX_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False}


def cell(value: Any) -> Any:
    """One value for a CSV cell: text a spreadsheet would run gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in TRIGGERS and value and not _NUMBER.match(value):
        return "'" + value
    return value


def frame(df):
    """A polars frame for CSV: every text column and every column name made inert."""
    import polars as pl

    text = [c for c, t in df.schema.items() if t in (pl.String, pl.Categorical, pl.Enum)]
    if text:
        exprs = []
        for c in text:
            col = pl.col(c).cast(pl.String)
            risky = col.str.contains(_TRIGGER_RE) & ~col.str.contains(_NUMBER_RE)
            exprs.append(pl.when(risky.fill_null(False)).then(pl.lit("'") + col).otherwise(col).alias(c))
        df = df.with_columns(exprs)
    names = {c: cell(c) for c in df.columns if cell(c) != c}
    return df.rename(names) if names else df
