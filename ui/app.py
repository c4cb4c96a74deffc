"""The Streamlit app a business owner fills in: `streamlit run ui/app.py`.

A thin layer: widgets fill a dict of raw answers, each parsed through the fact dictionary
(`FactSpec.parse`), the engine evaluates, `eligibility.questions` picks the next questions and
`eligibility.present` words the results. Every widget has a key (tests drive the app by keys).
Set ELIGIBILITY_RULES_DIR to use another rules folder than the bundled one.
"""

from __future__ import annotations

import datetime as dt
import gc
import html
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from eligibility import __version__, evaluate  # noqa: E402
from eligibility import present as P  # noqa: E402
from eligibility.errors import CompanyValidationError, RuleLoadError  # noqa: E402
from eligibility.explain import KIND_WORDS, STATUS_WORDS, STRENGTH_WORDS, money  # noqa: E402
from eligibility.facts import FactSpec, FactValueError, default_facts  # noqa: E402
from eligibility.questions import (FIRST_QUESTIONS, first_questions, known_places,  # noqa: E402
                                   next_questions, normalise_place)

st.set_page_config(page_title="政策计算器 · Policy calculator", page_icon="🧾", layout="wide")

UNKNOWN = "__unknown__"
NEXT_STEP = 5
MAX_MAYBE = 8  # "possibly eligible" cards per window before "show all"
BATCH_MAX_BYTES = 5 * 1024 * 1024
BATCH_MAX_ROWS = 2000

