"""`eligibility batch` and its Python API: formats, order, determinism, recorded versions, CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from eligibility import __version__, evaluate
from eligibility.batch import RESULT_COLUMNS, evaluate_frame, read_table, run_batch
from eligibility.cli import app

ON = dt.date(2020, 6, 1)
ROWS = [
    {"企业名称": "甲餐饮", "统一社会信用代码": "91130100MA0001", "所在省份": "河北省", "所在城市": "石家庄市",
     "所在县（市、区）": "长安区", "主体类型": "企业", "所属行业": "餐饮业", "从业人员": "50",
     "上年度营业收入": "3,000,000", "上年度月均参保职工人数": "40", "上年度领取失业保险金人数": "1",
     "上年度实际缴纳失业保险费": "12345.67", "单位每月职工医保缴费": "1234.57", "受疫情影响较大": "是"},
    {"企业名称": "乙零售", "统一社会信用代码": "91410100MA0002", "所在省份": "河南省", "所在城市": "郑州市",
     "主体类型": "个体工商户", "所属行业": "retail", "从业人员": "8", "上年度营业收入": "500000",
     "受疫情影响较大": "否"},
    {"企业名称": "丙坏数据", "统一社会信用代码": "x", "所在省份": "河北省", "从业人员": "很多"},
    {"企业名称": "丁空白"},
    {"企业名称": "戊文旅", "所在省份": "四川省", "所在城市": "广元市", "主体类型": "enterprise", "所属行业": "tourism",
     "从业人员": "15", "上年度营业收入": "800000", "营业收入同比变化": "-60%"},
]


def frame(rows=ROWS) -> pl.DataFrame:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    return pl.DataFrame({c: pl.Series([r.get(c) for r in rows], dtype=pl.String) for c in cols})


@pytest.fixture()
def csv_file(tmp_path):
    p = tmp_path / "companies.csv"
    frame().write_csv(p)
    return p


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_summary_rows_in_order_with_passthrough_and_versions(rules):
    out = evaluate_frame(frame(), ON, rules)
    assert out.height == len(ROWS)
    assert out["row"].to_list() == [1, 2, 3, 4, 5]
    assert out["企业名称"].to_list() == [r["企业名称"] for r in ROWS]
    assert out["统一社会信用代码"][0] == "91130100MA0001"
    assert set(RESULT_COLUMNS) <= set(out.columns)
    assert not {"rules_version", "evaluated_on", "tool_version"} & set(out.columns)  # once, in the manifest
    bad = out.row(2, named=True)
    assert bad["errors"].startswith("从业人员: ") and bad["n_eligible"] is None and bad["eligible"] is None
    first = out.row(0, named=True)
    report = evaluate({k: v for k, v in ROWS[0].items() if k not in ("企业名称", "统一社会信用代码")}, on=ON,
                      rules=rules)
    assert first["total_amount"] == report.total_amount
    assert first["n_eligible"] == len(report.by_status("eligible")) > 0
    assert first["eligible"].split(";") == [r.rule_id for r in report.results if r.status == "eligible"]


def test_long_form_one_row_per_company_and_benefit(rules):
    summary, long = evaluate_frame(frame(), ON, rules, long=True)
    assert set(long["row"].to_list()) == {1, 2, 3, 4, 5}
    counts = long.filter(pl.col("rule_id").is_not_null()).group_by("row").len().sort("row")
    n = dict(zip(counts["row"].to_list(), counts["len"].to_list()))
    for rec in summary.iter_rows(named=True):
        if rec["errors"] is None:
            assert n.get(rec["row"], 0) == rec["n_eligible"] + rec["n_undetermined"]
    assert long.filter(pl.col("row") == 3)["errors"][0] is not None
    assert set(long["status"].drop_nulls().unique().to_list()) <= {"eligible", "undetermined"}
    und = long.filter(pl.col("status") == "undetermined")
    assert (und["missing"] != "").all()


def test_wide_long_form_equals_the_naive_assembly(tmp_path, rules, monkeypatch):
    """The long form keeps a company's input columns once and the writer puts them back a write slice at a
    time: a wide list (200 extra columns) gives what repeating them on every long row gave, joined from
    the summary on `row`, in the same column order, whatever the chunk and write-slice boundaries."""
    import eligibility.batch.write as write
    from eligibility.batch import LONG_COLUMNS
    from eligibility.batch.chunk import provenance

    base = frame(ROWS * 60)  # 300 companies, one with bad data in every five
    extra = pl.DataFrame({f"备注{i}": [None if (i + r) % 7 == 0 else f"{i}/{r}" for r in range(base.height)]
                          for i in range(200)})
    df = pl.concat([base, extra], how="horizontal")
    summary, long = evaluate_frame(df, ON, rules, long=True)
    inputs = summary.columns[1:summary.columns.index("errors")]
    assert len(inputs) > 200 and all(f"备注{i}" in inputs for i in range(200))
    assert long.columns == ["row", *inputs, *LONG_COLUMNS[1:]]
    naive = long.select(LONG_COLUMNS).join(summary.select("row", *inputs), on="row", how="left",
                                           maintain_order="left").select(long.columns)
    assert long.equals(naive)
    assert long.height > 3 * df.height
    src = tmp_path / "wide.parquet"
    df.write_parquet(src)
    monkeypatch.setattr(write, "WRITE_ROWS", 97)  # write slices cross the chunks' boundaries
    monkeypatch.setattr(write, "WRITE_INPUT_CELLS", 10_000)  # and the long form's are narrower still
    for ext in ("csv", "parquet"):
        run_batch(src, tmp_path / f"out.{ext}", on=ON, rules=rules, long=True, chunk_rows=70)
        writer = write.Writer(tmp_path / f"naive.{ext}", provenance(rules, ON), "details")
        writer.write_all([naive])  # the whole frame at once: the form every chunk's long form had before
        writer.close()
        if ext == "csv":
            assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "naive.csv").read_bytes()
        else:
            assert pl.read_parquet(tmp_path / "out.parquet").equals(pl.read_parquet(tmp_path / "naive.parquet"))


def test_progress_callback_and_chunks(rules, monkeypatch):
    from eligibility.batch import plan

    monkeypatch.setattr(plan, "MIN_CHUNK_ROWS", 1)
    calls = []
    df = pl.concat([frame()] * 7)
    out = evaluate_frame(df, ON, rules, progress=lambda done, total: calls.append((done, total)), chunk_rows=10)
    assert calls == [(10, 35), (20, 35), (30, 35), (35, 35)]
    whole = evaluate_frame(df, ON, rules)
    assert out.equals(whole)


@pytest.mark.parametrize("out_name", ["out.csv", "out.parquet", "out.xlsx"])
def test_output_is_byte_identical_across_runs_engines_and_chunks(tmp_path, csv_file, rules, out_name):
    digests = set()
    for i, (engine, chunk) in enumerate([("polars", 200_000), ("polars", 200_000), ("single", 200_000)]):
        dst = tmp_path / f"{i}_{out_name}"
        run_batch(csv_file, dst, on=ON, rules=rules, engine=engine, chunk_rows=chunk)
        digests.add(sha(dst))
    assert len(digests) == 1
    if out_name == "out.csv":  # CSV does not even depend on the chunk size
        run_batch(csv_file, tmp_path / "c2.csv", on=ON, rules=rules, chunk_rows=2)
        assert sha(tmp_path / "c2.csv") in digests


def test_versions_recorded_in_every_format(tmp_path, csv_file, rules):
    stats = run_batch(csv_file, tmp_path / "o.parquet", on=ON, rules=rules)
    md = pq.read_metadata(tmp_path / "o.parquet").metadata  # the file's key-value metadata
    assert md[b"eligibility.rules_version"] == rules.version.encode()
    assert md[b"eligibility.evaluated_on"] == b"2020-06-01"
    assert md[b"eligibility.tool_version"] == __version__.encode()
    assert pl.read_parquet_metadata(tmp_path / "o.parquet")["eligibility.rules_version"] == rules.version
    for out in ("o.parquet", "o.csv", "o.xlsx"):
        if out != "o.parquet":
            stats = run_batch(csv_file, tmp_path / out, on=ON, rules=rules)
        manifest = json.loads((tmp_path / f"{out}.manifest.json").read_text("utf-8"))
        assert stats.manifest == str(tmp_path / f"{out}.manifest.json")
        assert manifest["rules_version"] == rules.version and manifest["evaluated_on"] == "2020-06-01"
        assert manifest["tool_version"] == __version__ and manifest["rows"] == len(ROWS)
        assert manifest["companies"] == len(ROWS) and manifest["output"] == out
    run_batch(csv_file, tmp_path / "o.xlsx", on=ON, rules=rules)
    about = pl.read_excel(tmp_path / "o.xlsx", sheet_name="about", has_header=False)
    assert rules.version in about.to_series(1).to_list()
    res = pl.read_excel(tmp_path / "o.xlsx", sheet_name="results")
    assert res.height == len(ROWS)


@pytest.mark.parametrize("fmt", ["xlsx", "parquet", "jsonl", "gbk.csv"])
def test_input_formats_give_the_same_results(tmp_path, csv_file, rules, fmt):
    df = frame()
    src = tmp_path / f"in.{fmt}"
    if fmt == "xlsx":
        df.write_excel(src)
    elif fmt == "parquet":
        df.write_parquet(src)
    elif fmt == "jsonl":
        src.write_text("\n".join(json.dumps({k: v for k, v in r.items()}, ensure_ascii=False) for r in ROWS) + "\n",
                       encoding="utf-8")
    else:
        src.write_bytes(csv_file.read_text("utf-8").encode("gbk"))
    base = run_batch(csv_file, tmp_path / "base.csv", on=ON, rules=rules)
    got = run_batch(src, tmp_path / "got.csv", on=ON, rules=rules)
    assert got.rows_read == base.rows_read == len(ROWS)
    a = pl.read_csv(tmp_path / "base.csv", infer_schema=False).select(RESULT_COLUMNS)
    b = pl.read_csv(tmp_path / "got.csv", infer_schema=False).select(RESULT_COLUMNS)
    assert a.equals(b)


def test_typed_columns_parse_like_text(rules):
    typed = pl.DataFrame({"province": ["河北省", "河北省", None], "employees": [50, 8, None],
                          "revenue": [3000000.0, 1234.5, float("nan")], "affected_by_epidemic": [True, False, None],
                          "insured_employees": [40, None, 3]})
    text = typed.with_columns(pl.col("employees").cast(pl.String), pl.col("insured_employees").cast(pl.String),
                              pl.Series("revenue", ["3000000", "1234.5", None]),
                              pl.Series("affected_by_epidemic", ["是", "否", None]))
    a, b = evaluate_frame(typed, ON, rules), evaluate_frame(text, ON, rules)
    assert a.drop("row").equals(b.drop("row"))


def test_read_table_formats(tmp_path):
    df = frame()
    df.write_parquet(tmp_path / "a.parquet")
    assert read_table(tmp_path / "a.parquet").equals(df)
    data = (tmp_path / "a.parquet").read_bytes()
    assert read_table(data).equals(df)  # bytes, detected by content
    csv_bytes = df.write_csv().encode("gbk")
    got = read_table(csv_bytes, "upload.csv")
    assert got.equals(df)


def test_cli_batch(tmp_path, csv_file):
    out = tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["batch", str(csv_file), "--on", "2020-06-01", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "5 rows read, 4 evaluated, 1 with errors" in res.output
    assert pl.read_csv(out, infer_schema=False).height == 5
    res = CliRunner().invoke(app, ["batch", str(csv_file), "--on", "2020-06-01", "-o", str(tmp_path / "l.csv"),
                                   "--long"])
    assert res.exit_code == 0
    assert "rule_id" in pl.read_csv(tmp_path / "l.csv", infer_schema=False).columns
    res = CliRunner().invoke(app, ["batch", str(csv_file), "--on", "2020-13-01", "-o", str(out)])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output
    res = CliRunner().invoke(app, ["batch", str(csv_file), "-o", str(out), "--engine", "spark"])
    assert res.exit_code == 2 and "engine" in res.output


def test_the_installed_command_ends_with_everything_written(tmp_path, csv_file):
    """`eligibility batch` ends a finished run without the interpreter's teardown (cli._exit_now): the
    summary lines, the output and the manifest are all there, and the exit code is 0."""
    import subprocess
    import sys

    for out in (tmp_path / "r.csv", tmp_path / "r.parquet"):
        res = subprocess.run([sys.executable, "-m", "eligibility.cli", "batch", str(csv_file), "--on", "2020-06-01",
                              "-o", str(out)], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert "5 rows read, 4 evaluated, 1 with errors" in res.stdout and "manifest" in res.stdout
        got = pl.read_parquet(out) if out.suffix == ".parquet" else pl.read_csv(out, infer_schema=False)
        assert got.height == 5 and got["row"].cast(pl.Int64).to_list() == [1, 2, 3, 4, 5]
        assert json.loads(out.with_name(out.name + ".manifest.json").read_text())["companies"] == 5


def test_inexact_numbers_go_through_the_single_path(rules):
    df = pl.DataFrame({"province": ["河北省", "河北省"], "city": ["石家庄市", "石家庄市"],
                       "industry": ["catering", "catering"], "employees": ["12", "12"],
                       "unemployment_insurance_paid": ["1000.12345", "1000.12"]})
    from eligibility.batch import evaluate_chunk

    res = evaluate_chunk(df, ON, rules)
    assert res.exact_rows == 1
    for i in range(2):
        report = evaluate(df.row(i, named=True), on=ON, rules=rules)
        assert res.summary["total_amount"][i] == report.total_amount


def test_rows_are_evaluated_only_against_the_rules_their_place_leaves_open(rules):
    """A 河南省 row needs none of the 石家庄 rules: its group's program holds only rules whose
    jurisdiction it can match; unknown places keep every rule; a handful of rows share a larger
    group's program; every row is in exactly one group."""
    from eligibility.batch import ColumnPlan, encode_frame
    from eligibility.batch.plan import place_programs

    places = ([("河南省", "郑州市")] * 3000 + [("河北省", "石家庄市")] * 3000 + [("河北省", "保定市")] * 3000
              + [(None, None)] * 10 + [("四川省", "广元市")] * 5)
    df = pl.DataFrame({"province": [p for p, _ in places], "city": [c for _, c in places]},
                      schema={"province": pl.String, "city": pl.String})
    enc = encode_frame(df, ColumnPlan.build(df.columns, rules.facts), rules.facts)
    groups = place_programs(enc.frame, rules, ON)
    seen = sorted(int(i) for _, pos in groups for i in pos)
    assert seen == list(range(df.height))

    def rules_of(prog):
        return {rules.rules[p.index].id for p in prog.plans}

    def jurisdiction(rule):
        return {k.fact: k.value for k in rule.condition.children if getattr(k, "origin", None) == "jurisdiction"}

    by_first_row = {int(pos[0]): prog for prog, pos in groups}
    henan = by_first_row[0]
    assert rules_of(henan) and all(jurisdiction(rules.by_id[i]).get("province") == "河南省" for i in rules_of(henan))
    baoding = by_first_row[6000]
    assert all(jurisdiction(rules.by_id[i]) == {"province": "河北省"} for i in rules_of(baoding))
    sjz = next(prog for prog, pos in groups if 3000 in pos)
    assert len(sjz.plans) == len(rules)  # 石家庄 keeps most of the catalogue: the full program
    assert next(prog for prog, pos in groups if 9000 in pos) is sjz  # unknown place: every rule
    guangyuan = next(prog for prog, pos in groups if 9010 in pos)
    assert guangyuan is sjz  # five rows: no program of their own, the full one includes their rules


