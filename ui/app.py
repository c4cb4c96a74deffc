"""The Streamlit app a business owner fills in: `streamlit run ui/app.py`.

A thin layer: widgets fill a dict of raw answers, each parsed through the fact dictionary
(`FactSpec.parse`), the engine evaluates, `eligibility.owner` makes the owner's view (one line per
benefit, the date framing, maybes by question) and `eligibility.present` words it. All words are in
`eligibility/words.py`. Every widget has a key (tests drive the app by keys).
Set ELIGIBILITY_RULES_DIR to use another rules folder than the bundled one.
"""

from __future__ import annotations

import datetime as dt
import gc
import html
import os
import re
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from eligibility import __version__  # noqa: E402
from eligibility import present as P  # noqa: E402
from eligibility.errors import CompanyValidationError, RuleLoadError  # noqa: E402
from eligibility.explain import KIND_WORDS, STATUS_WORDS, STRENGTH_WORDS, money  # noqa: E402
from eligibility.facts import FactSpec, FactValueError, default_facts  # noqa: E402
from eligibility.incremental import Evaluator  # noqa: E402
from eligibility.owner import MODES, askable, build_view, question_order  # noqa: E402
from eligibility.questions import FIRST_QUESTIONS, first_questions, known_places, normalise_place  # noqa: E402
from eligibility.words import APP, CITY_EN, SOME_COUNTIES  # noqa: E402

st.set_page_config(page_title="政策计算器 · Policy calculator", page_icon="🧾", layout="wide")

UNKNOWN = "__unknown__"
NEXT_STEP = 5
BATCH_MAX_BYTES = 5 * 1024 * 1024
BATCH_MAX_ROWS = 2000
KEEP_ON_RESET = ("lang", "page", "_runs")  # the language, the page and the run counter are not answers

CSS = """<style>
mark.key { background: #ffe58f; font-weight: 600; padding: 0 1px; }
mark.cite { background: #fff4c2; padding: 0 1px; }
mark.num { background: #d0ebff; padding: 0 1px; }
.muted { color: #59636e; font-size: .92em; }
@media (max-width: 640px) { h1 { font-size: 1.7rem !important; }
  [data-testid="stMainBlockContainer"] { padding-top: 2.5rem; padding-left: .8rem; padding-right: .8rem; } }
/* the answer at the top */
.sum { border: 2px solid #1a7f37; border-radius: .6rem; padding: .6em .9em; margin: 0 0 .6em; }
.sum-head { font-weight: 600; } .sum .big { font-size: 1.9em; font-weight: 700; color: #1a7f37; line-height: 1.2; }
.sum-definite.none { font-weight: 600; margin: .2em 0; }
.sum-confirm { color: #9a6700; } .sum > div { margin: .15em 0; }
ul.top { margin: .3em 0 0; padding-left: 1.1em; } ul.top .amt { font-weight: 600; }
a.see-all { display: inline-block; margin-top: .3em; }
/* one benefit: a card (no table: it reads on a phone) */
h4.sec { margin: 1.1em 0 .3em; font-size: 1.05rem; }
details.ben { border: 1px solid rgba(127,127,127,.3); border-left: 4px solid #1a7f37; border-radius: .5rem;
  padding: .45em .8em; margin: .45em 0; }
details.ben > summary { cursor: pointer; list-style: none; display: flex; flex-wrap: wrap; gap: .1em .8em;
  align-items: baseline; }
details.ben > summary::-webkit-details-marker { display: none; }
details.ben .t { flex: 1 1 16em; font-weight: 600; } details.ben .amt { font-weight: 700; color: #1a7f37; }
details.ben .sub { flex: 1 1 100%; color: #59636e; font-size: .9em; }
details.ben[open] > summary { margin-bottom: .4em; }
details.ben .body p { margin: .3em 0; }
details.ben blockquote { margin: .4em 0; padding: .3em .8em; border-left: 4px solid #d1d9e0;
  background: rgba(127,127,127,.08); font-size: .92em; }
.alt { font-size: .92em; }
.mq { border: 1px dashed rgba(127,127,127,.45); border-radius: .5rem; padding: .4em .8em; margin: .4em 0; }
.answered ul { margin: .1em 0 .2em; padding-left: 1.1em; columns: 2 14em; } .answered li { break-inside: avoid; }
.mq-head { font-weight: 600; } .mq ul, ul.svc, ul.inel { margin: .2em 0; padding-left: 1.2em; }
details.more > summary { cursor: pointer; color: #0969da; font-size: .92em; }
/* the phone: the answer above the form, hidden where the results column sits beside it */
@media (min-width: 641px) { .st-key-phone_summary { display: none; } }
</style>"""