TX = {
    "zh": {
        "title": "企业扶持政策计算器",
        "subtitle": "河北、河南、四川等地助企纾困政策：回答几个问题，看看您的企业可以享受哪些政策、能拿多少钱。",
        "lang": "语言 / Language", "page": "页面",
        "pages": {"form": "问卷与结果", "browse": "规则浏览", "batch": "批量检查"},
        "on": "评估日期", "on_help": "按这一天判断政策是否仍在执行期内，默认今天。查过去的政策可改为当时的日期。",
        "windows_now": "在 {d}：{open} 项政策执行中，{end_unknown} 项文件未写明截止日期（需向受理部门确认），{closed} 项已截止，{upcoming} 项尚未开始。已截止的政策也会列出，便于补申请和审计核对。",
        "basics": "基本情况", "more": "补充问题",
        "more_help": "下面的问题按能判断的政策数量和金额排序，答一题，结果就更新一次。不知道可以选“不清楚”。",
        "no_more": "暂时没有需要补充的问题了。",
        "show_more": "再显示{n}个问题", "reset": "清空重新填写",
        "unknown": "不清楚", "yes": "是", "no": "否", "choose": "请选择…",
        "placeholder_num": "填写数字{unit}", "placeholder_text": "",
        "understood": "已理解为：{v}",
        "matters": "关系到 {n} 项政策", "matters_money": "，涉及约 {m}",
        "results": "结果", "start_hint": "请先在左侧选择所在省份、主体类型和行业，结果会随着回答即时更新。",
        "total": "预计可得资金合计", "total_help": "符合条件的各项资金之和；相互重叠的政策只计一次（含已截止的政策）。",
        "total_open": "现在仍可申请", "possible": "可能还有", "possible_help": "“可能符合”的政策在补充信息后可能还能拿到的金额。",
        "counts": "符合 {e} 项 · 可能符合 {u} 项 · 不符合 {i} 项",
        "downloads": "下载", "dl_html": "报告（HTML，可打印）", "dl_csv": "结果表（CSV）", "dl_json": "结果数据（JSON）",
        "ineligible_head": "显示不符合的政策及原因（{n}项）", "show_all": "显示全部 {n} 项可能符合的政策",
        "none_here": "（无）", "window_empty_open": "在评估日期没有仍在执行期内、可能适用的政策；请看下面已截止的政策（可用于补申请、审计核对）。",
        "bad_answers": "有 {n} 项填写有误，已暂时按“不清楚”处理，请修改标红的项目。",
        "eval_error": "无法评估：",
        "rules_error": "规则文件加载失败，请联系维护人员：",
        "nothing_here": "目录中的政策都不适用于您填写的地区。目前收录的是河北省（含石家庄市）、河南省和四川省广元市的政策。",
        "summary": "符合的政策一览", "star": "* 与其他政策是同一笔钱，合计中只计一次。", "sum_cols": {"title": "政策", "window": "执行情况", "amount": "金额", "until": "截止"},
        # rule browser
        "rb_search": "搜索（标题、原文、文号、编号）", "rb_province": "地区", "rb_all": "全部",
        "rb_industry": "行业", "rb_kind": "类型", "rb_date": "日期", "rb_window": "执行情况",
        "rb_windows": {"any": "全部", "open": "该日期执行中", "end_unknown": "未写明截止日期", "closed": "该日期已截止", "upcoming": "该日期尚未开始"},
        "rb_count": "共 {n} 项规则（目录共 {total} 项）", "rb_rule": "查看规则",
        "rb_cols": {"id": "编号", "title": "标题", "region": "地区", "kind": "类型", "strength": "力度",
                    "period": "执行期", "amount": "金额公式"},
        "rb_conditions": "条件", "rb_amount": "金额计算", "rb_period": "执行期", "rb_source": "政策依据",
        "rb_examples": "示例", "rb_no_amount": "文件未给出可计算的金额。", "rb_excludes": "与以下政策为同一笔钱，只计一次",
        "rb_tops_up": "在以下政策基础上补差", "rb_params": "参数", "rb_cap": "上限", "rb_floor": "下限",
        "rb_ex_cols": {"name": "示例", "facts": "事实", "status": "结论", "amount": "金额"},
        "rb_per": {"once": "一次性", "month": "每月", "year": "每年"},
        # batch
        "batch_intro": "顾问批量检查：上传企业名单（CSV 或 Excel，列名用事实项的中文名或英文名，如“所在省份”“从业人员”），逐家评估。",
        "batch_file": "上传企业名单", "batch_on": "评估日期", "batch_run": "开始检查",
        "batch_too_big": "文件超过 {mb} MB，请使用命令行批量处理：`eligibility batch 名单.xlsx`。",
        "batch_too_many": "名单共 {n} 行，超过网页版上限 {max} 行，请使用命令行批量处理：`eligibility batch 名单.xlsx`。",
        "batch_read_error": "无法读取文件：", "batch_summary": "每家企业汇总", "batch_chart": "各项政策符合的企业数和金额",
        "batch_errors": "有输入错误的行", "batch_download": "下载每家企业汇总（CSV）", "batch_done": "已完成 {n} 家企业。",
        "batch_download_long": "下载全部明细（每家企业×每项政策，CSV）", "batch_rows": "共 {n} 家企业。",
        "batch_progress": "正在检查：{done} / {total}",
        "batch_cols": {"name": "企业", "eligible": "符合的政策", "collect": "建议补充的信息", "total": "预计金额（元）",
                       "open": "现在可申请（元）", "companies": "符合的企业数", "money": "金额合计（元）",
                       "measure": "政策", "n_e": "符合项数", "n_u": "可能符合项数"},
        "batch_columns": "可用的列名见“规则浏览”页或命令 `eligibility facts`。",
        "batch_use_cli": "请使用命令行批量处理：`eligibility batch 名单.xlsx`。",
        "footer": "工具版本 {tool} · 规则版本 {rules} · 共 {n} 项规则。结果仅供参考，以受理部门审核为准。",
    },
    "en": {
        "title": "Business support-policy calculator",
        "subtitle": "Support measures of Hebei, Henan, Sichuan and their cities: answer a few questions to see what your business qualifies for and how much.",
        "lang": "语言 / Language", "page": "Page",
        "pages": {"form": "Questionnaire & results", "browse": "Rule browser", "batch": "Batch check"},
        "on": "Evaluation date", "on_help": "Whether a measure is still open is judged on this day (default today). Use an earlier date for past measures.",
        "windows_now": "On {d}: {open} measures open, {end_unknown} with no end date stated (confirm with the agency), {closed} closed, {upcoming} upcoming. Closed ones are listed too, for back-claims and audits.",
        "basics": "The basics", "more": "More questions",
        "more_help": "Ordered by how many measures and how much money each answer settles; results update after each answer. Pick “don't know” to skip.",
        "no_more": "No more questions for now.",
        "show_more": "Show {n} more questions", "reset": "Start again",
        "unknown": "Don't know", "yes": "Yes", "no": "No", "choose": "Choose…",
        "placeholder_num": "a number{unit}", "placeholder_text": "",
        "understood": "Understood as: {v}",
        "matters": "Decides {n} measures", "matters_money": ", about {m}",
        "results": "Results", "start_hint": "Start with province, kind of organisation and industry on the left; results update as you answer.",
        "total": "Expected money in total", "total_help": "Sum of the money you qualify for; overlapping measures counted once (closed ones included).",
        "total_open": "Still open now", "possible": "Possibly more", "possible_help": "Money from measures you may qualify for once the missing facts are known.",
        "counts": "{e} eligible · {u} possible · {i} not eligible",
        "downloads": "Downloads", "dl_html": "Report (HTML, printable)", "dl_csv": "Results (CSV)", "dl_json": "Results (JSON)",
        "ineligible_head": "Show the measures you do not qualify for, and why ({n})",
        "show_all": "Show all {n} possibly eligible measures",
        "none_here": "(none)", "window_empty_open": "Nothing that may apply is open on the evaluation date; see the closed measures below (for back-claims and audits).",
        "bad_answers": "{n} answers are invalid and are treated as “don't know” for now; please fix the fields marked in red.",
        "eval_error": "Cannot evaluate: ",
        "rules_error": "The rule files do not load; please tell the maintainers:",
        "nothing_here": "None of the catalogued measures applies where you are. The catalogue covers Hebei (incl. Shijiazhuang), Henan and Guangyuan (Sichuan).",
        "summary": "What you qualify for", "star": "* The same money as another measure: counted once in the total.", "sum_cols": {"title": "measure", "window": "window", "amount": "amount", "until": "until"},
        "rb_search": "Search (title, quote, document number, id)", "rb_province": "Region", "rb_all": "All",
        "rb_industry": "Industry", "rb_kind": "Kind", "rb_date": "Date", "rb_window": "Window",
        "rb_windows": {"any": "any", "open": "open on that date", "end_unknown": "no end date stated", "closed": "closed by that date", "upcoming": "not yet started"},
        "rb_count": "{n} rules (of {total} in the catalogue)", "rb_rule": "Show rule",
        "rb_cols": {"id": "id", "title": "title", "region": "region", "kind": "kind", "strength": "strength",
                    "period": "period", "amount": "amount formula"},
        "rb_conditions": "Conditions", "rb_amount": "Amount", "rb_period": "Period", "rb_source": "Source",
        "rb_examples": "Examples", "rb_no_amount": "The document gives no computable amount.",
        "rb_excludes": "Same money as (counted once)", "rb_tops_up": "Tops up", "rb_params": "Parameters",
        "rb_cap": "cap", "rb_floor": "floor",
        "rb_ex_cols": {"name": "example", "facts": "facts", "status": "verdict", "amount": "amount"},
        "rb_per": {"once": "once", "month": "per month", "year": "per year"},
        "batch_intro": "For advisers: upload a company list (CSV or Excel; column headers are fact names or their Chinese labels such as 所在省份, 从业人员) and check every company.",
        "batch_file": "Upload a company list", "batch_on": "Evaluation date", "batch_run": "Check",
        "batch_too_big": "The file is over {mb} MB; please use the command line: `eligibility batch list.xlsx`.",
        "batch_too_many": "The list has {n} rows, over the web limit of {max}; please use the command line: `eligibility batch list.xlsx`.",
        "batch_read_error": "Cannot read the file: ", "batch_summary": "Per-company summary",
        "batch_chart": "Companies qualifying and money per measure", "batch_errors": "Rows with input errors",
        "batch_download": "Download the per-company summary (CSV)", "batch_done": "{n} companies checked.",
        "batch_download_long": "Download all details (company × measure, CSV)", "batch_rows": "{n} companies.",
        "batch_progress": "Checking: {done} / {total}",
        "batch_cols": {"name": "company", "eligible": "eligible for", "collect": "facts to collect",
                       "total": "expected (yuan)", "open": "open now (yuan)", "companies": "companies",
                       "money": "money (yuan)", "measure": "measure", "n_e": "eligible", "n_u": "possible"},
        "batch_columns": "Column names: see the rule browser or `eligibility facts`.",
        "batch_use_cli": "Please use the command line: `eligibility batch list.xlsx`.",
        "footer": "Tool {tool} · rules {rules} · {n} rules. For guidance only; the agency's review decides.",
    },
}