def test_only_selects_rules_by_glob(tmp_path, csv_file, rules):
    """--only / RuleSet.select: the matching rules in catalogue order, their excludes groups among
    themselves, the same answers as the single path on that subset; the patterns go to the manifest."""
    sub = rules.select(["sjz.ui_refund.*", "sjz.rent.*"])
    assert sub.rules and all(r.id.startswith(("sjz.ui_refund.", "sjz.rent.")) for r in sub)
    assert [r.id for r in sub] == [r.id for r in rules if r.id in {x.id for x in sub}]
    ids = {r.id for r in sub}
    assert all(g <= ids and len(g) > 1 for g in sub.exclusion_groups)
    assert sub.only == ("sjz.ui_refund.*", "sjz.rent.*") and sub.version == rules.version
    out = evaluate_frame(frame(), ON, rules, only=["sjz.ui_refund.*", "sjz.rent.*"])
    for raw, got in zip(ROWS, out.iter_rows(named=True)):
        if got["errors"]:
            continue
        report = evaluate({k: v for k, v in raw.items() if k not in ("企业名称", "统一社会信用代码")}, on=ON, rules=sub)
        assert got["total_amount"] == report.total_amount
        assert got["eligible"] == ";".join(r.rule_id for r in report.results if r.status == "eligible")
        assert got["n_undetermined"] == len(report.by_status("undetermined"))
    assert out["n_eligible"][0] < evaluate_frame(frame(), ON, rules)["n_eligible"][0]
    with pytest.raises(Exception, match="no rule id matches 'sjz.ui_refnd.\\*'"):
        rules.select("sjz.ui_refnd.*")
    dst = tmp_path / "o.csv"
    res = CliRunner().invoke(app, ["batch", str(csv_file), "--on", "2020-06-01", "-o", str(dst),
                                   "--only", "sjz.ui_refund.*", "--only", "sjz.rent.*"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o.csv.manifest.json").read_text("utf-8"))["only"] == "sjz.ui_refund.* sjz.rent.*"
    got = pl.read_csv(dst, infer_schema=False)
    assert got["eligible"].to_list() == out["eligible"].to_list()
    res = CliRunner().invoke(app, ["batch", str(csv_file), "-o", str(dst), "--only", "nothing.*"])
    assert res.exit_code == 2 and "no rule id matches" in res.output