# Streamlit's date fields count a typed date only when the focus leaves the field (a "blur"). People
# type the day last and expect it to count: when the day is typed (or Enter pressed) in any date field,
# the focus moves to an invisible element, and the date counts at once. Installed once per page.
DATE_COMMIT_JS = """<script>
(() => {
  if (window.__eligibilityDates) return;
  window.__eligibilityDates = true;
  const sink = document.createElement("span");
  sink.tabIndex = -1;
  sink.setAttribute("aria-hidden", "true");
  sink.style.cssText = "position:fixed;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)";
  document.body.appendChild(sink);
  let typed = 0;  // digits typed into the day segment since it got the focus
  document.addEventListener("focusin", (ev) => { typed = 0; }, true);
  document.addEventListener("keydown", (ev) => {
    const field = ev.target.closest && ev.target.closest("[data-testid=stDateInputField]");
    if (!field) return;
    const isDay = ev.target.getAttribute("data-type") === "day";
    let done = ev.key === "Enter";
    if (isDay && /^[0-9]$/.test(ev.key)) {
      typed += 1;
      done = typed >= 2 || (typed === 1 && /^[4-9]$/.test(ev.key));
    }
    if (done) setTimeout(() => { if (field.querySelector("input[type=date]")?.value) sink.focus(); }, 50);
  }, true);
})();
</script>"""


# ---------------------------------------------------------------- shared


_CUR = {"lang": "zh"}  # the reader's language for this run: read once per run, not at every word


def _read_lang() -> str:
    _CUR["lang"] = "en" if st.session_state.get("lang") == "en" else "zh"
    return _CUR["lang"]


def lang() -> str:
    return _CUR["lang"]


def tx(key: str) -> Any:
    return APP[_CUR["lang"]][key]


def msg(e: Exception | str) -> str:
    """Messages are 'zh / en': keep the reader's half."""
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


def zh(text: str) -> str:
    """Chinese text (a place, a document) shown in English mode, marked as Chinese."""
    return f'<span lang="zh-CN">{html.escape(text)}</span>' if lang() == "en" else html.escape(text)


# ---------------------------------------------------------------- answers kept across pages, reset


FORM_KEYS = ("q_", "skip_")
FORM_SINGLE = ("on", "when", "company_name")


def _persist_keys() -> None:
    """Widgets of a page that is not shown lose their state; keep answers in a plain dict."""
    store = st.session_state.setdefault("answers", {})
    present = set(st.session_state.keys())  # one look at the state, not one per answer
    for k, v in store.items():
        if k not in present:
            st.session_state[k] = v


def _save_keys() -> None:
    store = st.session_state.setdefault("answers", {})
    for k in list(st.session_state.keys()):
        if isinstance(k, str) and (k.startswith(FORM_KEYS) or k in FORM_SINGLE):
            store[k] = st.session_state[k]


def _reset() -> None:
    """Clear everything: every widget back to empty (set, so the browser shows it) and every other
    piece of session state dropped; only the language and the page stay."""
    facts = default_facts()
    for k in list(st.session_state.keys()):
        if not isinstance(k, str) or k in KEEP_ON_RESET:
            continue
        if k.startswith("q_") and k[2:] in facts:
            spec = facts[k[2:]]
            st.session_state[k] = None if spec.type in ("enum", "bool", "date") else ""
        elif k.startswith("skip_") or k.startswith("show_"):
            st.session_state[k] = False
        elif k == "edit_fact":
            st.session_state[k] = None
        elif k == "company_name":
            st.session_state[k] = ""
        elif k == "when":
            st.session_state[k] = "now"
        elif k == "on":
            st.session_state[k] = dt.date.today()
        else:
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
    for k in ("page", "when", "edit_fact", "rb_province", "rb_industry", "rb_kind", "rb_window", "rb_rule"):
        if k in st.session_state and st.session_state[k] is not None:
            st.session_state[k] = st.session_state[k]


def _more() -> None:
    st.session_state["n_next"] = st.session_state.get("n_next", NEXT_STEP) + NEXT_STEP


# ---------------------------------------------------------------- questionnaire


