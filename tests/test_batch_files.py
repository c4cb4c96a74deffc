"""Bad files give clear messages and never a traceback; row counts in equal row counts out."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from eligibility import BatchInputError
from eligibility.batch import READ_ERRORS, evaluate_frame, read_table, run_batch
from eligibility.cli import app

ON = "2020-06-01"
GOOD = ("企业名称,所在省份,所在城市,所属行业,从业人员,上年度营业收入,受疫情影响较大\n"
        "甲公司,河北省,石家庄市,餐饮业,50,\"3,000,000\",是\n"
        "乙公司,河南省,郑州市,零售业,8,500000,否\n"
        "丙公司,四川省,广元市,catering,12,,\n")


def _run(tmp_path, data: bytes, name: str = "in.csv", out: str = "out.csv", **kw):
    src = tmp_path / name
    src.write_bytes(data)
    dst = tmp_path / out
    summary = run_batch(src, dst, on=ON, **kw)
    return summary, dst


def _cli(tmp_path, data: bytes, name: str = "in.csv"):
    src = tmp_path / name
    src.write_bytes(data)
    return CliRunner().invoke(app, ["batch", str(src), "--on", ON, "-o", str(tmp_path / "out.csv")])


# ---------------------------------------------------------------- files that cannot be read at all


@pytest.mark.parametrize("data,words", [
    (b"", "0字节"),
    (bytes(range(256)) * 20, "binary"),
    ("企业名称,省份\n甲,河北省\n".encode("utf-16-le"), "binary"),  # UTF-16 without a BOM
    (b"\x80\x81\xfe\xfd\xff" * 100, "encoding"),
    (b"PAR1 this is not parquet", "Parquet"),
    (b"\n\n  \n", "no header"),
])
def test_unreadable_files_exit_nonzero_with_a_message(tmp_path, data, words):
    res = _cli(tmp_path, data)
    assert res.exit_code != 0
    assert words.lower() in (res.output + str(res.stderr if hasattr(res, "stderr") else "")).lower()
    assert "Traceback" not in res.output
    assert not (tmp_path / "out.csv").exists()


def test_missing_file_and_folder(tmp_path):
    for path in (tmp_path / "nope.csv", tmp_path):
        res = CliRunner().invoke(app, ["batch", str(path), "-o", str(tmp_path / "o.csv")])
        assert res.exit_code == 2 and "Traceback" not in res.output


def test_excel_named_file_that_is_not_excel(tmp_path):
    with pytest.raises(BatchInputError, match="Excel"):
        _run(tmp_path, b"a,b\n1,2\n", name="x.xlsx")


def test_unknown_output_format(tmp_path):
    with pytest.raises(BatchInputError, match=".csv"):
        _run(tmp_path, GOOD.encode(), out="out.txt")


# ---------------------------------------------------------------- files that are read, with row errors


def test_gbk_and_bom_files_read_like_utf8(tmp_path):
    outs = []
    for i, data in enumerate([GOOD.encode("utf-8"), b"\xef\xbb\xbf" + GOOD.encode("utf-8"), GOOD.encode("gbk"),
                              GOOD.encode("gb18030"), b"\xff\xfe" + GOOD.encode("utf-16-le")]):
        summary, dst = _run(tmp_path, data, name=f"in{i}.csv", out=f"out{i}.csv")
        assert summary.rows_read == 3 and summary.rows_with_errors == 0
        outs.append(pl.read_csv(dst))
    for o in outs[1:]:
        assert o.equals(outs[0])


def test_ragged_rows_are_kept_with_errors(tmp_path):
    data = "a,所在省份,从业人员\n1,河北省,5\n2,河北省\n3,河北省,5,extra\n4,河南省,7\n".encode()
    summary, dst = _run(tmp_path, data)
    out = pl.read_csv(dst, infer_schema=False)
    assert summary.rows_read == 4 and out.height == 4
    assert out["a"].to_list() == ["1", "2", "3", "4"]
    errs = out["errors"].to_list()
    assert errs[0] is None and errs[3] is None
    assert "2 fields" in errs[1] and "4 fields" in errs[2]
    assert summary.rows_with_errors == 2 and summary.rows_evaluated == 2


def test_garbage_numbers_column(tmp_path):
    rows = "\n".join(f"c{i},河北省,{x}" for i, x in enumerate(["abc", "12.5", "-3", "1e999", "五十", "12%", "7"]))
    summary, dst = _run(tmp_path, ("name,省份,从业人员\n" + rows + "\n").encode())
    out = pl.read_csv(dst, infer_schema=False)
    assert out.height == 7 and summary.rows_read == 7
    assert summary.rows_with_errors == 6
    assert summary.bad_by_column == {"从业人员": 6}
    assert out["errors"][6] is None and out["n_eligible"][6] is not None
    for e in out["errors"][:6]:
        assert e.startswith("从业人员: ")
    assert any("从业人员" in line for line in summary.lines())


def test_no_fact_columns_is_a_warning_not_a_failure(tmp_path):
    summary, dst = _run(tmp_path, "名称,电话\n甲,123\n乙,456\n".encode())
    assert summary.rows_read == 2 and summary.rows_with_errors == 0
    assert any("no column matches a fact" in w for w in summary.warnings)
    out = pl.read_csv(dst, infer_schema=False)
    assert out["名称"].to_list() == ["甲", "乙"] and out["n_eligible"].to_list() == ["0", "0"]


def test_fact_columns_that_are_all_empty(tmp_path):
    """Found by the agreement property: a chunk whose only fact columns are all blank once came back
    one row short and failed. Every row is kept and knows nothing, as for a company with no facts."""
    from eligibility import Company, evaluate

    summary, dst = _run(tmp_path, "名称,所在省份,所属行业\n甲,,\n乙,,\n丙,,\n".encode())
    assert summary.rows_read == 3 and summary.rows_with_errors == 0
    out = pl.read_csv(dst, infer_schema=False)
    alone = evaluate(Company(), on=ON)
    assert out["名称"].to_list() == ["甲", "乙", "丙"]
    assert out["n_undetermined"].to_list() == [str(len(alone.by_status("undetermined")))] * 3


def test_header_only_file(tmp_path):
    summary, dst = _run(tmp_path, "名称,所在省份\n".encode())
    assert summary.rows_read == 0
    out = pl.read_csv(dst, infer_schema=False)
    assert out.height == 0 and "n_eligible" in out.columns


def test_header_only_parquet_keeps_its_columns(tmp_path):
    src = tmp_path / "in.parquet"
    pl.DataFrame({"名称": pl.Series([], dtype=pl.String), "所在省份": pl.Series([], dtype=pl.String)}).write_parquet(src)
    summary = run_batch(src, tmp_path / "out.csv", on=ON)
    assert summary.rows_read == 0
    assert not any("no column matches a fact" in w for w in summary.warnings)  # 所在省份 is the province
    out = pl.read_csv(tmp_path / "out.csv", infer_schema=False)
    assert out.height == 0 and {"名称", "n_eligible"} <= set(out.columns)


def test_quoted_newlines_blank_lines_and_crlf(tmp_path):
    data = ('名称,所在省份,备注\r\n"甲\r\n公司",河北省,"说 ""好"""\r\n\r\n乙,河南省,\r\n').encode()
    summary, dst = _run(tmp_path, data)
    out = pl.read_csv(dst, infer_schema=False)
    assert summary.rows_read == 2
    assert out["名称"].to_list() == ["甲\r\n公司", "乙"]
    assert out["备注"].to_list() == ['说 "好"', None]


