"""The `eligibility` command: check one company, lint and list the rules, check company lists."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Optional

from .process import process_defaults, two_malloc_arenas

process_defaults()  # before numpy and polars load (also for `python -m eligibility.cli`)

import typer  # noqa: E402

from .errors import EligibilityError, IssuesError, RuleLoadError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="政策计算器：企业可享受哪些扶持政策 / Which support measures a business qualifies for.")
rules_app = typer.Typer(no_args_is_help=True, help="检查和浏览规则 / Lint and browse the rule catalogue.")
app.add_typer(rules_app, name="rules")

RulesOpt = typer.Option(None, "--rules", help="规则目录 / folder of rule files (default: the bundled rules)")


def _fail(lines: list[str], code: int) -> None:
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def _lines(e: EligibilityError) -> list[str]:
    """One line per problem."""
    return [str(i) for i in e.issues] if isinstance(e, IssuesError) else str(e).splitlines() or [type(e).__name__]


def _lang(lang: str) -> str:
    if lang not in ("zh", "en"):
        _fail([f"--lang: 应为 zh 或 en / expected zh or en, got {lang!r}"], 2)
    return lang


def _load(rules_dir: Optional[Path]):
    from .evaluate import default_rules
    from .loading import load_rules

    try:
        return load_rules(rules_dir) if rules_dir else default_rules()
    except RuleLoadError as e:
        _fail([str(i) for i in e.issues], 1)


def _date(on: Optional[str]) -> dt.date:
    if not on:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(on)
    except ValueError:
        _fail([f"--on: 日期格式应为 YYYY-MM-DD / expected a date like 2020-03-15, got {on!r}"], 2)
        raise  # unreachable


@app.command()
def check(
    company_file: str = typer.Argument(..., help="公司事实 JSON 文件，或 - 表示标准输入 / company facts as JSON, - for stdin"),
    on: Optional[str] = typer.Option(None, "--on", help="评估日期 / evaluation date, YYYY-MM-DD (default today)"),
    fmt: str = typer.Option("text", "--format", help="json | text"),
    lang: str = typer.Option("zh", "--lang", help="zh | en"),
    show_all: bool = typer.Option(False, "--all", help="文本中也列出不符合的 / also list ineligible rules in text"),
    rules_dir: Optional[Path] = RulesOpt,
) -> None:
    """评估一家企业 / Evaluate one company."""
    from .evaluate import evaluate
    from .explain import summary_text

    if fmt not in ("json", "text"):
        _fail([f"--format: 应为 json 或 text / expected json or text, got {fmt!r}"], 2)
    lang = _lang(lang)
    when = _date(on)
    try:
        text = sys.stdin.read() if company_file == "-" else Path(company_file).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        _fail([f"{company_file}: 无法读取 / cannot read: {e}"], 2)
    data = _json(text, company_file)
    if not isinstance(data, dict):
        _fail([f"{company_file}: 应为一个 JSON 对象 / expected a JSON object of facts"], 2)
    rules = _load(rules_dir)
    try:
        report = evaluate(data, on=when, rules=rules)
    except EligibilityError as e:
        _fail(_lines(e), 2)
    if fmt == "json":
        typer.echo(json.dumps({**report.as_dict(lang), "lang": lang}, ensure_ascii=False, indent=2))
    else:
        typer.echo(summary_text(report, lang, show_ineligible=show_all))


def _json(text: str, name: object) -> object:
    """JSON text, or exit 2 naming the problem (bad syntax, nesting too deep, a number too long)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        _fail([f"{name}: JSON 格式错误 / invalid JSON at line {e.lineno}: {e.msg}"], 2)
    except RecursionError:
        _fail([f"{name}: JSON 嵌套过深 / invalid JSON: nested too deeply"], 2)
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        _fail([f"{name}: JSON 无法读取 / invalid JSON: {str(e)[:120]}"], 2)