def read_answers(facts, places) -> tuple[dict, dict, set, dict, dict]:
    """(values, raw as received, skipped, errors, notes) from the widgets' state."""
    values: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    skipped: set[str] = set()
    errors: dict[str, str] = {}
    notes: dict[str, str] = {}
    names = []
    for k in st.session_state.keys():
        if isinstance(k, str) and k.startswith(FORM_KEYS):
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
        elif spec.type == "date":
            if st.session_state.get(f"skip_{name}"):
                skipped.add(name)
                raw[name] = "不清楚"
                continue
            if v is None:
                continue
            raw[name] = v.isoformat()
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
                notes[name] = tx("understood").format(v=zh(fixed))
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


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()<>#+-.!|~:$"})


def md_text(text: str) -> str:
    """Plain text made safe inside a widget label (labels are Markdown)."""
    return text.translate(_MD_SPECIAL)


_GLOSS = re.compile(r"\s*[（(][^()（）]*[\u4e00-\u9fff][^()（）]*[)）]")


def help_words(text: str, L: str) -> str:
    """A fact's English help as English: the currency in words, Chinese glosses left out."""
    if L != "en" or not text:
        return text
    return _GLOSS.sub("", text).replace("万元", "10,000 yuan").replace("元", "yuan")


def ask(spec: FactSpec, errors: dict, notes: dict, extra: str = "", first: bool = False) -> None:
    """One question: its widget, help text and unit, and its error right under it.

    The first questions are self-explanatory and keep their help in a tooltip; later ones show the
    question in bold, then the help text and what hangs on it, in the widget's own label (one element
    per question rather than a text block and a widget: fewer elements, faster reruns). Dates are a
    date picker: they count as soon as they are picked."""
    L = lang()
    key = f"q_{spec.name}"
    unit = unit_words(spec.unit, L)
    label = spec.label(L) + unit
    help_text = (spec.help(L) or None) if first else None
    if not first:
        hint = tx("question_notes").get(spec.name, "")
        note = " ".join(x for x in (help_words(spec.help(L), L), hint, extra) if x)
        label = f"**{md_text(label)}**" + (f" :gray[{md_text(note)}]" if note else "")
    if spec.type == "enum":
        st.selectbox(label, options=[*spec.values, UNKNOWN], index=None, key=key, help=help_text,
                     placeholder=tx("choose"),
                     format_func=lambda v, s=spec, u=tx("unknown"), L=L: u if v == UNKNOWN else s.value_label(v, L))
    elif spec.type == "bool":
        st.radio(label, options=["yes", "no", UNKNOWN], index=None, key=key, help=help_text, horizontal=True,
                 format_func={"yes": tx("yes"), "no": tx("no"), UNKNOWN: tx("unknown")}.__getitem__)
    elif spec.type == "date":
        skip_key = f"skip_{spec.name}"
        st.date_input(label, value=None, key=key, help=help_text, min_value=dt.date(1950, 1, 1),
                      max_value=dt.date(2040, 12, 31), disabled=bool(st.session_state.get(skip_key)))
        if not first:
            st.checkbox(tx("unknown"), key=skip_key)
    else:  # text-like: typed and parsed; later questions get an explicit "don't know" box
        skip_key = f"skip_{spec.name}"
        ph = tx("placeholder_num") if spec.type == "money" else \
            tx("placeholder_int") if spec.type in ("int", "percent", "number") else tx("placeholder_text")
        st.text_input(label, key=key, help=help_text, placeholder=ph, disabled=bool(st.session_state.get(skip_key)))
        if not first:  # a first question left empty is simply unknown
            st.checkbox(tx("unknown"), key=skip_key)
    if spec.name in errors:
        st.error(errors[spec.name], icon=":material/error:")
    elif spec.name in notes:
        st.caption(notes[spec.name], unsafe_allow_html=True)


def _report(values: dict, on: dt.date, rules):
    """Evaluate, reusing the last report when nothing changed (reruns also come from other widgets), and
    re-evaluating only the rules that read what an answer changed (eligibility.incremental: the same
    report as evaluate())."""
    sig = (tuple(sorted((k, repr(v)) for k, v in values.items())), on, rules.version)
    cached = st.session_state.get("_last_report")
    if cached and cached[0] == sig:
        return cached[1], sig
    ev = st.session_state.get("_evaluator")
    if ev is None or ev.rules is not rules:
        ev = st.session_state["_evaluator"] = Evaluator(rules)
    report = ev.evaluate(values, on)
    st.session_state["_last_report"] = (sig, report)
    return report, sig