CSS = """<style>
mark.key { background: #ffe58f; font-weight: 600; padding: 0 1px; }
mark.cite { background: #fff4c2; padding: 0 1px; }
mark.num { background: #d0ebff; padding: 0 1px; }
.card h3 { display: none; }
.card .status { font-weight: 600; } .card .eligible { color: #1a7f37; } .card .undetermined { color: #9a6700; }
.card .ineligible { color: #cf222e; } .card .muted, .muted { color: #59636e; font-size: .92em; }
.card blockquote { margin: .4em 0; padding: .3em .8em; border-left: 4px solid #d1d9e0; background: rgba(127,127,127,.08); }
.card p { margin: .25em 0; }
@media (max-width: 640px) { h1 { font-size: 1.9rem !important; } }
details.res { border: 1px solid rgba(127,127,127,.3); border-radius: .5rem; padding: .45em .8em; margin: .45em 0; }
details.res > summary { cursor: pointer; font-weight: 500; line-height: 1.5; }
details.res[open] > summary { margin-bottom: .4em; }
details.res .dot { display: inline-block; width: .65em; height: .65em; border-radius: 50%; margin-right: .5em; }
details.eligible .dot { background: #1a7f37; } details.undetermined .dot { background: #d4a72c; }
details.ineligible .dot { background: #cf222e; }
table.sum { width: 100%; border-collapse: collapse; font-size: .92em; }
table.sum th, table.sum td { border-bottom: 1px solid rgba(127,127,127,.25); padding: .25em .4em; text-align: left; }
</style>"""


# ---------------------------------------------------------------- shared


def tx(key: str) -> Any:
    return TX[lang()][key]


def lang() -> str:
    return "en" if st.session_state.get("lang") == "en" else "zh"


def msg(e: Exception) -> str:
    """FactValueError messages are 'zh / en': keep the reader's half."""
    text = str(e)
    if " / " not in text:
        return text
    return text.split(" / ")[0] if lang() == "zh" else text.split(" / ")[-1]


def _load(rules_dir: str | None):
    from eligibility import default_rules, load_rules

    rules = load_rules(rules_dir) if rules_dir else default_rules()
    places = known_places(rules)
    # The catalogue is some 100,000 long-lived objects. Streamlit ran a full garbage collection after
    # every script run (runner.postScriptGC, now off in .streamlit/config.toml: with 20 sessions each
    # collection also walks every session's reports), holding the GIL for ~70 ms. Python's own full
    # collections still come now and then: frozen objects are left out of them (~2 ms).
    gc.freeze()
    return rules, places


@st.cache_resource(show_spinner=False)
def catalogue_future(rules_dir: str | None) -> Future:
    """Load the rules in the background, once per server: the first screen does not wait for them."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="rules").submit(_load, rules_dir)


def _rules_dir() -> str | None:
    return os.environ.get("ELIGIBILITY_RULES_DIR") or None


def get_rules():
    try:
        return catalogue_future(_rules_dir()).result()
    except RuleLoadError as e:
        st.error(tx("rules_error"))
        st.code("\n".join(str(i) for i in e.issues[:50]))
        st.stop()


def early_places() -> dict:
    """Place names for parsing answers before the rules are in (regions only), then the full set."""
    fut = catalogue_future(_rules_dir())
    if fut.done() and fut.exception() is None:
        return fut.result()[1]
    return known_places(None)


# ---------------------------------------------------------------- questionnaire


def _persist_keys() -> None:
    """Widgets of a page that is not shown lose their state; keep answers in a plain dict."""
    store = st.session_state.setdefault("answers", {})
    for k, v in store.items():
        if k not in st.session_state:
            st.session_state[k] = v


def _save_keys() -> None:
    store = st.session_state.setdefault("answers", {})
    for k in list(st.session_state.keys()):
        if isinstance(k, str) and (k.startswith("q_") or k.startswith("skip_") or k == "on"):
            store[k] = st.session_state[k]


def _reset() -> None:
    for k in list(st.session_state.keys()):
        if isinstance(k, str) and (k.startswith("q_") or k.startswith("skip_")):
            del st.session_state[k]
    st.session_state["answers"] = {}
    st.session_state["asked"] = []
    st.session_state["n_next"] = NEXT_STEP


def _relabel() -> None:
    """After a language switch, set every answer again by value, so that option widgets show it in
    the new language (their state travels as the formatted label)."""
    for k, v in st.session_state.get("answers", {}).items():
        if k.startswith("q_") and v is not None:
            st.session_state[k] = v
    for k in ("page", "rb_province", "rb_industry", "rb_kind", "rb_window", "rb_rule"):
        if k in st.session_state and st.session_state[k] is not None:
            st.session_state[k] = st.session_state[k]


def _more() -> None:
    st.session_state["n_next"] = st.session_state.get("n_next", NEXT_STEP) + NEXT_STEP


def read_answers(facts, places) -> tuple[dict, dict, set, dict, dict]:
    """(values, raw as received, skipped, errors, notes) from the widgets' state."""
    values: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    skipped: set[str] = set()
    errors: dict[str, str] = {}
    notes: dict[str, str] = {}
    names = []
    for k in st.session_state.keys():
        if isinstance(k, str) and k.startswith(("q_", "skip_")):
            name = k.split("_", 1)[1]
            if name in facts and name not in names:
                names.append(name)
    for name in names:
        spec: FactSpec = facts[name]
        v = st.session_state.get(f"q_{name}")
        if spec.type in ("enum", "bool"):
            if v is None:
                continue
            if v == UNKNOWN:
                skipped.add(name)
                raw[name] = "不清楚"
                continue
            raw[name] = spec.value_label(v, "zh") if spec.type == "enum" else ("是" if v == "yes" else "否")
            v = {"yes": True, "no": False}.get(v, v) if spec.type == "bool" else v
        else:
            if st.session_state.get(f"skip_{name}"):
                skipped.add(name)
                raw[name] = "不清楚"
                continue
            if v is None or not str(v).strip():
                continue
            raw[name] = v
        try:
            value = spec.parse(v)
        except FactValueError as e:
            errors[name] = msg(e)
            continue
        if value is None:
            skipped.add(name)
            continue
        if name in ("city", "county"):
            fixed = normalise_place(name, value, places)
            if fixed != str(v).strip():  # completed or cleaned (石家庄 -> 石家庄市, invisible characters)
                notes[name] = tx("understood").format(v=fixed)
            value = fixed
        values[name] = value
    from eligibility.places import issues as place_issues

    for issue in place_issues(values):  # a city not of the province, a county not of the city
        errors[issue.where] = msg(issue.message)
        values.pop(issue.where, None)
    return values, raw, skipped, errors, notes