def test_blank_and_ragged_lines_in_a_block_without_quotes(tmp_path):
    """A block without quotes whose separators add up (the scan then finds no record bounds) but has an
    empty line, a CR-only line and a row with one field too many: the strict read refuses it, and the
    block is read again record by record: blank lines dropped, the long row flagged, every row back."""
    data = "名称,所在省份,从业人员\n甲,河北省,5\n\n乙,河南省,6,7,9,10,11\n\r\n丙,河北省,8\n".encode()  # 10 = 2 × 5
    summary, dst = _run(tmp_path, data)
    out = pl.read_csv(dst, infer_schema=False)
    assert summary.rows_read == 3
    assert out["名称"].to_list() == ["甲", "乙", "丙"]
    assert out["errors"][0] is None and out["errors"][2] is None
    assert "7" in out["errors"][1] and "3" in out["errors"][1]


def test_duplicate_fact_columns(tmp_path):
    summary, dst = _run(tmp_path, "从业人员,employees\n5,\n,6\n5,6\n".encode())
    out = pl.read_csv(dst, infer_schema=False)
    assert out["errors"][0] is None and out["errors"][1] is None
    assert "given twice" in out["errors"][2]


def test_jsonl_with_a_bad_line(tmp_path):
    lines = [json.dumps({"名称": "甲", "province": "河北省", "employees": 5}, ensure_ascii=False),
             "{not json",
             json.dumps({"名称": "乙", "province": "河南省", "employees": "x"}, ensure_ascii=False),
             "[1, 2]"]
    summary, dst = _run(tmp_path, ("\n".join(lines) + "\n").encode(), name="in.jsonl")
    out = pl.read_csv(dst, infer_schema=False)
    assert out.height == 4 and summary.rows_with_errors == 3
    assert out["errors"][0] is None and "JSON" in out["errors"][1] and "employees" in out["errors"][2]