def _form_view(values: dict, raw: dict, skipped: set, errors: dict, on: dt.date, mode: str, L: str) -> dict:
    """Everything the rest of the form page shows, worked out before it is drawn (waits for the rules)."""
    facts = default_facts()
    rules, _ = get_rules()
    try:
        report, sig = _report(values, on, rules)
        eval_error = None
    except CompanyValidationError as e:
        report, eval_error, sig = None, e, None
    new = 0
    for name in list(values) + list(skipped) + list(errors):
        if name not in FIRST_QUESTIONS and name not in st.session_state["asked"]:
            st.session_state["asked"].append(name)
            new += 1
    # an answered question leaves the list and no other takes its place, down to the usual length:
    # "show more" lengthens the list for a while, not for ever (fewer widgets to send on every answer)
    st.session_state["n_next"] = max(NEXT_STEP, st.session_state["n_next"] - new)
    st.session_state["report"] = report
    st.session_state["values"] = values
    st.session_state["raw_input"] = raw
    view: dict[str, Any] = {"rules": rules, "report": report, "eval_error": eval_error, "windows": None,
                            "next": None, "results": None, "owner": None}
    if report is not None and mode == "now":
        counts = {w: 0 for w in P.WINDOWS}
        for r in report.results:
            counts[r.window] += 1
        view["windows"] = tx("windows_now").format(d=on.isoformat(), **counts)
    asked = [n for n in st.session_state["asked"] if n in facts and n not in FIRST_QUESTIONS]
    view["asked"] = asked
    if report is not None and "province" in values:
        exclude = set(asked) | skipped | set(errors)
        key = (sig, mode, tuple(sorted(exclude)), L)
        cached = st.session_state.get("_last_view")
        if cached and cached[0] == key:
            questions, ov, results = cached[1]
        else:
            questions = question_order(report, rules, exclude=exclude)
            ov = build_view(report, rules, mode, questions=questions, skipped=skipped)
            results = results_view(ov, report, rules, L, view["windows"]) if eval_error is None else None
            st.session_state["_last_view"] = (key, (questions, ov, results))
        view["owner"] = ov
        view["results"] = results
        view["next"] = []
        for q in questions[:st.session_state["n_next"]]:
            extra = tx("matters").format(n=q.n_rules)
            if q.money:
                extra += tx("matters_money").format(m=money(q.money, L))
            view["next"].append((q.spec, f"（{extra}）" if L == "zh" else f"({extra})"))
    return view