UNITS_EN = {"人": "people", "元": "yuan", "个": "", "天": "days", "月": "months", "年": "years",
            "吨标准煤": "t of standard coal", "千瓦时": "kWh"}


def unit_words(unit: str | None, L: str) -> str:
    if not unit:
        return ""
    if L == "zh":
        return f"（{unit}）"
    en = UNITS_EN.get(unit, unit)
    return f" ({en})" if en else ""


def big_money(value, L: str) -> str:
    """Metric-sized money: 44,000.00元 / ¥44,000.00 (the English words do not fit a metric)."""
    return money(value, L) if L == "zh" else f"¥{value:,.2f}"


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()<>#+-.!|~:$"})


def md_text(text: str) -> str:
    """Plain text made safe inside a widget label (labels are Markdown)."""
    return text.translate(_MD_SPECIAL)


def ask(spec: FactSpec, errors: dict, notes: dict, extra: str = "", first: bool = False) -> None:
    """One question: its widget, help text and unit, and its error right under it.

    The first questions are self-explanatory and keep their help in a tooltip; later ones show the
    question in bold, then the help text and what hangs on it, in the widget's own label (one element
    per question rather than a text block and a widget: fewer elements, faster reruns)."""
    L = lang()
    key = f"q_{spec.name}"
    unit = unit_words(spec.unit, L)
    label = spec.label(L) + unit
    help_text = (spec.help(L) or None) if first else None
    if not first:
        note = " ".join(x for x in (spec.help(L), extra) if x)
        label = f"**{md_text(label)}**" + (f" :gray[{md_text(note)}]" if note else "")
    if spec.type == "enum":
        st.selectbox(label, options=[*spec.values, UNKNOWN], index=None, key=key, help=help_text,
                     placeholder=tx("choose"),
                     format_func=lambda v, s=spec, u=tx("unknown"), L=L: u if v == UNKNOWN else s.value_label(v, L))
    elif spec.type == "bool":
        st.radio(label, options=["yes", "no", UNKNOWN], index=None, key=key, help=help_text, horizontal=True,
                 format_func={"yes": tx("yes"), "no": tx("no"), UNKNOWN: tx("unknown")}.__getitem__)
    else:  # text-like: typed and parsed; later questions get an explicit "don't know" box
        skip_key = f"skip_{spec.name}"
        ph = tx("placeholder_num").format(unit=unit) if spec.type in ("int", "money", "percent", "number") else \
            ("2020-03-15" if spec.type == "date" else "")
        st.text_input(label, key=key, help=help_text, placeholder=ph, disabled=bool(st.session_state.get(skip_key)))
        if not first:  # a first question left empty is simply unknown
            st.checkbox(tx("unknown"), key=skip_key)
    if spec.name in errors:
        st.error(errors[spec.name], icon=":material/error:")
    elif spec.name in notes:
        st.caption(notes[spec.name])


def _report(values: dict, on: dt.date, rules):
    """Evaluate, reusing the last report when nothing changed (reruns also come from other widgets)."""
    sig = (tuple(sorted((k, repr(v)) for k, v in values.items())), on, rules.version)
    cached = st.session_state.get("_last_report")
    if cached and cached[0] == sig:
        return cached[1]
    report = evaluate(values, on=on, rules=rules)
    st.session_state["_last_report"] = (sig, report)
    return report


def _form_view(values: dict, raw: dict, skipped: set, errors: dict, on: dt.date, L: str) -> dict:
    """Everything the rest of the form page shows, worked out before it is drawn (waits for the rules)."""
    facts = default_facts()
    rules, _ = get_rules()
    try:
        report = _report(values, on, rules)
        eval_error = None
    except CompanyValidationError as e:
        report, eval_error = None, e
    for name in list(values) + list(skipped) + list(errors):
        if name not in FIRST_QUESTIONS and name not in st.session_state["asked"]:
            st.session_state["asked"].append(name)
    st.session_state["report"] = report
    st.session_state["values"] = values
    st.session_state["raw_input"] = raw
    view: dict[str, Any] = {"rules": rules, "report": report, "eval_error": eval_error, "windows": None,
                            "next": None, "results": None}
    if report is not None:
        counts = {w: 0 for w in P.WINDOWS}
        for r in report.results:
            counts[r.window] += 1
        view["windows"] = tx("windows_now").format(d=on.isoformat(), **counts)
    asked = [n for n in st.session_state["asked"] if n in facts and n not in FIRST_QUESTIONS]
    view["asked"] = asked
    if report is not None and "province" in values:
        nxt = next_questions(report, rules, exclude=set(asked) | skipped | set(errors),
                             limit=st.session_state["n_next"])
        view["next"] = []
        for q in nxt:
            extra = tx("matters").format(n=q.n_rules)
            if q.money:
                extra += tx("matters_money").format(m=money(q.money, L))
            view["next"].append((q.spec, f"（{extra}）" if L == "zh" else f"({extra})"))
        if eval_error is None:
            view["results"] = results_view(report, rules, L)
    return view


