"""The figures of issue 17: our batch next to the OpenFisca anchor, the full catalogue next to a plain read,
peak memory at 1M (and optionally 10M) rows, and one company's evaluate() warm.

    python bench/anchor.py [--rows 1000000] [--repeat 3] [--anchor ../shared/bench/anchor]
                           [--work DIR] [--rss-rows 10000000 [--rss-repeat 3]] [--no-openfisca] [--no-evaluate]

Uses the anchor's own population (gen_population.py), its subset of our rules for the six measures
(subset_rules.py) and, if its venv exists (side_by_side.sh builds it: ~/.cache/openfisca-anchor-venv),
its OpenFisca run. Every engine runs in a fresh process, alternating round by round (a shared machine's
slow spells then touch all of them), and the medians of wall time, CPU time (user + system) and peak
RSS are printed with the ratios the goals are stated in:

    ours-6 / openfisca wall   (goal <= 1.0)     ours-full / plain read wall   (goal <= 5.0)
    (each also as the median of the rounds' own ratios: this machine's speed drifts between rounds)
    peak RSS: ours-6 <= 700 MiB, ours-full <= 1 GiB, and at --rss-rows within 10 % of the 1M figure
    evaluate(): one company, full catalogue, warm (goal <= 5 ms)

ours-full-lean is the full catalogue with --no-facts-to-collect (the column left out, its masks not
computed). Wall times move by a fifth or more between runs on a shared machine; CPU time less so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ELIG = str(Path(PY).parent / "eligibility")
SIX = ["sjz.ui_refund.standard_50", "sjz.ui_refund.sme_relaxed", "sjz.ui_refund.small_employer_20pct",
       "sjz.rent.state_owned_catering_2020", "sjz.si_exemption.sme_2020", "sjz.si_halving.large_2020",
       "sjz.medical_halving_2020"]
ON = "2020-06-01"


def run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one fresh process (its own rusage, from wait4)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"failed ({status}): {' '.join(cmd)}\n{err[-2000:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def population(anchor: Path, work: Path, rows: int) -> Path:
    csv = work / f"population_{rows}.csv"
    if not csv.exists():
        subprocess.run([PY, str(anchor / "gen_population.py"), str(rows), str(csv)], check=True,
                       stdout=subprocess.DEVNULL)
    return csv


def evaluate_ms(repeat: int = 9) -> tuple[float, float, float]:
    """(min, median) ms of evaluate() warm, and the median with every result's reasons in words."""
    import timeit

    from eligibility import default_rules, evaluate

    rules = default_rules()
    company = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
               "industry": "catering", "employees": 40, "revenue": 3_000_000, "insured_employees": 40,
               "unemployment_claimants": 2, "unemployment_insurance_paid": 24_000}
    one = lambda: evaluate(company, on=ON, rules=rules)  # noqa: E731
    words = lambda: [r.reasons("zh") for r in one().results]  # noqa: E731
    one(), words()
    times = sorted(t / 10 * 1000 for t in timeit.repeat(one, number=10, repeat=repeat))
    with_words = sorted(t / 5 * 1000 for t in timeit.repeat(words, number=5, repeat=max(3, repeat // 2)))
    return times[0], statistics.median(times), statistics.median(with_words)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--anchor", default=str(ROOT.parent / "shared" / "bench" / "anchor"))
    ap.add_argument("--work", default=None, help="keep the population and outputs here (default: a temporary folder)")
    ap.add_argument("--openfisca-venv", default=str(Path.home() / ".cache" / "openfisca-anchor-venv"))
    ap.add_argument("--no-openfisca", action="store_true")
    ap.add_argument("--rss-rows", type=int, default=0, help="also the peak RSS at this many rows (e.g. 10000000)")
    ap.add_argument("--rss-repeat", type=int, default=1, help="runs at --rss-rows (the median peak is compared)")
    ap.add_argument("--no-evaluate", action="store_true")
    args = ap.parse_args(argv)

    anchor = Path(args.anchor)
    if not (anchor / "gen_population.py").exists():
        anchor = Path("/work/shared/bench/anchor")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="elig-anchor-"))
    work.mkdir(parents=True, exist_ok=True)
    csv = population(anchor, work, args.rows)
    if not (work / "six" / "rules").is_dir():
        subprocess.run([PY, str(anchor / "subset_rules.py"), str(ROOT), str(work / "six"), *SIX], check=True,
                       stdout=subprocess.DEVNULL)
    of_py = Path(args.openfisca_venv) / "bin" / "python"
    engines = {"plain-read": [PY, "-c", "import sys, polars as pl; print(pl.read_csv(sys.argv[1]).height)", str(csv)]}
    if of_py.exists() and not args.no_openfisca:
        engines["openfisca"] = [str(of_py), str(anchor / "run_openfisca.py"), str(csv), str(work / "openfisca.parquet")]
    batch = [ELIG, "batch", str(csv), "--on", ON]
    engines["ours-6"] = [*batch, "--rules", str(work / "six" / "rules"), "-o", str(work / "ours6.parquet")]
    engines["ours-full"] = [*batch, "-o", str(work / "ours_full.parquet")]
    engines["ours-full-lean"] = [*batch, "--no-facts-to-collect", "-o", str(work / "ours_lean.parquet")]
    got: dict[str, list[tuple[float, float, float]]] = {k: [] for k in engines}
    for r in range(args.repeat):
        for label, cmd in engines.items():
            got[label].append(run(cmd))
            w, c, m = got[label][-1]
            print(f"  round {r + 1} {label:15s} {w:6.2f} s wall {c:6.2f} s CPU {m:6.0f} MiB", flush=True)
    med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in got.items()}
    print(f"\nmedians of {args.repeat} rounds, {args.rows:,} rows ({csv.stat().st_size / 2**20:.0f} MiB CSV):")
    for k, (w, c, m) in med.items():
        print(f"  {k:15s} {w:6.2f} s wall  {c:6.2f} s CPU  {m:6.0f} MiB peak RSS  {args.rows / w:>10,.0f} rows/s")

    def paired(a: str, b: str) -> float:  # the median of the rounds' own ratios: each round's engines ran together
        return statistics.median(x[0] / y[0] for x, y in zip(got[a], got[b]))

    if "openfisca" in med:
        print(f"ours-6 / openfisca wall: {med['ours-6'][0] / med['openfisca'][0]:.2f}  (goal <= 1.0); "
              f"paired by round {paired('ours-6', 'openfisca'):.2f}; "
              f"rounds with ours-6 ahead: {sum(a[0] <= b[0] for a, b in zip(got['ours-6'], got['openfisca']))} of "
              f"{args.repeat}; CPU {med['ours-6'][1] / med['openfisca'][1]:.2f} (steadier than wall on a shared machine)")
    print(f"ours-full / plain read wall: {med['ours-full'][0] / med['plain-read'][0]:.2f}  (goal <= 5.0); "
          f"paired by round {paired('ours-full', 'plain-read'):.2f}; "
          f"without facts to collect {med['ours-full-lean'][0] / med['plain-read'][0]:.2f}")
    if args.rss_rows:
        big = population(anchor, work, args.rss_rows)
        for label, out, extra in (("ours-6", "big6.parquet", ["--rules", str(work / "six" / "rules")]),
                                  ("ours-full", "big_full.parquet", [])):
            runs = [run([ELIG, "batch", str(big), "--on", ON, *extra, "-o", str(work / out)])
                    for _ in range(max(1, args.rss_repeat))]
            w, m = statistics.median(r[0] for r in runs), statistics.median(r[2] for r in runs)
            print(f"  {label} at {args.rss_rows:,} rows: {w:.1f} s wall, peak RSS {m:.0f} MiB "
                  f"({(m / med[label][2] - 1) * 100:+.0f} % of the {args.rows:,}-row peak)"
                  + (f"; medians of {len(runs)} runs, peaks {', '.join(f'{r[2]:.0f}' for r in runs)} MiB"
                     if len(runs) > 1 else ""))
    if not args.no_evaluate:
        sys.path.insert(0, str(ROOT))
        lo, mid, words = evaluate_ms()
        print(f"evaluate(), one company, full catalogue, warm: {lo:.2f} ms min, {mid:.2f} ms median "
              f"(goal <= 5); with every result's reasons in words {words:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
