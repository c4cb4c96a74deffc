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

The modules, in the order the data flows through them (each imports only those before it):
    read    files -> raw chunks of text cells (TableSource, open_table, read_table)
    encode  raw cells -> typed fact columns, per-row errors, inexact rows (ColumnPlan, encode_frame)
    plan    the rule set, chunk sizes, which compiled Program runs on which rows (program_for)
    chunk   one chunk -> summary and long rows, columnar or reference (evaluate_chunk, collect_facts)
    write   result frames -> .csv/.parquet/.xlsx and the manifest (Writer)
    run     the glue: evaluate_frame, evaluate_upload, run_batch, BatchSummary
    dask    the same chunks on a Dask cluster (engine="dask"; eligibility.distributed re-exports it)
Names are public here as they were when this was one module; a tuning constant (MIN_CHUNK_ROWS,
BLOCK_BYTES, ...) is read from its own module, so change it there.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    **dict.fromkeys(("AMOUNT", "OVERFLOW_MESSAGE", "ChunkResult", "LongForm", "collect_facts", "evaluate_chunk"),
                    "chunk"),
    **dict.fromkeys(("LONG_COLUMNS", "RESULT_COLUMNS", "ColumnPlan", "Encoded", "Parsed", "encode_frame",
                     "encode_value", "parse_column"), "encode"),
    **dict.fromkeys(("LONG_CHUNK_ROWS", "MIN_CHUNK_ROWS", "SLICE_RULE_ROWS", "program_for"), "plan"),
    **dict.fromkeys(("BLOCK_BYTES", "DEFAULT_CHUNK_ROWS", "ERROR_SEP", "MAX_RECORD_BYTES", "READ_ERRORS",
                     "SAMPLE_BYTES", "UNCLOSED", "UNCLOSED_MESSAGE", "UPLOAD_LIMITS", "Source", "TableSource",
                     "open_table", "read_table", "show_name"), "read"),
    **dict.fromkeys(("IN_FLIGHT", "BatchSummary", "evaluate_frame", "evaluate_upload", "run_batch"), "run"),
    **dict.fromkeys(("EXCEL_MAX_ROWS", "MANIFEST_SUFFIX", "WRITE_INPUT_CELLS", "WRITE_ROWS"), "write"),
}


def __getattr__(name: str) -> Any:
    """The names are imported from their module on first use (PEP 562): `from eligibility.batch import
    run_batch` starts reading a list before the engine's modules (columnar, the rule models) are loaded."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    # read
    "BLOCK_BYTES", "DEFAULT_CHUNK_ROWS", "ERROR_SEP", "MAX_RECORD_BYTES", "READ_ERRORS", "SAMPLE_BYTES",
    "UNCLOSED", "UNCLOSED_MESSAGE", "UPLOAD_LIMITS", "Source", "TableSource", "open_table", "read_table",
    "show_name",
    # encode
    "LONG_COLUMNS", "RESULT_COLUMNS", "ColumnPlan", "Encoded", "Parsed", "encode_frame", "encode_value",
    "parse_column",
    # plan
    "LONG_CHUNK_ROWS", "MIN_CHUNK_ROWS", "SLICE_RULE_ROWS", "program_for",
    # chunk
    "AMOUNT", "OVERFLOW_MESSAGE", "ChunkResult", "LongForm", "collect_facts", "evaluate_chunk",
    # write
    "EXCEL_MAX_ROWS", "MANIFEST_SUFFIX", "WRITE_INPUT_CELLS", "WRITE_ROWS",
    # run
    "IN_FLIGHT", "BatchSummary", "evaluate_frame", "evaluate_upload", "run_batch",
]