def page_form() -> None:
    """Questions on the left, results on the right (stacked on a phone).

    Once the rules are loaded (every run after the first screen), the whole page is worked out first and
    then drawn in one go: the browser re-renders the page for each batch of elements it receives, so a
    script that computes between elements makes the browser redraw the page several times per answer.
    On the very first screen the first questions are sent before the rules are needed, so the first
    screen never waits for the catalogue to load."""
    L = lang()
    facts = default_facts()
    _persist_keys()
    st.session_state.setdefault("asked", [])
    st.session_state.setdefault("n_next", NEXT_STEP)
    values, raw, skipped, errors, notes = read_answers(facts, early_places())
    on = st.session_state.get("on") or dt.date.today()
    view = _form_view(values, raw, skipped, errors, on, L) if catalogue_future(_rules_dir()).done() else None

    left, right = st.columns([5, 7], gap="large")
    with left:
        st.date_input(tx("on"), min_value=dt.date(2015, 1, 1),
                      max_value=dt.date(2035, 12, 31), key="on", help=tx("on_help"))
        windows_slot = st.empty() if view is None else None
        if view is not None and view["windows"]:
            st.caption(view["windows"])
        if errors:
            st.warning(tx("bad_answers").format(n=len(errors)))
        st.subheader(tx("basics"))
        for q in first_questions(values, facts):
            ask(q.spec, errors, notes, first=True)
    with right:
        st.subheader(tx("results"))
        # a placeholder only while the rules load; otherwise the message goes straight into the column
        results_slot = st.empty() if view is None else st
    if view is None:  # first screen: the rules were still loading
        view = _form_view(values, raw, skipped, errors, on, L)
        if view["windows"]:
            windows_slot.caption(view["windows"])

    with left:
        st.markdown(f"### {tx('more')}\n\n<span class=\"muted\">{html.escape(tx('more_help'))}</span>",
                    unsafe_allow_html=True)
        for name in view["asked"]:
            ask(facts[name], errors, notes)
        if view["next"] is not None:
            for spec, extra in view["next"]:
                ask(spec, errors, notes, extra)
            if view["next"]:
                st.button(tx("show_more").format(n=NEXT_STEP), key="more_questions", on_click=_more)
            else:
                st.info(tx("no_more"))
        st.button(tx("reset"), key="reset", on_click=_reset)
    with right:
        if view["eval_error"] is not None:
            results_slot.error(tx("eval_error") + "; ".join(str(i) for i in view["eval_error"].issues))
        elif view["results"] is None:
            results_slot.info(tx("start_hint"))
        else:
            draw_results(view["results"], view["report"], view["rules"], raw, L)
    _save_keys()