def test_jsonl_keys_first_seen_in_a_later_block_are_kept(tmp_path, monkeypatch):
    """A key (fact or pass-through) that first appears after the first block is still a column."""
    from eligibility.batch import read

    monkeypatch.setattr(read, "BLOCK_BYTES", 256)  # several blocks for a few rows
    rows = [{"名称": f"企业{i}", "province": "河北省", "employees": 5} for i in range(20)]
    rows.append({"名称": "晚到", "province": "河北省", "city": "石家庄市", "备注": "late key", "employees": 7})
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    _, dst = _run(tmp_path, data, name="in.jsonl", out="out.csv", chunk_rows=4)
    out = pl.read_csv(dst, infer_schema=False)
    assert out.height == 21
    assert "备注" in out.columns and out["备注"][20] == "late key" and out["备注"][0] is None
    assert "名称" in out.columns and out["名称"][20] == "晚到"
    # the late city fact was read: the last row is in Shijiazhuang, and none of the others is
    df = read_table(data, "in.jsonl")
    assert df["city"].to_list() == [None] * 20 + ["石家庄市"]


def test_read_table_marks_ragged_rows():
    df = read_table(b"a,b\n1,2\n3\n", "x.csv")
    assert df.height == 2 and READ_ERRORS in df.columns
    assert df[READ_ERRORS][0] is None and "1 fields" in df[READ_ERRORS][1]


# ---------------------------------------------------------------- fuzz: never a crash, never a hang


def _mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        op = rnd.randint(0, 4)
        pos = rnd.randint(0, max(len(b) - 1, 0))
        if op == 0 and b:
            b[pos] = rnd.randint(0, 255)
        elif op == 1:
            b[pos:pos] = rnd.choice([b'"', b",", b"\n", b"\r", b"\x00", "是".encode(), b"\xe6", b"%"])
        elif op == 2 and b:
            del b[pos:pos + rnd.randint(1, 5)]
        elif op == 3:
            b += b[: rnd.randint(0, len(b))]
        else:
            b = b[:pos]
    return bytes(b)


def _read_or_refuse(data: bytes, name: str) -> None:
    try:
        df = read_table(data, name)
    except BatchInputError as e:
        assert str(e)
        return
    assert isinstance(df, pl.DataFrame)
    from eligibility.batch import evaluate_frame

    out = evaluate_frame(df, ON)
    assert out.height == df.height


@settings(max_examples=80, deadline=10000, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_mutated_csv(seed):
    rnd = random.Random(seed)
    base = rnd.choice([GOOD.encode(), GOOD.encode("gbk"), b"\xef\xbb\xbf" + GOOD.encode()])
    _read_or_refuse(_mutate(base, rnd), rnd.choice(["f.csv", "f.txt", "f"]))


@settings(max_examples=80, deadline=10000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400))
def test_fuzz_random_bytes(data):
    _read_or_refuse(data, "r.csv")


def test_fuzz_run_batch_counts(tmp_path):
    """Whatever a mutated file reads as, the output has one row per row read."""
    rnd = random.Random(1234)
    for i in range(40):
        data = _mutate(GOOD.encode(), rnd)
        try:
            df = read_table(data, "x.csv")
        except BatchInputError:
            continue
        (tmp_path / "m.csv").write_bytes(data)
        summary = run_batch(tmp_path / "m.csv", tmp_path / "m_out.csv", on=ON)
        out = pl.read_csv(tmp_path / "m_out.csv", infer_schema=False)
        assert summary.rows_read == df.height == out.height, data