def page_form() -> None:
    """The date question, then the questions on the left and the results on the right (on a phone:
    the answer first, above the form).

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
    st.session_state.setdefault("when", "now")
    values, raw, skipped, errors, notes = read_answers(facts, early_places())
    mode = st.session_state.get("when") if st.session_state.get("when") in MODES else "now"
    # "now" is the day chosen (today by default); the whole period is told as of today
    on = (st.session_state.get("on") or dt.date.today()) if mode == "now" else dt.date.today()
    ready = catalogue_future(_rules_dir()).done()
    view = _form_view(values, raw, skipped, errors, on, mode, L) if ready else None

    # the answer above the form, shown on a phone only (CSS); a placeholder only while the rules load
    phone = st.container(key="phone_summary")  # hidden by CSS where the results column sits beside the form
    if view is not None and view["results"] is not None:
        phone.html(view["results"]["phone"])
    left, right = st.columns([5, 7], gap="large")
    with left:
        st.radio(tx("when"), options=list(MODES), key="when", format_func=tx("when_options").__getitem__,
                 help=tx("when_help"))
        if mode == "now":
            st.date_input(tx("on"), min_value=dt.date(2015, 1, 1), max_value=dt.date(2035, 12, 31), key="on",
                          help=tx("on_help"))
        if errors:
            st.warning(tx("bad_answers").format(n=len(errors)))
        st.subheader(tx("basics"))
        st.text_input(tx("company"), key="company_name", placeholder=tx("company_placeholder"))
        for q in first_questions(values, facts):
            ask(q.spec, errors, notes, first=True)
    with right:
        st.subheader(tx("results"), anchor="results")
        # a placeholder only while the rules load; otherwise the message goes straight into the column
        results_slot = st.empty() if view is None else st
    if view is None:  # first screen: the rules were still loading
        view = _form_view(values, raw, skipped, errors, on, mode, L)
        if view["results"] is not None:
            phone.html(view["results"]["phone"])

    with left:
        st.markdown(f"### {tx('more')}\n\n<span class=\"muted\">{html.escape(tx('more_help'))}</span>",
                    unsafe_allow_html=True)
        # answered follow-ups as one compact list (a phone scrolls less, a rerun sends fewer widgets);
        # one of them at a time is open for a change, and a wrong one stays open until it is fixed
        answered = [n for n in view["asked"] if n not in errors]
        for name in view["asked"]:
            if name in errors:
                ask(facts[name], errors, notes)
        if answered:
            st.html(answered_html(answered, values, skipped, facts, L))
            st.selectbox(tx("edit"), options=answered, index=None, key="edit_fact", placeholder=tx("edit_placeholder"),
                         format_func=lambda n: facts[n].label(L))
            editing = st.session_state.get("edit_fact")
            if editing in answered:
                ask(facts[editing], errors, notes)
        if view["next"] is not None:
            for spec, extra in view["next"]:
                ask(spec, errors, notes, extra)
            if view["next"]:
                st.button(tx("show_more").format(n=NEXT_STEP), key="more_questions", on_click=_more)
            else:
                st.info(tx("no_more"))
        st.button(tx("reset"), key="reset", on_click=_reset, icon=":material/restart_alt:")
    with right:
        if view["eval_error"] is not None:
            facts_ = view["rules"].facts
            colon = "：" if L == "zh" else ": "
            results_slot.error(tx("eval_error") + ("；" if L == "zh" else "; ").join(
                (facts_[i.where].label(L) + colon if i.where in facts_ else "") + msg(i.message)
                for i in view["eval_error"].issues))
        elif view["results"] is None:
            results_slot.info(tx("start_hint"))
        else:
            draw_results(view["results"], view["owner"], view["report"], view["rules"], raw, mode, L)
    _save_keys()


def answered_html(names: list[str], values: dict, skipped: set, facts, L: str) -> str:
    sep = "：" if L == "zh" else ": "
    items = []
    for n in names:
        spec = facts[n]
        shown = tx("unknown") if n in skipped or n not in values else spec.value_label(values[n], L)
        items.append(f"<li>{html.escape(spec.label(L))}{sep}<b>{html.escape(shown)}</b></li>")
    return f'<div class="answered"><div class="muted">{html.escape(tx("answered"))}</div><ul>{"".join(items)}</ul></div>'


def results_view(ov, report, rules, L: str, windows: str | None = None) -> dict:
    """The results column's HTML, computed before anything is drawn (and kept while nothing changes)."""
    facts = rules.facts
    summary = P.summary_html(ov, L)
    if windows:  # how many measures are open on the day asked about, under the answer
        summary = summary[:-len("</div>")] + f'<div class="sum-windows muted">{html.escape(windows)}</div></div>'

    top = P.top_lines_html(ov, L, facts)
    return {
        "summary": summary,
        "phone": f'<div class="phone-summary">{summary}{top}<a class="see-all" href="#results">'
                 f'{html.escape(tx("see_all"))}</a></div>',
        "body": P.view_html(ov, rules, L, facts),
        "n_inel": len(ov.ineligible),
        "nothing": not (ov.lines or ov.services or ov.maybe or ov.closed or ov.ineligible),
    }


def draw_results(v: dict, ov, report, rules, raw: dict, mode: str, L: str) -> None:
    """Few elements, long texts in one HTML block each: every element costs the server and the browser
    time on each answer."""
    st.html(v["summary"])
    # the download buttons only on request: three widgets fewer on every answer
    if st.toggle(tx("downloads"), key="show_downloads"):
        stamp = report.as_of.isoformat()
        company = (st.session_state.get("company_name") or "").strip() or None
        d = st
        d.download_button(tx("dl_html"), data=lambda: P.report_html(report, rules, L, raw, company=company, mode=mode,
                                                                   view=ov).encode("utf-8"),
                          file_name=f"policy-report-{stamp}.html", mime="text/html", key="dl_html",
                          on_click="ignore", type="primary")
        d.download_button(tx("dl_csv"), data=lambda: P.benefits_csv(ov, L, rules=rules),
                          file_name=f"policy-results-{stamp}.csv", mime="text/csv", key="dl_csv", on_click="ignore")
        d.download_button(tx("dl_json"), data=lambda: P.report_json(report, L, raw),
                          file_name=f"policy-results-{stamp}.json", mime="application/json", key="dl_json",
                          on_click="ignore")
    st.html(v["body"])
    if v["n_inel"]:
        # rendered only on request: a long why-not list would slow every answer down
        if st.checkbox(tx("ineligible_head").format(n=v["n_inel"]), key="show_ineligible"):
            st.html(P.ineligible_html(ov, L, rules.facts))
    if v["nothing"]:
        st.info(tx("nothing_here"))


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
        end = s.period.deadline or s.period.end
        rows.append({cols["title"]: s.title.get(L), cols["document"]: r.document.number or r.document.title,
                     cols["region"]: region_words(r, facts, L),
                     cols["kind"]: KIND_WORDS[L][s.kind], cols["strength"]: STRENGTH_WORDS[L][s.strength],
                     cols["period"]: f"{s.period.start} – {end or '…'}"})
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(rows)), key="rb_table")
        ids = [r.id for r in chosen]
        rid = st.selectbox(tx("rb_rule"), options=ids, key="rb_rule",
                           format_func=lambda i: rules.by_id[i].spec.title.get(L)
                           + (f"（{rules.by_id[i].document.number}）" if rules.by_id[i].document.number else ""))
        if rid:
            rule_detail(rules.by_id[rid], rules, L, amounts, Labeller)


