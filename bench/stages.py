"""Where a batch run's CPU goes, step by step, next to OpenFisca's own phases (issue 17: before a speed goal is
called out of reach, say where each second goes).

    python bench/stages.py [--rows 1000000] [--full] [--repeat 3] [--anchor ../shared/bench/anchor] [--work DIR]

The anchor's population and its six measures (--full: the whole bundled catalogue), as bench/anchor.py
uses them. The batch's steps run one after another in this process, so each step's CPU time (user +
system, polars' threads included) is its own. `eligibility batch` overlaps them on two cores, so its CPU
time is about the sum of the steps plus start-up. Each step's time is its own, without the steps it
calls (they have their own lines). Medians of --repeat passes over the list, after one pass to warm up:

  start-up      importing what `eligibility batch` imports (a fresh process), and loading the rules
  read          TableSource.chunks: records found in 16 MB blocks, polars' text read, chunks joined
  parse:numbers the numeric columns' plain cells, by polars' casts and the exactness test
  parse:rest    the other cells (distinct values once each), the error and `inexact` columns
  consistency   the cross-fact checks (facts.consistency)
  derive        the derived facts (size standard, ratios)
  patterns      rows grouped by the pattern of their Boolean leaves
  conditions    the conditions per pattern and the amounts per row (run_patterns without its grouping)
  summary       counts, totals, facts to collect, the finished output columns
  write         the Parquet writer (polars' sink)

With OpenFisca's venv (side_by_side.sh makes it), its run on the same list prints its own phases.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from anchor import ON, PY, SIX, population  # noqa: E402

def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Steps:
    """CPU seconds per named step, each step's own (its callees' time is theirs): wrap() puts a function
    under a step's name."""

    def __init__(self) -> None:
        self.own: dict[str, float] = collections.defaultdict(float)
        self.stack: list[list] = []  # [name, start, callees' time]

    def wrap(self, owner, attr: str, name: str) -> None:
        f = getattr(owner, attr)

        def timed(*a, **k):
            self.stack.append([name, cpu(), 0.0])
            try:
                return f(*a, **k)
            finally:
                step, start, inner = self.stack.pop()
                spent = cpu() - start
                self.own[step] += spent - inner
                if self.stack:
                    self.stack[-1][2] += spent

        setattr(owner, attr, timed)


def startup_cpu() -> float:
    """CPU of a fresh process importing what the batch command imports."""
    code = ("import resource, eligibility.entry, eligibility.cli, eligibility.batch.run, eligibility.batch.chunk, "
            "eligibility.batch.write; r = resource.getrusage(resource.RUSAGE_SELF); print(r.ru_utime + r.ru_stime)")
    out = subprocess.run([PY, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--full", action="store_true", help="the whole bundled catalogue, not the six measures")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--anchor", default=str(ROOT.parent / "shared" / "bench" / "anchor"))
    ap.add_argument("--work", default=None, help="keep the population here (default: a temporary folder)")
    ap.add_argument("--openfisca-venv", default=str(Path.home() / ".cache" / "openfisca-anchor-venv"))
    args = ap.parse_args(argv)

    anchor = Path(args.anchor)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="elig-stages-"))
    work.mkdir(parents=True, exist_ok=True)
    csv = population(anchor, work, args.rows)
    if not args.full and not (work / "six" / "rules").is_dir():
        subprocess.run([PY, str(anchor / "subset_rules.py"), str(ROOT), str(work / "six"), *SIX], check=True,
                       stdout=subprocess.DEVNULL)

    from eligibility import columnar
    from eligibility.batch import chunk, encode, read, write
    from eligibility.evaluate import default_rules
    from eligibility.loading import load_rules

    chunk_rows = read.DEFAULT_CHUNK_ROWS
    steps = Steps()
    for owner, attr, name in (
            (encode, "_plain_stage", "parse:numbers"), (encode, "encode_frame", "parse:rest"),
            (encode, "_consistency", "consistency"), (columnar.Program, "derive", "derive"),
            (columnar, "_patterns", "patterns"), (columnar.Program, "run_patterns", "conditions"),
            (chunk, "evaluate_chunk", "summary")):
        steps.wrap(owner, attr, name)
    chunk.encode_frame = encode.encode_frame  # (imported by name into chunk)

    c = cpu()
    rules = default_rules() if args.full else load_rules(work / "six" / "rules")
    rules_cpu = cpu() - c
    on = dt.date.fromisoformat(ON)
    per_pass: list[dict[str, float]] = []
    for k in range(args.repeat + 1):
        steps.own.clear()
        read_cpu, summaries, offset = 0.0, [], 0
        chunks = read.open_table(csv).chunks(chunk_rows)
        while True:  # one chunk at a time, as the batch holds them
            c = cpu()
            raw = next(chunks, None)
            read_cpu += cpu() - c
            if raw is None:
                break
            summaries.append(chunk.evaluate_chunk(raw, on, rules, offset).summary)
            offset += raw.height
        c = cpu()
        out = work / "stages.parquet"
        w = write.Writer(out, chunk.provenance(rules, on))
        w.write_all(summaries)
        w.close({})
        write_cpu = cpu() - c
        if k:  # the first pass warms up (caches, the allocators' pages)
            per_pass.append({"read": read_cpu, **steps.own, "write": write_cpu})
    boot = statistics.median(startup_cpu() for _ in range(3))

    order = ["read", "parse:numbers", "parse:rest", "consistency", "derive", "patterns", "conditions", "summary",
             "write"]
    med = {s: statistics.median(p.get(s, 0.0) for p in per_pass) for s in order}
    total = boot + rules_cpu + sum(med.values())
    scale = 1_000_000 / args.rows
    n_chunks = args.rows / chunk_rows
    print(f"{'full catalogue' if args.full else 'six measures'}, {args.rows:,} rows ({len(rules.rules)} rules), "
          f"CPU s (user + system), medians of {args.repeat} passes:")
    print(f"  {'step':14s} {'per 1M rows':>12s} {'per chunk':>10s} {'share':>6s}")
    rows = [("start-up", boot, None), ("rules", rules_cpu, None)] + [(s, med[s] * scale, med[s] / n_chunks * 1000)
                                                                      for s in order]
    for name, v, per_chunk in rows:
        pc = f"{per_chunk:7.1f} ms" if per_chunk is not None else ""
        print(f"  {name:14s} {v:12.3f} {pc:>10s} {v / total * 100:5.1f}%")
    print(f"  {'total':14s} {total:12.3f}")

    of_py = Path(args.openfisca_venv) / "bin" / "python"
    if of_py.exists() and not args.full:
        t = time.perf_counter()
        proc = subprocess.Popen([str(of_py), str(anchor / "run_openfisca.py"), str(csv), str(work / "of.parquet")],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        out_text = proc.stdout.read() if proc.stdout else ""
        _, _, ru = os.wait4(proc.pid, 0)  # its own CPU, polars' threads included
        print(f"OpenFisca, same list: {time.perf_counter() - t:.2f} s wall, {ru.ru_utime + ru.ru_stime:.2f} s CPU "
              f"(the whole process); its own report:")
        for line in out_text.splitlines():
            print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