def _xlsx_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    pl.read_csv(GOOD.encode(), infer_schema=False).write_excel(buf)
    return buf.getvalue()


_XLSX = None


@settings(max_examples=60, deadline=20000, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_mutated_excel(seed):
    """A damaged .xlsx (flipped, cut, inserted bytes in the zip) is refused with a message, never a crash."""
    global _XLSX
    _XLSX = _XLSX or _xlsx_bytes()
    rnd = random.Random(seed)
    _read_or_refuse(_mutate(_XLSX, rnd), "f.xlsx")


_FIELD = st.one_of(
    st.text(st.sampled_from("ab中 1"), max_size=4),  # plain (no separator, quote or newline)
    st.text(st.sampled_from('ab,;"\n\r中 '), max_size=6).map(lambda t: '"' + t.replace('"', '""') + '"'),  # quoted
)


@settings(max_examples=200, deadline=None)
@given(records=st.lists(st.lists(_FIELD, min_size=1, max_size=6), min_size=1, max_size=12),
       sep=st.sampled_from([",", ";"]), block=st.sampled_from([5, 13, 1 << 20]), final_newline=st.booleans(),
       probe=st.sampled_from([2, 3, 1 << 16]))
def test_record_scan_counts_fields_as_the_csv_module_does(records, sep, block, final_newline, probe):
    """The byte-level scan that splits a CSV into blocks of whole records and counts each record's
    fields (for ragged-row errors) agrees with Python's csv module, whatever the block size, and
    whether or not a block's last newline falls within the probe that ends it at a record (a probe
    without one: the block is read whole and its tail carried to the next)."""
    import csv
    import io

    from eligibility.batch import read

    lines = [sep.join(r) for r in records]
    text = "\n".join(lines) + ("\n" if final_newline else "")
    if not final_newline and lines[-1] == "":
        lines.pop()  # an empty last line without a newline is no record, for either reader
    got = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(read, "BLOCK_BYTES", block)
        mp.setattr(read, "_PROBE_BYTES", probe)
        for part, starts, ends, counts in read.scan_records(io.BytesIO(text.encode("utf-8")), sep, "x"):
            got += [(part[s:e].decode("utf-8"), int(c)) for s, e, c in zip(starts, ends, counts)]
    want = [len(rec) if rec else 1 for rec in csv.reader(io.StringIO(text, newline=""), delimiter=sep)]
    assert [c for _, c in got] == want
    assert [g for g, _ in got] == lines


@settings(max_examples=200, deadline=None)
@given(records=st.lists(st.lists(_FIELD, min_size=1, max_size=4), min_size=1, max_size=12),
       width=st.integers(1, 4), block=st.sampled_from([5, 13, 1 << 20]), probe=st.sampled_from([2, 3, 1 << 16]))
def test_record_scan_leaves_counts_out_only_when_a_strict_read_would_see_every_odd_row(records, width, block, probe):
    """Told the header's width, the scan skips counting per record in a block without quotes whose
    separators add up to `width` fields a record (None): then each record has exactly `width` fields,
    or one has more (which polars' strict read refuses, and the counts are made after all)."""
    import csv
    import io

    from eligibility.batch import read

    text = "\n".join(",".join(r) for r in records) + "\n"
    want = [len(rec) if rec else 1 for rec in csv.reader(io.StringIO(text, newline=""))]
    got, pos = [], 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(read, "BLOCK_BYTES", block)
        mp.setattr(read, "_PROBE_BYTES", probe)
        for part, starts, _, counts in read.scan_records(io.BytesIO(text.encode("utf-8")), ",", "x", width):
            mine = want[pos:pos + len(starts)]
            pos += len(starts)
            if counts is None:
                assert b'"' not in part
                assert all(c == width for c in mine) or any(c > width for c in mine)
            else:
                got += list(map(int, counts))
                assert list(map(int, counts)) == mine
    assert pos == len(want)


def test_a_quote_free_file_with_a_long_and_a_short_row_flags_both(tmp_path):
    """One row too long and one too short add up to the header's width: the strict read notices."""
    src = tmp_path / "in.csv"
    src.write_text("企业名称,员工人数\n甲,10,extra\n乙\n丙,5\n", "utf-8")
    out = evaluate_frame(read_table(src), on="2020-06-01")
    errors = out["errors"].to_list()
    assert errors[0] and "3" in errors[0] and errors[1] and "1" in errors[1] and errors[2] is None


# ---------------------------------------------------------------- the console command's early read


def test_batch_read_args_guess_only_a_plain_local_read():
    from eligibility.entry import batch_read_args

    assert batch_read_args(["in.csv", "-o", "out.parquet", "--on", "2020-06-01"]) == ("in.csv", None, False)
    assert batch_read_args(["--rules=r", "in.csv", "--long", "--chunk-rows", "500", "-o", "x.csv"]) == \
        ("in.csv", 500, True)
    assert batch_read_args(["in.csv", "--engine", "polars", "--only", "sjz.*", "--no-facts-to-collect",
                            "--output=o.csv"]) == ("in.csv", None, False)
    for args in (["in.csv", "-o", "o.csv", "--engine", "dask"], ["in.csv", "-o", "o.csv", "--engine=single"],
                 ["--help"], ["a.csv", "b.csv", "-o", "o.csv"], ["in.csv", "-o", "o.csv", "--chunk-rows", "many"],
                 ["in.csv", "-o"], ["in.csv", "-o", "o.csv", "--new-option"], [], ["in.csv", "--long=yes", "-o", "x"],
                 ["in.csv", "--on", "2020-06-01"]):  # the last: no output, typer refuses it
        assert batch_read_args(args) is None, args


def test_batch_read_args_know_every_option_of_the_batch_command():
    """The guess's option lists are the command's: an option added to `batch` and not here would make
    the guess take its value for the file name (a wasted early read, never a wrong one)."""
    from typer.main import get_command

    from eligibility.entry import BATCH_FLAGS, BATCH_VALUE_OPTIONS

    cmd = get_command(app).commands["batch"]
    flags, values = set(), set()
    for p in cmd.params:
        if p.param_type_name == "option":
            (flags if p.is_flag else values).update(p.opts + p.secondary_opts)
    flags.discard("--help")
    assert values == BATCH_VALUE_OPTIONS and flags == BATCH_FLAGS


def test_run_batch_takes_over_the_early_read_of_its_own_file_only(tmp_path, monkeypatch):
    from eligibility.batch import run

    opened = []
    real_open = run.open_table
    monkeypatch.setattr(run, "open_table", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("企业名称,员工人数\n" + "".join(f"甲{i},{i}\n" for i in range(7)), "utf-8")
    b.write_text("企业名称,员工人数\n乙,5\n", "utf-8")
    want = run_batch(a, tmp_path / "plain.csv", on=ON, chunk_rows=3)
    opened.clear()

    run.read_early(str(a), 3)
    got = run_batch(a, tmp_path / "early.csv", on=ON, chunk_rows=3)
    assert len(opened) == 1 and not run._EARLY  # opened once, early; taken over
    assert (tmp_path / "early.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    assert got.rows_read == want.rows_read == 7 and got.warnings == want.warnings

    opened.clear()
    run.read_early(str(a), 3)
    other = run_batch(b, tmp_path / "b_out.csv", on=ON, chunk_rows=3)  # another file: the early read is closed
    assert opened == [str(a), b] and other.rows_read == 1 and not run._EARLY
    assert "乙" in (tmp_path / "b_out.csv").read_text("utf-8-sig")

    opened.clear()
    run.read_early(str(a), 3)
    run_batch(a, tmp_path / "chunks.csv", on=ON, chunk_rows=4)  # another chunk size: read again
    assert len(opened) == 2 and (tmp_path / "chunks.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()


def test_an_early_read_of_a_missing_file_leaves_the_error_to_the_command(tmp_path):
    from eligibility.batch import run

    run.read_early(str(tmp_path / "missing.csv"))
    assert not run._EARLY
    (tmp_path / "book.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    run.read_early(str(tmp_path / "book.xlsx"))  # workbooks are never read early
    assert not run._EARLY
    with pytest.raises(BatchInputError):
        run_batch(tmp_path / "missing.csv", tmp_path / "out.csv", on=ON)


def test_the_console_command_reads_early_and_writes_what_run_batch_writes(tmp_path):
    """The installed `eligibility` command (entry.main, with its early read) against run_batch."""
    import subprocess
    import sys

    src = tmp_path / "in.csv"
    src.write_text("企业名称,所在省份,所在城市,员工人数,营业收入\n" +
                   "".join(f"企业{i},河北省,石家庄市,{i * 7},{i * 100000}\n" for i in range(40)), "utf-8")
    run_batch(src, tmp_path / "lib.csv", on=ON, chunk_rows=16)
    exe = Path(sys.executable).with_name("eligibility")
    done = subprocess.run([str(exe), "batch", str(src), "--chunk-rows", "16", "--on", ON, "-o",
                           str(tmp_path / "cmd.csv")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cmd.csv").read_bytes() == (tmp_path / "lib.csv").read_bytes()
    assert "40" in done.stdout


def test_the_next_chunk_starts_before_a_result_is_handed_to_the_writer(monkeypatch):
    """While a result is written, the workers are both busy: the chunk after the two in flight is submitted
    before the result goes out (else one chunk is evaluated alone during each write), and no more than
    that: the raw chunks alive stay bounded."""
    import concurrent.futures

    import eligibility.batch.chunk as chunk_mod
    from eligibility.batch import run as run_mod

    submitted: list[int] = []

    class Recording(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn, raw, on, rules, offset, *args):
            submitted.append(offset)
            return super().submit(fn, raw, on, rules, offset, *args)

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", Recording)
    monkeypatch.setattr(chunk_mod, "evaluate_chunk", lambda raw, on, rules, offset, *args: offset)
    chunks = [pl.DataFrame({"x": [i] * 3}) for i in range(5)]
    seen = [(res, len(submitted)) for res in run_mod._local_results(iter(chunks), None, None, False, "polars")]
    assert [r for r, _ in seen] == [0, 3, 6, 9, 12]  # input order, each chunk once
    # when the k-th result is handed on, chunks up to k + IN_FLIGHT have been submitted (fewer at the end)
    assert [n for _, n in seen] == [min(k + run_mod.IN_FLIGHT + 1, len(chunks)) for k in range(len(chunks))]


def test_a_chunk_is_read_only_when_a_worker_is_about_to_be_free(monkeypatch):
    """Once the first evaluation has ended (it builds the programs the other waits for: one chunk more may
    be read meanwhile), at most IN_FLIGHT raw chunks are alive (read and not yet evaluated): the reader
    waits for an evaluation to end before it reads the next chunk, so no read chunk waits in memory for
    a worker. Reading one ahead of the two evaluated held a third chunk throughout (the code before
    fails this)."""
    import threading
    import time

    import eligibility.batch.chunk as chunk_mod
    from eligibility.batch import run as run_mod

    lock = threading.Lock()
    finished: list[int] = []
    alive_when_read: list[int] = []
    before_first: list[int] = []

    def chunks():
        for i in range(8):
            with lock:
                if finished:  # chunks read before this one and not yet evaluated
                    alive_when_read.append(i - len(finished))
                else:
                    before_first.append(i)
            yield pl.DataFrame({"x": [i] * 3})

    def slow(raw, on, rules, offset, *args):
        time.sleep(0.02 if offset % 2 else 0.05)  # the two workers finish out of step
        with lock:
            finished.append(offset)
        return offset

    monkeypatch.setattr(chunk_mod, "evaluate_chunk", slow)
    out = list(run_mod._local_results(chunks(), None, None, False, "polars"))
    assert out == [3 * i for i in range(8)]  # input order, each chunk once
    assert before_first == list(range(run_mod.IN_FLIGHT + 1))  # read at once, while the first is evaluated
    assert max(alive_when_read) == run_mod.IN_FLIGHT - 1, alive_when_read  # + the one being read: IN_FLIGHT


def test_the_first_block_of_a_list_is_read_before_numpy_loads(tmp_path):
    """`eligibility batch` starts reading as soon as polars is imported: numpy (~0.05 s to import) then loads
    in the main thread while the first block is read. Checked in a fresh interpreter: an `import numpy` at
    the top of the reader's modules would put it back in front of the first read."""
    import subprocess
    import sys

    csv = tmp_path / "list.csv"
    csv.write_text("name,employees,revenue\n" + "".join(f"企业{i},{i},{i * 1000}\n" for i in range(500)), "utf-8")
    code = ("import sys; from eligibility.batch.run import read_early, _EARLY; read_early(sys.argv[1]); "
            "raw = next(iter(_EARLY[0].reader)); print(raw.height, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(csv)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["500", "False"]