def region_words(rule, facts, L: str) -> str:
    """Where a measure applies, in the reader's language (province and city; counties summarised)."""
    if L == "zh":
        return rule.jurisdiction_text
    j = rule.spec.jurisdiction
    parts = [facts["province"].value_label(j.province, L)] if getattr(j, "province", None) else []
    if getattr(j, "city", None):
        parts.append(CITY_EN.get(j.city, j.city))
    if getattr(j, "counties", None) or getattr(j, "region", None):
        parts.append(SOME_COUNTIES[L])
    return ", ".join(parts)


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
    titles = {r.id: r.spec.title.get(L) for r in rules}
    st.markdown(f"#### {md_text(s.title.get(L))}")
    st.markdown(f"{KIND_WORDS[L][s.kind]} · {STRENGTH_WORDS[L][s.strength]} · {region_words(rule, facts, L)}")
    st.markdown(f"**{md_text(s.benefit.get(L))}**  \n{P.t(L, 'agency')}{colon}{md_text(s.agency.get(L))}")
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
        if rule.amount.spec.text and L == "zh":
            lines.append(f"- {rule.amount.spec.text.get(L)}")
        lines.append(f"- {tx('rb_per')[rule.amount.spec.per]}")
        for label, part in ((tx("rb_cap"), rule.amount.cap), (tx("rb_floor"), rule.amount.floor)):
            if part is not None:  # compiled formulas: facts by their labels
                lines.append(f"- {label}{colon}{amounts.render(part, lab.formula_name(_param_text(rule.amount)))}")
        st.markdown("\n".join(lines))
    st.markdown(f"##### {tx('rb_period')}")
    p = s.period
    st.markdown(f"{p.start} – {p.end or '…'}" + (f"；{P.t(L, 'deadline')}{colon}{p.deadline}" if p.deadline else "")
                + (f"  \n{p.text}" if p.text and L == "zh" else ""))
    if s.excludes:
        st.caption(f"{tx('rb_excludes')}{colon}{'；'.join(titles.get(i, '') for i in s.excludes)}")
    if s.tops_up:
        st.caption(f"{tx('rb_tops_up')}{colon}{titles.get(s.tops_up, '')}")
    st.markdown(f"##### {tx('rb_source')}")
    doc = rule.document
    st.markdown(zh(doc.title + (f"（{doc.number}）" if doc.number else "") + (f" · {doc.issuer}" if doc.issuer else ""))
                + (f" · {doc.date}" if doc.date else ""), unsafe_allow_html=True)
    quote = " …… ".join(s.quotes)
    st.html(f"<blockquote lang=\"zh-CN\">{P.highlight_html(quote, P.highlight_terms(rule))}</blockquote>")
    note = P.clean_note(s.note, L, rules)
    if note:
        st.caption(note)
    st.markdown(f"##### {tx('rb_examples')}")
    cols = tx("rb_ex_cols")
    rows = []
    for ex in s.examples:
        fx = ("；" if L == "zh" else "; ").join(f"{facts[k].label(L)}={_value_text(facts[k], v, L)}"
                                               for k, v in ex.facts.items() if k in facts)
        rows.append({**({cols["name"]: ex.name} if L == "zh" else {}), cols["facts"]: fx,
                     cols["status"]: STATUS_WORDS[L][ex.expect.status],
                     cols["amount"]: "" if ex.expect.amount is None else str(ex.expect.amount)})
    st.dataframe(rows, hide_index=True, width="stretch", key="rb_examples")