@app.command()
def replay(report_file: Path = typer.Argument(..., help="之前保存的 JSON 报告 / a report saved by `check --format json`"),
           rules_dir: Optional[Path] = RulesOpt) -> None:
    """按报告中记录的输入和日期重新评估并比对 / Re-run a stored report and check the answer is identical."""
    from .evaluate import as_date, evaluate

    try:
        text = report_file.read_text("utf-8")
    except (OSError, ValueError) as e:
        _fail([f"{report_file}: 无法读取 / cannot read: {e}"], 2)
    stored = _json(text, report_file)
    try:
        data, on, lang = stored["input"], stored["as_of"], stored.get("lang", "zh")
    except (KeyError, TypeError, AttributeError):
        _fail([f"{report_file}: 不是本工具保存的报告 / not a stored report (a JSON object with input and as_of)"], 2)
    if lang not in ("zh", "en"):
        _fail([f"{report_file}: lang: 应为 zh 或 en / expected zh or en, got {lang!r}"], 2)
    rules = _load(rules_dir)
    if stored.get("rules_version") != rules.version:
        typer.echo(f"注意：规则版本不同 / rules version differs: stored {stored.get('rules_version')}, now {rules.version}",
                   err=True)
    try:
        fresh = evaluate(data, on=as_date(on, "as_of"), rules=rules).as_dict(lang)
    except EligibilityError as e:  # as_of and input as stored: each problem on a line, naming it
        _fail([f"{report_file}: {line}" for line in _lines(e)], 2)
    fresh["lang"] = lang
    diffs = [k for k in sorted(set(stored) | set(fresh)) if stored.get(k) != fresh.get(k)]
    if diffs:
        _fail([f"不同 / differs: {k}" for k in diffs], 1)
    typer.echo("相同 / identical")


@rules_app.command("lint")
def lint(rules_dir: Optional[Path] = RulesOpt,
         examples: bool = typer.Option(True, "--examples/--no-examples", help="also run each rule's examples")) -> None:
    """检查全部规则文件 / Validate every rule file: schema, facts, verbatim quotes, examples."""
    from .examples import run_all
    from .loading import load_rules

    try:
        rules = load_rules(rules_dir, cache=False)  # the check itself: never the kept copy
    except RuleLoadError as e:
        _fail([str(i) for i in e.issues] + [f"{len(e.issues)} problem(s)"], 1)
    from .coverage import validate_not_encoded

    problems = validate_not_encoded(rules_dir) + (run_all(rules) if examples else [])
    if problems:
        _fail([str(i) for i in problems] + [f"{len(problems)} problem(s) in examples or _not_encoded lists"], 1)
    n_ex = sum(len(r.spec.examples) for r in rules)
    typer.echo(f"OK: {len(rules)} rules in {len(rules.files)} files, {n_ex} examples agree "
               f"(rules version {rules.version})")


@rules_app.command("list")
def list_rules(rules_dir: Optional[Path] = RulesOpt, lang: str = typer.Option("zh", "--lang")) -> None:
    """列出规则目录 / Print the catalogue."""
    from rich.console import Console
    from rich.table import Table

    lang = _lang(lang)
    rules = _load(rules_dir)
    table = Table(show_lines=False)
    for col in ("id", "标题 / title", "类型", "力度", "地区", "期限"):
        table.add_column(col, overflow="fold")
    for r in rules:
        s = r.spec
        p = s.period
        period = f"{p.start}–{p.deadline or p.end or '?'} ({p.end_kind})"
        table.add_row(s.id, s.title.get(lang), s.kind, s.strength, r.jurisdiction_text, period)
    Console(width=200).print(table)
    per_window, _ = validity_counts(rules, dt.date.today())
    typer.echo(f"{len(rules)} rules; today: " + ", ".join(f"{w} {n}" for w, n in per_window.items()))