def results_view(report, rules, L: str) -> dict:
    """The results column's figures and HTML, computed before anything is drawn."""
    groups = P.by_window(report)
    here = [r for g in groups.values() for r in g]
    v: dict[str, Any] = {
        "metrics": (big_money(report.total_amount, L), big_money(report.total_in_effect, L),
                    big_money(P.possible_money(report, rules), L)),
        "counts": tx("counts").format(e=sum(r.status == "eligible" for r in here),
                                      u=sum(r.status == "undetermined" for r in here),
                                      i=sum(r.status == "ineligible" for r in here)),
        "summary": None, "star": False, "nothing": not here,
        "hidden": sum(1 for r in report.results if P.not_here(r)),
    }
    eligible = [r for w in P.WINDOWS for r in groups[w] if r.status == "eligible"]
    if eligible:
        cols = tx("sum_cols")
        wwords = P.t(L, "window_head")
        rows = [(r.title.get(L), wwords[r.window].split("（")[0].split(" (")[0],
                 P.amount_words(r, L) + ("" if r.counted_in_total or r.amount is None else " *"),
                 str(min((d for d in (r.period.end, r.period.deadline) if d), default="") or "—"))
                for r in eligible]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols.values())
        body = "".join("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in row) + "</tr>" for row in rows)
        v["summary"] = f'<table class="sum"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        v["star"] = any(r.amount is not None and not r.counted_in_total for r in eligible)
    first = P.default_window(groups)
    v["first"] = first
    heads = P.t(L, "window_head")
    v["windows"] = []
    for w in [first] + [x for x in P.WINDOWS if x != first]:
        group = groups[w]
        relevant = [r for r in group if r.status != "ineligible"]
        inel = [r for r in group if r.status == "ineligible"]
        eligible_here = [r for r in relevant if r.status == "eligible"]
        maybe = [r for r in relevant if r.status == "undetermined"]
        shown = eligible_here + (maybe if st.session_state.get(f"all_{w}", False) else maybe[:MAX_MAYBE])
        items = "".join(_result_html(r, rules, L, report.as_of) for r in shown)
        inel_html = (_ineligible_html(inel, rules, L) if inel and st.session_state.get(f"inel_{w}", False)
                     else None)
        v["windows"].append({"w": w, "head": f"### {heads[w]} · {len(relevant)}", "empty": not group,
                             "items": items, "n_maybe": len(maybe), "n_inel": len(inel), "inel_html": inel_html})
    return v


def draw_results(v: dict, report, rules, raw: dict, L: str) -> None:
    """Few elements, long texts in one Markdown block each: every element costs the server and the browser
    time on each answer."""
    row = st.container(horizontal=True, gap="medium")
    row.metric(tx("total"), v["metrics"][0], help=tx("total_help"))
    row.metric(tx("total_open"), v["metrics"][1])
    row.metric(tx("possible"), v["metrics"][2], help=tx("possible_help"))
    st.caption(v["counts"])
    with st.expander(tx("downloads"), expanded=False):
        stamp = report.as_of.isoformat()
        d = st.container(horizontal=True)
        d.download_button(tx("dl_html"), data=lambda: P.report_html(report, rules, L, raw).encode("utf-8"),
                          file_name=f"policy-report-{stamp}.html", mime="text/html", key="dl_html",
                          on_click="ignore")
        d.download_button(tx("dl_csv"), data=lambda: P.report_csv(report, L), file_name=f"policy-results-{stamp}.csv",
                          mime="text/csv", key="dl_csv", on_click="ignore")
        d.download_button(tx("dl_json"), data=lambda: P.report_json(report, L, raw),
                          file_name=f"policy-results-{stamp}.json", mime="application/json", key="dl_json",
                          on_click="ignore")
    if v["summary"]:
        star = f'<p class="muted">{html.escape(tx("star"))}</p>' if v["star"] else ""
        st.markdown(f"#### {tx('summary')}\n\n{v['summary']}{star}", unsafe_allow_html=True)
    if v["first"] != "open":
        st.info(tx("window_empty_open"))
    for g in v["windows"]:
        if g["empty"]:
            st.markdown(f"{g['head']}\n\n<p class=\"muted\">{html.escape(tx('none_here'))}</p>", unsafe_allow_html=True)
            continue
        st.markdown(f"{g['head']}\n\n{g['items']}" if g["items"] else g["head"], unsafe_allow_html=True)
        if g["n_maybe"] > MAX_MAYBE:
            st.checkbox(tx("show_all").format(n=g["n_maybe"]), key=f"all_{g['w']}")
        if g["n_inel"]:
            # rendered only on request: a long why-not list would slow every answer down
            if st.checkbox(tx("ineligible_head").format(n=g["n_inel"]), key=f"inel_{g['w']}") and g["inel_html"]:
                st.markdown(g["inel_html"], unsafe_allow_html=True)
    if v["hidden"]:
        st.caption(P.t(L, "not_here").format(n=v["hidden"]))
    if v["nothing"]:
        st.info(tx("nothing_here"))


def _result_html(r, rules, L: str, on: dt.date | None = None) -> str:
    facts = rules.facts
    amount = f" · {P.amount_words(r, L)}" if r.amount is not None else ""
    status = P.status_words(r, L, facts)
    return (f'<details class="res {r.status}"><summary><span class="dot"></span>{html.escape(r.title.get(L))}'
            f'{html.escape(amount)} — {html.escape(status)}</summary>'
            f'{P.card_html(r, rules.by_id.get(r.rule_id), L, facts, on)}</details>')


def _ineligible_html(results, rules, L: str) -> str:
    """Compact why-not list: the failed condition in the document's words and what would change it."""
    items = [f"<li><b>{html.escape(r.title.get(L))}</b> <span class=\"muted\">{html.escape(P.source_words(r))}</span>"
             f"{P.why_not_html(r, L, rules.facts)}</li>" for r in results]
    return f"<div class=\"card\"><ul>{''.join(items)}</ul></div>"


# ---------------------------------------------------------------- rule browser


def page_browse(rules) -> None:
    from eligibility import amounts
    from eligibility.explain import Labeller

    L = lang()
    facts = rules.facts
    allw = tx("rb_all")
    c1, c2, c3 = st.columns([3, 2, 2])
    query = c1.text_input(tx("rb_search"), key="rb_q").strip()
    provinces = [p for p in facts["province"].values if p != "其他"]
    province = c2.selectbox(tx("rb_province"), options=["", *provinces], key="rb_province",
                            format_func=lambda v: allw if v == "" else facts["province"].value_label(v, L))
    industry = c3.selectbox(tx("rb_industry"), options=["", *facts["industry"].values], key="rb_industry",
                            format_func=lambda v: allw if v == "" else facts["industry"].value_label(v, L))
    c4, c5, c6 = st.columns([3, 2, 2])
    kinds = c4.multiselect(tx("rb_kind"), options=["money", "relief", "service"], key="rb_kind",
                           format_func=KIND_WORDS[L].__getitem__, placeholder=allw)
    on = c5.date_input(tx("rb_date"), value=dt.date.today(), key="rb_on")
    wsel = c6.selectbox(tx("rb_window"), options=["any", "open", "end_unknown", "closed", "upcoming"], key="rb_window",
                        format_func=tx("rb_windows").__getitem__)
    from eligibility.evaluate import window

    chosen = []
    for r in rules:
        s = r.spec
        if kinds and s.kind not in kinds:
            continue
        if province and not P.rule_applies_to(r, {"province": province}):
            continue
        if industry and not P.rule_applies_to(r, {"industry": industry}):
            continue
        if wsel != "any" and window(r, on)[0] != wsel:
            continue
        if query:
            hay = " ".join([s.id, s.title.zh, s.title.en, s.benefit.zh, s.benefit.en, " ".join(s.quotes),
                            r.document.title, r.document.number or "", r.jurisdiction_text]).lower()
            if not all(word.lower() in hay for word in query.split()):
                continue
        chosen.append(r)
    st.caption(tx("rb_count").format(n=len(chosen), total=len(rules)))
    cols = tx("rb_cols")
    rows = []
    for r in chosen:
        s = r.spec
        rows.append({cols["id"]: s.id, cols["title"]: s.title.get(L), cols["region"]: r.jurisdiction_text,
                     cols["kind"]: KIND_WORDS[L][s.kind], cols["strength"]: STRENGTH_WORDS[L][s.strength],
                     cols["period"]: f"{s.period.start} – {s.period.end or s.period.deadline or '…'}"})
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(rows)))
        ids = [r.id for r in chosen]
        rid = st.selectbox(tx("rb_rule"), options=ids, key="rb_rule",
                           format_func=lambda i: f"{rules.by_id[i].spec.title.get(L)} ({i})")
        if rid:
            rule_detail(rules.by_id[rid], rules, L, amounts, Labeller)


def _value_text(spec, v, L: str) -> str:
    try:
        return spec.value_label(spec.parse(v), L)
    except Exception:  # noqa: BLE001 - an example value shown as written
        return str(v)


def _param_text(amount) -> dict:
    """Parameters as the document writes them ("100%"), falling back to the numbers."""
    text = getattr(amount, "param_text", None)
    return dict(text) if text else {k: str(v) for k, v in amount.params.items()}


