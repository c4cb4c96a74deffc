"""The Dask engine on a dask.distributed LocalCluster gives exactly the single-machine output."""

from __future__ import annotations

import datetime as dt
import hashlib

import polars as pl
import pytest

pytest.importorskip("dask.distributed")

from dask.distributed import Client, LocalCluster  # noqa: E402

from eligibility.batch import evaluate_frame, run_batch  # noqa: E402
from eligibility.distributed import evaluate_chunks, evaluate_dask_frame  # noqa: E402

ON = dt.date(2020, 6, 1)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        yield c


def _companies(n: int) -> pl.DataFrame:
    import random

    rnd = random.Random(5)
    prov = ["河北省", "河南省", "四川省", None]
    city = {"河北省": "石家庄市", "河南省": "郑州市", "四川省": "广元市", None: None}
    rows = []
    for i in range(n):
        p = rnd.choice(prov)
        rows.append({"名称": f"企业{i}", "所在省份": p, "所在城市": city[p], "所属行业": rnd.choice(["catering", "零售业",
                                                                                            "manufacturing", None]),
                     "从业人员": rnd.choice([str(rnd.randint(0, 500)), "", "十"]),
                     "上年度营业收入": rnd.choice([f"{rnd.randint(0, 10**8):,}", "", "1234.5"]),
                     "上年度实际缴纳失业保险费": rnd.choice([f"{rnd.randint(0, 10**6) / 100:.2f}", ""]),
                     "上年度月均参保职工人数": str(rnd.randint(1, 300)),
                     "受疫情影响较大": rnd.choice(["是", "否", ""])})
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]})


def _sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("out_name,long", [("o.csv", False), ("o.parquet", False), ("l.csv", True)])
def test_dask_output_equals_single_machine(tmp_path, cluster, rules, out_name, long):
    src = tmp_path / "in.csv"
    _companies(230).write_csv(src)
    a, b = tmp_path / f"polars_{out_name}", tmp_path / f"dask_{out_name}"
    sa = run_batch(src, a, on=ON, rules=rules, chunk_rows=50, long=long)
    sb = run_batch(src, b, on=ON, rules=rules, chunk_rows=50, long=long, engine="dask",
                   scheduler=cluster.scheduler_address)
    assert (sa.rows_read, sa.rows_with_errors) == (sb.rows_read, sb.rows_with_errors) == (230, sa.rows_with_errors)
    assert _sha(a) == _sha(b)


def test_chunks_come_back_in_order(cluster, rules):
    df = _companies(120)
    chunks = [df.slice(i, 25) for i in range(0, 120, 25)]
    with Client(cluster) as client:
        results = list(evaluate_chunks(chunks, ON, rules, client=client, in_flight=2))
    got = pl.concat([r.summary for r in results])
    assert got["row"].to_list() == list(range(1, 121))
    assert got.equals(evaluate_frame(df, ON, rules))


def test_dask_dataframe_partitions(cluster, rules):
    import dask.dataframe as dd

    df = _companies(90)
    ddf = dd.from_pandas(df.to_pandas(), npartitions=3)
    with Client(cluster):
        out = pl.from_pandas(evaluate_dask_frame(ddf, ON, rules).compute())
    want = evaluate_frame(df, ON, rules)
    assert out["row"].to_list() == list(range(1, 91))
    for col in ("n_eligible", "n_undetermined", "eligible", "facts_to_collect", "errors"):
        assert out[col].to_list() == want[col].to_list(), col
    assert [str(x) if x is not None else None for x in out["total_amount"].to_list()] == \
        [str(x) if x is not None else None for x in want["total_amount"].to_list()]