# ---------------------------------------------------------------- batch


def _columns_table(facts, L: str) -> list[dict]:
    """Every accepted column: its Chinese (or English) name, what it means, how to fill it."""
    cols = tx("batch_columns_cols")
    types = tx("batch_types")
    sep = "、" if L == "zh" else ", "
    rows = []
    for spec in facts.values():
        if spec.derived:
            continue
        rows.append({cols["column"]: spec.label(L), cols["meaning"]: spec.help(L), cols["type"]: types[spec.type],
                     cols["values"]: sep.join(v.get(L, k) for k, v in spec.values.items()) if spec.values else ""})
    return rows


def _template_csv(facts) -> bytes:
    heads = ["企业名称", *[facts[n].zh for n in ("province", "city", "county", "entity_type", "industry",
                                                  "employees", "revenue", "monthly_rent")]]
    row = ["石家庄某某餐饮有限公司", "河北省", "石家庄市", "长安区", "企业", "餐饮业", "40", "300万", "10000"]
    return ("\ufeff" + ",".join(heads) + "\n" + ",".join(row) + "\n").encode("utf-8")


def page_batch(rules) -> None:
    """Advisers' batch check: the same eligibility.batch code as `eligibility batch`, with web limits."""
    L = lang()
    facts = rules.facts
    st.caption(tx("batch_intro"))
    from eligibility.batch import UPLOAD_LIMITS, evaluate_upload, read_table  # only this page needs polars
    from eligibility.errors import InputLimitError
    with st.expander(tx("batch_columns_head"), expanded=False):
        st.download_button(tx("batch_template"), data=_template_csv(facts), file_name="company-list-template.csv",
                           mime="text/csv", key="batch_template", on_click="ignore")
        st.dataframe(_columns_table(facts, L), hide_index=True, width="stretch", key="batch_columns")
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


def _errors_words(text: str | None) -> str | None:
    """'header: 中文 / English | …' in the reader's language."""
    if not text:
        return None
    from eligibility.batch import ERROR_SEP

    out = []
    for part in text.split(ERROR_SEP):
        head, sep, rest = part.partition(": ")
        out.append(f"{head}{'：' if lang() == 'zh' else ': '}{msg(rest)}" if sep else msg(part))
    return ("；" if lang() == "zh" else "; ").join(out)


def batch_views(frame, summary, long, rules, L: str):
    """The summary and the details as people read them: titles, labels, words; no internal names."""
    import polars as pl

    facts = rules.facts
    cols = tx("batch_cols")
    name_col = _name_column(frame, facts)
    titles = {r.id: r.spec.title.get(L) for r in rules}
    sep = "；" if L == "zh" else "; "

    def titled(ids):
        return sep.join(titles.get(i, "") for i in (ids or "").split(";") if i in titles)

    def labelled(names):
        asked = askable([f for f in (names or "").split(";") if f], facts, set())
        return ("、" if L == "zh" else ", ").join(facts[f].label(L) for f in asked)

    view = summary.with_columns(
        pl.col("row").alias(cols["row"]),
        *([frame[name_col].cast(pl.Utf8).alias(cols["name"])] if name_col else []),
        pl.col("n_eligible").alias(cols["n_e"]), pl.col("n_undetermined").alias(cols["n_u"]),
        pl.col("total_amount").cast(pl.Float64).alias(cols["total"]),
        pl.col("total_up_to").cast(pl.Float64).alias(cols["up_to"]),
        pl.col("total_in_effect").cast(pl.Float64).alias(cols["open"]),
        pl.col("eligible").map_elements(titled, return_dtype=pl.Utf8).alias(cols["eligible"]),
        pl.col("facts_to_collect").map_elements(labelled, return_dtype=pl.Utf8).alias(cols["collect"]),
        pl.col("errors").map_elements(_errors_words, return_dtype=pl.Utf8).alias(cols["errors"]),
    )
    show = [cols["row"], *([cols["name"]] if name_col else []), cols["n_e"], cols["n_u"], cols["total"],
            cols["up_to"], cols["open"], cols["eligible"], cols["collect"]]
    readable = view.select([*show, cols["errors"]])
    status = STATUS_WORDS[L]
    per = tx("rb_per")
    yes_no = {True: tx("yes"), False: tx("no")}
    long_view = long.with_columns(
        pl.col("row").alias(cols["row"]),
        pl.col("rule_id").replace_strict(titles, default="").alias(cols["measure"]),
        pl.col("status").replace_strict(status, default="").alias(cols["status"]),
        pl.col("amount").cast(pl.Float64).alias(cols["amount"]),
        pl.col("per").replace_strict(per, default="").alias(cols["per"]),
        pl.col("counted_in_total").replace_strict(yes_no, default="", return_dtype=pl.Utf8).alias(cols["counted"]),
        pl.col("missing").cast(pl.Utf8).map_elements(labelled, return_dtype=pl.Utf8).alias(cols["missing"]),
        pl.col("errors").map_elements(_errors_words, return_dtype=pl.Utf8).alias(cols["errors"]),
    )
    long_names = [c for c in long.columns if c == name_col]
    long_readable = long_view.select([cols["row"], *long_names, cols["measure"], cols["status"], cols["amount"],
                                      cols["per"], cols["counted"], cols["missing"], cols["errors"]])
    return view, show, readable, long_readable, titles