def rule_detail(rule, rules, L: str, amounts, Labeller) -> None:
    s = rule.spec
    facts = rules.facts
    colon = "：" if L == "zh" else ": "
    st.markdown(f"#### {s.title.get(L)}")
    st.markdown(f"`{s.id}` · {KIND_WORDS[L][s.kind]} · {STRENGTH_WORDS[L][s.strength]} · {rule.jurisdiction_text}")
    st.markdown(f"**{s.benefit.get(L)}**  \n{P.t(L, 'agency')}{colon}{s.agency.get(L)}")
    st.markdown(f"##### {tx('rb_conditions')}")
    st.markdown("\n".join(P.condition_lines(rule.condition, L, facts)))
    st.markdown(f"##### {tx('rb_amount')}")
    if rule.amount is None:
        st.caption(tx("rb_no_amount"))
    else:
        lab = Labeller(facts, L)
        lines = []
        for cond, expr in rule.amount.cases:
            f = amounts.render(expr, lab.formula_name(_param_text(rule.amount)))
            if cond is not None:
                when = "; ".join(x.strip("- ").strip() for x in P.condition_lines(cond, L, facts))
                lines.append(f"- {when} → {f}")
            else:
                lines.append(f"- {f}")
        if rule.amount.spec.text:
            lines.append(f"- {rule.amount.spec.text.get(L)}")
        lines.append(f"- {tx('rb_per')[rule.amount.spec.per]}")
        for label, part in ((tx("rb_cap"), rule.amount.spec.cap), (tx("rb_floor"), rule.amount.spec.floor)):
            if part is not None:
                lines.append(f"- {label}{colon}{part}")
        st.markdown("\n".join(lines))
    st.markdown(f"##### {tx('rb_period')}")
    p = s.period
    st.markdown(f"{p.start} – {p.end or '…'}" + (f"；{P.t(L, 'deadline')}{colon}{p.deadline}" if p.deadline else "")
                + (f"  \n{p.text}" if p.text else ""))
    if s.excludes:
        st.caption(f"{tx('rb_excludes')}{colon}{', '.join(s.excludes)}")
    if s.tops_up:
        st.caption(f"{tx('rb_tops_up')}{colon}{s.tops_up}")
    st.markdown(f"##### {tx('rb_source')}")
    doc = rule.document
    st.markdown(f"{doc.title}" + (f"（{doc.number}）" if doc.number else "") + (f" · {doc.issuer}" if doc.issuer else "")
                + (f" · {doc.date}" if doc.date else ""))
    quote = " …… ".join(s.quotes)
    st.markdown(f"<div class=\"card\"><blockquote>{P.highlight_html(quote, P.highlight_terms(rule))}</blockquote></div>",
                unsafe_allow_html=True)
    if s.note:
        st.caption(s.note)
    st.markdown(f"##### {tx('rb_examples')}")
    cols = tx("rb_ex_cols")
    rows = []
    for ex in s.examples:
        fx = "；".join(f"{facts[k].label(L)}={_value_text(facts[k], v, L)}" if k in facts else f"{k}={v}"
                      for k, v in ex.facts.items())
        rows.append({cols["name"]: ex.name, cols["facts"]: fx,
                     cols["status"]: STATUS_WORDS[L][ex.expect.status],
                     cols["amount"]: "" if ex.expect.amount is None else str(ex.expect.amount)})
    st.dataframe(rows, hide_index=True, width="stretch")


# ---------------------------------------------------------------- batch


