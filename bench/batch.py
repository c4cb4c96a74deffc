"""Benchmark of `eligibility batch`: a seeded synthetic company list of N rows, evaluated end to end.

    python bench/batch.py --rows 1000000 [--seed 7] [--format csv] [--chunk-rows 100000] [--long] [--keep DIR]
                          [--repeat 3] [--city 石家庄市]

Prints rows/s, the peak RSS of the batch process, and the ratio of the batch's wall time to the time
polars takes just to read the same file (both measured in fresh subprocesses). With --repeat N the read
and the batch alternate N times (a slow spell of a shared machine then touches both) and the medians,
their ratio and the ranges are printed. Targets on the 2-core reference machine with the full
catalogue: 1,000,000 rows < 60 s, peak RSS < 2 GB, ratio < 5.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]

PLACES = {
    "河北省": {"石家庄市": ["长安区", "桥西区", "新华区", "裕华区", "正定县", "藁城区", "鹿泉区", "栾城区", "井陉矿区"],
             "保定市": ["竞秀区", "莲池区"], "唐山市": ["路北区"], "邯郸市": ["丛台区"]},
    "河南省": {"郑州市": ["金水区", "二七区"], "洛阳市": ["西工区"]},
    "四川省": {"广元市": ["利州区", "昭化区"], "成都市": ["武侯区"]},
    "其他": {"北京市": ["朝阳区"]},
}


def _pick(rng: np.random.Generator, values: list, n: int, p=None) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p)]


def _blank(rng: np.random.Generator, col: np.ndarray, share: float) -> np.ndarray:
    col = col.astype(object)
    col[rng.random(len(col)) < share] = None
    return col


def _money(rng: np.random.Generator, n: int, median: float, sigma: float, cents: float = 0.3,
           commas: float = 0.2) -> np.ndarray:
    v = np.round(rng.lognormal(np.log(median), sigma, n), 2)
    whole = rng.random(n) >= cents
    v[whole] = np.round(v[whole])
    text = np.where(whole, np.char.mod("%.0f", v), np.char.mod("%.2f", v)).astype(object)
    fmt = rng.random(n) < commas
    text[fmt] = [f"{x:,.2f}" for x in v[fmt]]
    return text


def generate(n: int, seed: int = 7, city_only: str | None = None) -> pl.DataFrame:
    """A realistic company list: names and codes, place, kind, industry, size inputs, insurance, flags.
    city_only: every company in that city (as a city's own list would be), its counties at random."""
    from eligibility.facts import default_facts

    facts = default_facts()
    rng = np.random.default_rng(seed)
    places = PLACES
    if city_only is not None:
        places = {p: {c: ks} for p, cities in PLACES.items() for c, ks in cities.items() if c == city_only}
        if not places:
            raise SystemExit(f"--city: one of {[c for cities in PLACES.values() for c in cities]}")
    shares = [0.6, 0.25, 0.1, 0.05] if city_only is None else None
    prov = _pick(rng, list(places), n, shares)
    city = np.empty(n, dtype=object)
    county = np.empty(n, dtype=object)
    for p, cities in places.items():
        idx = np.flatnonzero(prov == p)
        cs = _pick(rng, list(cities), len(idx))
        city[idx] = cs
        for c, counties in cities.items():
            j = idx[cs == c]
            county[j] = _pick(rng, counties, len(j))
    industries = list(facts["industry"].values)
    ind = _pick(rng, industries, n)
    zh = rng.random(n) < 0.5
    ind_text = ind.copy()
    ind_text[zh] = [facts["industry"].values[k]["zh"] for k in ind[zh]]
    ent = _pick(rng, ["企业", "个体工商户", "enterprise", "社会服务机构（民办非企业单位）", "律师事务所"], n,
                [0.6, 0.2, 0.12, 0.05, 0.03])
    employees = np.maximum(0, rng.lognormal(np.log(25), 1.3, n)).astype(np.int64)
    insured = np.maximum(0, (employees * rng.uniform(0.5, 1.0, n))).astype(np.int64)
    claimants = rng.binomial(np.maximum(insured, 0), 0.04)
    at_app = np.maximum(0, insured - rng.integers(-3, 6, n))
    yes_no = ["是", "否", "是", "否", "1", "0", "true", "false"]
    data = {
        "企业名称": np.char.add("企业", np.arange(1, n + 1).astype(str)).astype(object),
        "统一社会信用代码": np.char.add("91130100MA", np.char.zfill(np.arange(n).astype(str), 8)).astype(object),
        "所在省份": _blank(rng, prov, 0.02),
        "所在城市": _blank(rng, city, 0.03),
        "所在县（市、区）": _blank(rng, county, 0.2),
        "主体类型": _blank(rng, ent, 0.05),
        "所属行业": _blank(rng, ind_text, 0.05),
        "从业人员": _blank(rng, employees.astype(str), 0.05),
        "上年度营业收入": _blank(rng, _money(rng, n, 3e6, 1.8), 0.1),
        "资产总额": _blank(rng, _money(rng, n, 5e6, 1.8), 0.5),
        "上年度月均参保职工人数": _blank(rng, insured.astype(str), 0.15),
        "上年度领取失业保险金人数": _blank(rng, claimants.astype(str), 0.2),
        "申请时失业保险参保人数": _blank(rng, at_app.astype(str), 0.5),
        "上年度实际缴纳失业保险费": _blank(rng, _money(rng, n, 2e4, 1.2, cents=0.6), 0.2),
        "单位每月养老保险缴费": _blank(rng, _money(rng, n, 1.6e4, 1.2, cents=0.6), 0.4),
        "单位每月失业保险缴费": _blank(rng, _money(rng, n, 600, 1.2, cents=0.6), 0.4),
        "单位每月工伤保险缴费": _blank(rng, _money(rng, n, 300, 1.2, cents=0.6), 0.4),
        "单位每月职工医保缴费": _blank(rng, _money(rng, n, 7e3, 1.2, cents=0.6), 0.4),
        "月租金": _blank(rng, _money(rng, n, 8e3, 1.0), 0.6),
        "营业收入同比变化": _blank(rng, np.char.add(np.round(rng.normal(-15, 30, n), 1).clip(-100, 300)
                                           .astype(str), "%").astype(object), 0.4),
        "受疫情影响较大": _blank(rng, _pick(rng, yes_no, n), 0.3),
        "承租国有资产类经营用房": _blank(rng, _pick(rng, yes_no, n), 0.5),
        "增值税小规模纳税人": _blank(rng, _pick(rng, yes_no, n), 0.4),
        "2019年度经营亏损": _blank(rng, _pick(rng, yes_no, n), 0.5),
        "列入严重失信名单": _blank(rng, _pick(rng, ["否", "否", "否", "是"], n), 0.3),
        "上年度足额缴纳失业保险费满12个月且无历史欠缴": _blank(rng, _pick(rng, yes_no, n), 0.4),
        "与工会协商制定稳岗措施并承诺1年内不裁员": _blank(rng, _pick(rng, yes_no, n), 0.6),
        "备注": _blank(rng, _pick(rng, ["", "重点企业", "新登记", "2020年复工"], n), 0.7),
    }
    return pl.DataFrame({k: pl.Series(k, [None if x is None else str(x) for x in v], dtype=pl.String)
                         for k, v in data.items()})


def write(df: pl.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        df.write_csv(path)
    elif path.suffix == ".parquet":
        df.write_parquet(path)
    elif path.suffix == ".xlsx":
        df.write_excel(path)
    else:
        raise SystemExit(f"unknown format {path.suffix}")


_PEAK = ("\nimport sys as _s\nfor _l in open('/proc/self/status'):\n"
         "    if _l.startswith('VmHWM:'): print('VMHWM', int(_l.split()[1]) * 1024, file=_s.stderr)\n")


def _child(code: str) -> tuple[float, int, str]:
    """Run python code in a fresh process: (wall seconds, its peak RSS in bytes, stdout).

    The peak is the child's own VmHWM: getrusage's ru_maxrss would carry over this (parent) process's
    high-water mark through fork and exec."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code + _PEAK], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    peak = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("VMHWM")]
    return wall, (peak[-1] if peak else 0), proc.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--format", default="csv", choices=["csv", "parquet"])
    ap.add_argument("--output", default="csv", choices=["csv", "parquet"])
    ap.add_argument("--chunk-rows", type=int, default=None, help="default: the batch's own (DEFAULT_CHUNK_ROWS)")
    ap.add_argument("--on", default="2020-06-01")
    ap.add_argument("--long", action="store_true", help="one output row per company × benefit")
    ap.add_argument("--rules", default=None, help="rules folder (default: the bundled catalogue)")
    ap.add_argument("--keep", default=None, help="keep the generated files in this folder")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the read and the batch N times; medians")
    ap.add_argument("--city", default=None, help="every company in this city (e.g. 石家庄市: the whole catalogue)")
    args = ap.parse_args(argv)

    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="elig-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / f"companies_{args.rows}{'_' + args.city if args.city else ''}.{args.format}"
    out = tmp / f"results_{args.rows}.{args.output}"
    t = time.perf_counter()
    write(generate(args.rows, args.seed, args.city), src)
    gen = time.perf_counter() - t
    size_mb = src.stat().st_size / 1e6

    reader = "read_csv(p, infer_schema=False)" if args.format == "csv" else "read_parquet(p)"
    read_code = f"import polars as pl; p={str(src)!r}; df=pl.{reader}; print(df.height)"
    rules_arg = f", rules=load_rules({args.rules!r})" if args.rules else ""
    chunk_arg = f", chunk_rows={args.chunk_rows}" if args.chunk_rows else ""
    code = ("import json; from eligibility import load_rules; from eligibility.batch import run_batch; "
            f"s=run_batch({str(src)!r}, {str(out)!r}, on={args.on!r}, long={args.long}{chunk_arg}{rules_arg}); "
            "print(json.dumps({'rows': s.rows_read, 'errors': s.rows_with_errors, 'exact_rows': s.exact_rows, "
            "'exact_amounts': s.exact_amounts, 'rules_version': s.rules_version, 'seconds': s.seconds}))")
    reads, batches = [], []
    for _ in range(max(args.repeat, 1)):
        reads.append(_child(read_code))
        batches.append(_child(code))
    read_s, read_rss = statistics.median(r[0] for r in reads), max(r[1] for r in reads)
    batch_s, batch_rss, stdout = statistics.median(b[0] for b in batches), max(b[1] for b in batches), batches[-1][2]
    info = json.loads(stdout.strip().splitlines()[-1])
    from eligibility import load_rules
    from eligibility.evaluate import default_rules

    n_rules = len(load_rules(args.rules) if args.rules else default_rules())
    report = {
        "rows": args.rows, "rule_count": n_rules, "input": f"{src.name} ({size_mb:.0f} MB)", "generate_s": round(gen, 1),
        "plain_read_s": round(read_s, 2), "plain_read_rss_mb": round(read_rss / 2**20), "batch_s": round(batch_s, 2),
        "rows_per_s": round(args.rows / batch_s), "peak_rss_mb": round(batch_rss / 2**20),
        "ratio_to_read": round(batch_s / read_s, 2), **{k: v for k, v in info.items() if k != "seconds"},
        "output": f"{out.name} ({out.stat().st_size / 1e6:.0f} MB)",
    }
    if len(batches) > 1:
        report["runs"] = len(batches)
        report["plain_read_range_s"] = f"{min(r[0] for r in reads):.2f}–{max(r[0] for r in reads):.2f}"
        report["batch_range_s"] = f"{min(b[0] for b in batches):.2f}–{max(b[0] for b in batches):.2f}"
    for k, v in report.items():
        print(f"{k:>15}: {v}")
    if not args.keep:
        for p in (src, out, out.with_name(out.name + ".manifest.json")):  # the batch's sidecar too
            p.unlink(missing_ok=True)
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