def show_batch(frame, summary, long, rules, L: str) -> None:
    import polars as pl

    st.success(tx("batch_done").format(n=summary.height))
    cols = tx("batch_cols")
    view, show, readable, long_readable, titles = batch_views(frame, summary, long, rules, L)
    st.markdown(f"#### {tx('batch_summary')}")
    st.dataframe(view.filter(pl.col("errors").is_null()).select(show), hide_index=True, width="stretch",
                 key="batch_summary")
    bad = view.filter(pl.col("errors").is_not_null())
    if bad.height:
        name = [cols["name"]] if cols["name"] in view.columns else []
        st.markdown(f"#### {tx('batch_errors')} · {bad.height}")
        st.dataframe(bad.select([cols["row"], *name, cols["errors"]]), hide_index=True, width="stretch",
                     key="batch_bad")
    per_rule = (long.filter(pl.col("status") == "eligible")
                .group_by("rule_id")
                .agg(pl.len().alias(cols["companies"]),
                     pl.col("amount").cast(pl.Float64).fill_null(0).sum().alias(cols["money"]))
                .with_columns(pl.col("rule_id").replace_strict(titles, default="").alias(cols["measure"]))
                .sort(cols["companies"], descending=True))
    if per_rule.height:
        st.markdown(f"#### {tx('batch_chart')}")
        top = per_rule.head(30)
        c1, c2 = st.columns(2)
        c1.bar_chart(top, x=cols["measure"], y=cols["companies"], horizontal=True, height=520,
                     sort=f"-{cols['companies']}")
        c2.bar_chart(top, x=cols["measure"], y=cols["money"], horizontal=True, height=520, color="#2e7d32",
                     sort=f"-{cols['money']}")
        st.dataframe(per_rule.select([cols["measure"], cols["companies"], cols["money"]]),
                     hide_index=True, width="stretch", key="batch_per_rule")
    d1, d2 = st.columns(2)
    d1.download_button(tx("batch_download"), data=lambda: _csv_bytes(readable), file_name="batch-summary.csv",
                       mime="text/csv", key="batch_download", on_click="ignore")
    d2.download_button(tx("batch_download_long"), data=lambda: _csv_bytes(long_readable),
                       file_name="batch-results-long.csv", mime="text/csv", key="batch_download_long",
                       on_click="ignore")


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
    _read_lang()
    page_form()
    footer(started)


def footer(started: float) -> None:
    rules = get_rules()[0]
    # the last element of every run (full or fragment): tests and bench/ui.py wait for its marker to know
    # a run is fully shown
    st.session_state["_runs"] = st.session_state.get("_runs", 0) + 1
    took = (time.perf_counter() - started) * 1000
    words = html.escape(tx("footer").format(tool=__version__, rules=rules.version, n=len(rules)))
    st.html(f'<p class="muted footer">{words}</p>'
            f'<span class="run-done" data-run="{st.session_state["_runs"]}" data-ms="{took:.0f}"></span>')


def main() -> None:
    started = time.perf_counter()
    _read_lang()
    st.html(CSS)
    st.html(DATE_COMMIT_JS, unsafe_allow_javascript=True)
    head, switch = st.columns([5, 2])
    with switch:
        st.radio(APP["zh"]["lang"], options=["zh", "en"], key="lang", horizontal=True, on_change=_relabel,
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