def page_batch(rules) -> None:
    """Advisers' batch check: the same eligibility.batch code as `eligibility batch`, with web limits."""
    L = lang()
    st.caption(tx("batch_intro"))
    from eligibility.batch import UPLOAD_LIMITS, evaluate_upload, read_table  # only this page needs polars
    from eligibility.errors import InputLimitError
    st.caption(tx("batch_columns"))
    up = st.file_uploader(tx("batch_file"), type=["csv", "xlsx", "xls", "txt"], key="batch_file")
    on = st.date_input(tx("batch_on"), key="batch_on")
    if up is None:
        return
    data = up.getvalue()
    if len(data) > BATCH_MAX_BYTES:
        st.error(tx("batch_too_big").format(mb=BATCH_MAX_BYTES // (1024 * 1024)))
        return
    try:  # size, rows, columns and an .xlsx sheet's cells are checked before anything is parsed
        frame = read_table(data, up.name, limits=UPLOAD_LIMITS)
    except InputLimitError as e:
        st.error(tx("batch_read_error") + msg(e) + " " + tx("batch_use_cli"))
        return
    except Exception as e:  # noqa: BLE001 - shown to the user, never a traceback
        st.error(tx("batch_read_error") + msg(e))
        return
    if frame.height > BATCH_MAX_ROWS:
        st.error(tx("batch_too_many").format(n=frame.height, max=BATCH_MAX_ROWS))
        return
    st.caption(tx("batch_rows").format(n=frame.height))
    sig = (up.name, len(data), hash(data), on, rules.version)
    cached = st.session_state.get("_batch_result")
    run = st.button(tx("batch_run"), key="batch_run", type="primary")
    if not run and not (cached and cached[0] == sig):
        return
    if cached and cached[0] == sig and not run:
        summary, long = cached[1]
    else:
        bar = st.progress(0.0, text=tx("batch_progress").format(done=0, total=frame.height))

        def progress(done: int, total: int) -> None:
            bar.progress(min(done / max(total, 1), 1.0), text=tx("batch_progress").format(done=done, total=total))

        try:
            step = max(50, frame.height // 20)  # about twenty progress updates
            # the long form without the input columns other than the name (they would be repeated ~240 times)
            summary, long = evaluate_upload(frame, on=on, rules=rules, progress=progress, chunk_rows=step)
        except Exception as e:  # noqa: BLE001
            st.error(tx("batch_read_error") + msg(e))
            return
        bar.progress(1.0, text=tx("batch_progress").format(done=frame.height, total=frame.height))
        st.session_state["_batch_result"] = (sig, (summary, long))
    show_batch(frame, summary, long, rules, L)


def _name_column(frame, facts):
    """The first input column that is not a fact (e.g. 企业名称), to name the companies."""
    for c in frame.columns:
        if not c.startswith("__") and facts.column_for(c) is None:
            return c
    return None


def show_batch(frame, summary, long, rules, L: str) -> None:
    import polars as pl

    facts = rules.facts
    st.success(tx("batch_done").format(n=summary.height))
    cols = tx("batch_cols")
    name_col = _name_column(frame, facts)
    view = summary
    if name_col:
        view = view.with_columns(frame[name_col].cast(pl.Utf8).alias(cols["name"]))
    titles = {r.id: r.spec.title.get(L) for r in rules}

    def titled(ids):
        return "；".join(titles.get(i, i) for i in (ids or "").split(";") if i)

    view = view.with_columns(
        pl.col("eligible").map_elements(titled, return_dtype=pl.Utf8).alias(cols["eligible"]),
        pl.col("facts_to_collect").map_elements(
            lambda x: "、".join(facts[f].label(L) if f in facts else f for f in (x or "").split(";") if f),
            return_dtype=pl.Utf8).alias(cols["collect"]),
        pl.col("total_amount").cast(pl.Float64).alias(cols["total"]),
        pl.col("total_in_effect").cast(pl.Float64).alias(cols["open"]),
    )
    view = view.rename({"n_eligible": cols["n_e"], "n_undetermined": cols["n_u"]})
    show = ["row", *([cols["name"]] if name_col else []), cols["n_e"], cols["n_u"], cols["total"], cols["open"],
            cols["eligible"], cols["collect"]]
    st.markdown(f"#### {tx('batch_summary')}")
    st.dataframe(view.filter(pl.col("errors").is_null()).select(show), hide_index=True, width="stretch",
                 key="batch_summary")
    bad = view.filter(pl.col("errors").is_not_null())
    if bad.height:
        st.markdown(f"#### {tx('batch_errors')} · {bad.height}")
        st.dataframe(bad.select(["row", *([cols["name"]] if name_col else []), "errors"]), hide_index=True,
                     width="stretch", key="batch_bad")
    per_rule = (long.filter(pl.col("status") == "eligible")
                .group_by("rule_id")
                .agg(pl.len().alias(cols["companies"]),
                     pl.col("amount").cast(pl.Float64).fill_null(0).sum().alias(cols["money"]))
                .with_columns(pl.col("rule_id").replace_strict(titles, default=pl.col("rule_id"))
                              .alias(cols["measure"]))
                .sort(cols["companies"], descending=True))
    if per_rule.height:
        st.markdown(f"#### {tx('batch_chart')}")
        top = per_rule.head(30)
        c1, c2 = st.columns(2)
        c1.bar_chart(top, x=cols["measure"], y=cols["companies"], horizontal=True, height=520,
                     sort=f"-{cols['companies']}")
        c2.bar_chart(top, x=cols["measure"], y=cols["money"], horizontal=True, height=520, color="#2e7d32",
                     sort=f"-{cols['money']}")
        st.dataframe(per_rule.select([cols["measure"], "rule_id", cols["companies"], cols["money"]]),
                     hide_index=True, width="stretch", key="batch_per_rule")
    d1, d2 = st.columns(2)
    d1.download_button(tx("batch_download"), data=lambda: _csv_bytes(summary), file_name="batch-summary.csv",
                       mime="text/csv", key="batch_download", on_click="ignore")
    d2.download_button(tx("batch_download_long"), data=lambda: _csv_bytes(long), file_name="batch-results-long.csv",
                       mime="text/csv", key="batch_download_long", on_click="ignore")


def _csv_bytes(frame) -> bytes:
    """UTF-8 with BOM (Excel), nested columns flattened to text."""
    import polars as pl

    from eligibility import safe_cells

    flat = frame.with_columns([pl.col(c).cast(pl.Utf8) for c, t in frame.schema.items()
                               if isinstance(t, (pl.List, pl.Struct, pl.Object, pl.Decimal))])
    return ("\ufeff" + safe_cells.frame(flat).write_csv()).encode("utf-8")  # no cell a spreadsheet would run


# ---------------------------------------------------------------- main


_RUN: dict[str, float] = {}  # when the current full run started (module globals are fresh on each full run)


@st.fragment
def form_fragment() -> None:
    """The form page, its footer and the end-of-run marker as one fragment: answering a question reruns
    only this, and the header above (title, language, page switch) is neither rebuilt nor sent again."""
    started = _RUN.pop("started", None) or time.perf_counter()
    page_form()
    footer(started)


def footer(started: float) -> None:
    rules = get_rules()[0]
    st.divider()
    st.caption(tx("footer").format(tool=__version__, rules=rules.version, n=len(rules)))
    # the last element of every run (full or fragment): tests and bench/ui.py wait for it to know a run is
    # fully shown
    st.session_state["_runs"] = st.session_state.get("_runs", 0) + 1
    took = (time.perf_counter() - started) * 1000
    st.markdown(f'<span class="run-done" data-run="{st.session_state["_runs"]}" data-ms="{took:.0f}"></span>',
                unsafe_allow_html=True)


def main() -> None:
    started = time.perf_counter()
    st.markdown(CSS, unsafe_allow_html=True)
    head, switch = st.columns([5, 2])
    with switch:
        st.radio(TX["zh"]["lang"], options=["zh", "en"], key="lang", horizontal=True, on_change=_relabel,
                 format_func=lambda v: {"zh": "中文", "en": "English"}[v])
    with head:
        st.title(tx("title"))
    st.caption(tx("subtitle"))
    catalogue_future(_rules_dir())  # start loading the rules while the page is sent
    pages = tx("pages")
    page = st.radio(tx("page"), options=list(pages), key="page", horizontal=True,
                    format_func=lambda v: pages[v], label_visibility="collapsed")
    if page == "form":
        _RUN["started"] = started
        form_fragment()
        return
    if page == "browse":
        page_browse(get_rules()[0])
    else:
        page_batch(get_rules()[0])
    footer(started)


main()