def validity_counts(rules, on: dt.date) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Rules per window on a date, and per (end kind, window)."""
    from .validity import END_KINDS, WINDOWS, window

    per_window = dict.fromkeys(WINDOWS, 0)
    per_kind = {(k, w): 0 for k in END_KINDS for w in WINDOWS}
    for r in rules:
        w, _ = window(r, on)
        per_window[w] += 1
        per_kind[(r.spec.period.end_kind, w)] += 1
    return per_window, per_kind


@rules_app.command("validity")
def validity(rules_dir: Optional[Path] = RulesOpt,
             on: Optional[str] = typer.Option(None, "--on", help="日期 / date, YYYY-MM-DD (default today)"),
             show: Optional[str] = typer.Option(None, "--show", help="列出该窗口的规则 / list the rules in this "
                                                                   "window: open | end_unknown | upcoming | closed")) -> None:
    """某日各项政策是否仍在执行 / How many measures are open, closed, upcoming or of unknown end on a date."""
    from .validity import END_KINDS, WINDOWS, window

    when = _date(on)
    rules = _load(rules_dir)
    per_window, per_kind = validity_counts(rules, when)
    words = {"open": "执行中 open", "end_unknown": "未写明截止 end_unknown", "upcoming": "未开始 upcoming",
             "closed": "已截止 closed"}
    typer.echo(f"{when.isoformat()}: {len(rules)} rules")
    for w in WINDOWS:
        typer.echo(f"  {words[w]:<24} {per_window[w]:>4}")
    typer.echo("by end kind / 截止方式: " + "; ".join(
        f"{k} " + ", ".join(f"{w} {per_kind[(k, w)]}" for w in WINDOWS if per_kind[(k, w)])
        for k in END_KINDS if any(per_kind[(k, w)] for w in WINDOWS)))
    if show:
        if show not in WINDOWS:
            _fail([f"--show: 应为 / expected one of {', '.join(WINDOWS)}, got {show!r}"], 2)
        for r in rules:
            if window(r, when)[0] == show:
                p = r.spec.period
                typer.echo(f"{r.id}\t{p.start}–{p.deadline or p.end or '?'}\t{p.end_kind}")


@rules_app.command("coverage")
def coverage(rules_dir: Optional[Path] = RulesOpt,
             strict: bool = typer.Option(False, "--strict", help="退出码1：有未覆盖条款或未编码清单有误 / exit 1 when an "
                                                                 "article is uncovered or a not-encoded list is invalid"),
             width: int = typer.Option(30, "--width", help="每条显示的字数 / words shown per flagged article")) -> None:
    """各文件条款覆盖情况 / Per seed and document: rules, not-encoded entries, numbered articles no quote covers."""
    from .coverage import build_catalogue, report_lines, uncovered

    cat = build_catalogue(rules_dir)
    for line in report_lines(cat, width):
        typer.echo(line)
    if strict and (uncovered(cat) or cat.problems):
        raise typer.Exit(1)


@rules_app.command("docs")
def docs(rules_dir: Optional[Path] = RulesOpt,
         out: Optional[Path] = typer.Option(None, "--out", help="输出文件 / output file (default docs/rules.md)"),
         check: bool = typer.Option(False, "--check", help="只检查是否最新，否则退出码1 / exit 1 if the file is not current")
         ) -> None:
    """生成规则目录文档 / Write docs/rules.md from the rule files."""
    from .catalogue_docs import DEFAULT_OUT, is_current, write
    from .safe_yaml import display

    rules = _load(rules_dir)
    path = out or DEFAULT_OUT
    if check:
        if not is_current(rules, path):
            _fail([f"{display(path)} 不是最新的 / is not current: run `eligibility rules docs`"], 1)
        typer.echo(f"{display(path)} is current ({len(rules)} rules)")
        return
    changed = write(rules, path)
    typer.echo(f"{display(path)}: {'written' if changed else 'unchanged'} ({len(rules)} rules)")


@app.command("facts")
def list_facts(lang: str = typer.Option("zh", "--lang")) -> None:
    """列出事实项（也是批量文件的列名）/ Print the fact dictionary (also the company-list columns)."""
    from .facts import default_facts

    lang = _lang(lang)
    for spec in default_facts().values():
        vals = f" [{', '.join(spec.values)}]" if spec.values else ""
        unit = f" ({spec.unit})" if spec.unit else ""
        derived = " (derived)" if spec.derived else ""
        typer.echo(f"{spec.name}\t{spec.type}{unit}\t{spec.label(lang)}{derived}{vals}")


@app.command("batch")
def batch(
    input_file: Path = typer.Argument(..., help="企业名单 / company list: .csv (UTF-8 or GBK), .xlsx, .parquet, .jsonl"),
    output: Path = typer.Option(..., "-o", "--output", help="结果文件 / results: .csv, .xlsx or .parquet"),
    on: Optional[str] = typer.Option(None, "--on", help="评估日期 / evaluation date, YYYY-MM-DD (default today)"),
    long: bool = typer.Option(False, "--long", help="每家企业×每项政策一行 / one row per company × eligible or "
                                                    "undetermined benefit"),
    engine: str = typer.Option("polars", "--engine", help="polars (this machine) | dask (a cluster) | single "
                                                         "(one company at a time; slow reference)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask scheduler address, e.g. "
                                                                      "tcp://10.0.0.5:8786 (default: a local cluster)"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local dask cluster: number of workers"),
    chunk_rows: Optional[int] = typer.Option(None, "--chunk-rows", help="rows per chunk (default 200,000, with "
                                                                       "--long 25,000; memory is bounded by this)"),
    facts_to_collect: bool = typer.Option(True, "--facts-to-collect/--no-facts-to-collect",
                                          help="汇总中列出最值得补充的事实 / the facts_to_collect column (off: "
                                               "about a third less work on lists that meet the whole catalogue)"),
    only: Optional[list[str]] = typer.Option(None, "--only", help="只评估这些规则 / only the rules whose id matches "
                                                                 "this glob, e.g. 'sjz.ui_refund.*' (repeatable)"),
    rules_dir: Optional[Path] = RulesOpt,
) -> None:
    """批量评估企业名单 / Evaluate a company list: one output row per input row."""
    import gc

    two_malloc_arenas()
    gc.disable()  # importing polars and building the rule models allocate ~0.1 s of collections' worth of
    from .batch import run_batch  # objects that all live on; enabled again once the rules are loaded

    def load():
        try:
            return _load(rules_dir)
        finally:
            gc.freeze()  # what is loaded by now lives to the end: later collections need not walk it
            gc.enable()

    when = _date(on)
    progress = None
    bar = None
    if sys.stderr.isatty():
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("[bold]评估 / evaluating"), BarColumn(), TextColumn("{task.completed:,} rows"),
                       TimeElapsedColumn(), transient=True)
        task = bar.add_task("rows", total=None)
        progress = lambda done, total: bar.update(task, completed=done)  # noqa: E731
        bar.start()
    try:
        summary = run_batch(input_file, output, on=when, long=long, engine=engine, scheduler=scheduler,
                            chunk_rows=chunk_rows, rules=load, progress=progress,
                            workers=workers, only=only,
                            facts_to_collect=facts_to_collect)  # the rules load while the first chunk is read
    except EligibilityError as e:
        if bar is not None:
            bar.stop()
        _fail(_lines(e), 2)
    except OSError as e:
        if bar is not None:
            bar.stop()
        _fail([f"{output}: 无法写入 / cannot write: {e.strerror or e}"], 2)
    if bar is not None:
        bar.stop()
    for line in summary.lines():
        typer.echo(line)
    global _QUICK_EXIT
    _QUICK_EXIT = engine != "dask"  # every file is closed; a dask cluster's processes need the clean exit


_QUICK_EXIT = False  # the batch command set it: main() ends the process without the interpreter's teardown


def _exit_now(code: int) -> None:
    """End a finished batch without the interpreter's teardown: its last garbage collection and the
    freeing of every object take ~0.1-0.4 s after a large list, and the output is already written."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    try:
        app()
        if _QUICK_EXIT:
            _exit_now(0)
    except SystemExit as e:
        if _QUICK_EXIT and e.code in (0, None):
            _exit_now(0)
        raise
    except RuleLoadError as e:  # the rules are broken: not the caller's input
        for line in _lines(e):
            typer.echo(line, err=True)
        sys.exit(1)
    except EligibilityError as e:  # anything we raise on purpose ends as one line per problem, exit 2
        for line in _lines(e):
            typer.echo(line, err=True)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - a bug: one line, not a traceback (ELIGIBILITY_DEBUG=1 shows it)
        if os.environ.get("ELIGIBILITY_DEBUG"):
            raise
        typer.echo(f"内部错误 / internal error: {type(e).__name__}: {str(e)[:300]} "
                   f"(ELIGIBILITY_DEBUG=1 shows the traceback)", err=True)
        sys.exit(70)


if __name__ == "__main__":
    main()
