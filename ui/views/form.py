"""The owner's page: the date question, the questionnaire on the left and the answer on the right (on a
phone the answer comes first, above the form). Two fragments, one inside the other: the page (a change
to the date or a basic question reruns it, not the header) and the answer (a follow-up answer reruns
only the follow-up questions, the results and the footer). The first screen sends the first questions
before it waits for the rules."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import streamlit as st

from eligibility import present as P
from eligibility.errors import CompanyValidationError
from eligibility.explain import money
from eligibility.facts import default_facts
from eligibility.incremental import Evaluator
from eligibility.owner import MODES, build_view, question_order
from eligibility.questions import FIRST_QUESTIONS, first_questions

from .. import state
from ..shared import (NEXT_STEP, early_places, footer, get_rules, lang, msg, read_lang, run_started, take_started,
                      tx)
from .questions import ask, read_answers, slot_width
from .results import draw_results, results_view


@st.fragment
def form_fragment() -> None:
    """The form page as one fragment: a change to the date question or a basic question reruns the page
    below the header (title, language, page switch), which is neither rebuilt nor sent again."""
    run_started(take_started())  # the inner fragment ends the run and tells its time
    read_lang()
    page_form()


@st.fragment
def answer_fragment(phone, follow, foot) -> None:
    """The answer: the follow-up questions, the results (and the phone's summary), the footer. A fragment
    inside the page's: answering a follow-up question reruns only this, and the date question, the
    basic questions and the reset button above and below are not sent again (each widget the browser
    redraws costs it time on every answer). Its own body is the results column; it also writes into
    the page's containers made by the outer fragment (the phone's summary, the follow-up questions and
    the footer: no download button among them, as a deferred download is lost there)."""
    started = take_started()
    L = read_lang()
    facts = default_facts()
    state.persist_keys()
    values, raw, skipped, errors, notes = read_answers(facts, early_places())
    mode = st.session_state.get("when") if st.session_state.get("when") in MODES else "now"
    # "now" is the day chosen (today by default); the whole period is told as of today
    on = (st.session_state.get("on") or dt.date.today()) if mode == "now" else dt.date.today()
    # the whole answer is worked out first and then drawn in one go: the browser re-renders the page for
    # each batch of elements it receives, so a script that computes between elements makes the browser
    # redraw the page several times per answer
    view = _form_view(values, raw, skipped, errors, on, mode, L)
    if view["results"] is not None:
        phone.html(view["results"]["phone"])
    with follow:
        draw_follow_ups(view, values, skipped, errors, notes, facts, L)
    if view["eval_error"] is not None:
        facts_ = view["rules"].facts
        colon = tx("colon")
        st.error(tx("eval_error") + tx("sep").join(
            (facts_[i.where].label(L) + colon if i.where in facts_ else "") + msg(i.message)
            for i in view["eval_error"].issues))
    elif view["results"] is None:
        st.info(tx("start_hint"))
    else:
        draw_results(view["results"], view["owner"], view["report"], view["rules"], raw, mode, L)
    state.save_keys()
    with foot:
        footer(started)


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
            view["next"].append((q.spec, tx("paren").format(x=extra)))
    return view


def page_form() -> None:
    """The date question, then the questions on the left and the results on the right (on a phone:
    the answer first, above the form).

    The date question and the basic questions are drawn first, before the rules are needed (the first
    screen never waits for the catalogue to load); the answer fragment then draws the results column and
    fills the containers made here: the phone's summary, the follow-up questions and the footer."""
    L = lang()
    facts = default_facts()
    state.persist_keys()
    st.session_state.setdefault("asked", [])
    st.session_state.setdefault("n_next", NEXT_STEP)
    st.session_state.setdefault("when", "now")
    values, _raw, _skipped, errors, notes = read_answers(facts, early_places())
    mode = st.session_state.get("when") if st.session_state.get("when") in MODES else "now"

    # the answer above the form, shown on a phone only (CSS): hidden where the results column sits beside it
    phone = st.container(key="phone_summary")
    left, right = st.columns([5, 7], gap="large")
    with left:
        st.radio(tx("when"), options=list(MODES), key="when", format_func=tx("when_options").__getitem__,
                 help=tx("when_help"))
        if mode == "now":
            st.date_input(tx("on"), min_value=dt.date(2015, 1, 1), max_value=dt.date(2035, 12, 31), key="on",
                          help=tx("on_help"))
        # every heading has a fixed anchor: without one the browser re-derives it from the heading's text
        # (a slug, by regular expressions) each time the heading is redrawn, i.e. on every answer
        st.subheader(tx("basics"), anchor="basics")
        st.text_input(tx("company"), key="company_name", placeholder=tx("company_placeholder"))
        for q in first_questions(values, facts):
            ask(q.spec, errors, notes, first=True)
        st.markdown(f'<h3 data-anchor="more">{html.escape(tx("more"))}</h3>\n\n'
                    f'<span class="muted">{html.escape(tx("more_help"))}</span>', unsafe_allow_html=True)
        follow = st.container()
        st.button(tx("reset"), key="reset", on_click=state.reset, icon=":material/restart_alt:")
    foot = st.container()
    with right:
        st.subheader(tx("results"), anchor="results")
        answer_fragment(phone, follow, foot)


def draw_follow_ups(view: dict, values: dict, skipped: set, errors: dict, notes: dict, facts, L: str) -> None:
    """The follow-up questions: the answered ones as one compact list (a phone scrolls less, a rerun sends
    fewer widgets), one of them at a time open for a change (a wrong one stays open until it is fixed),
    then the next ones, most decisive first.

    Each part has its own container and each next question keeps its place (`question_slots`), so that
    an answer moves no other question to another place on the page: the browser keeps a widget it was sent
    again unchanged at the same place without redrawing it, and redraws every one that moved."""
    if errors:
        st.warning(tx("bad_answers").format(n=len(errors)))
    answered = [n for n in view["asked"] if n not in errors]
    for name in view["asked"]:
        if name in errors:
            ask(facts[name], errors, notes)
    with st.container():  # made even while empty: the next questions' container keeps its place
        if answered:
            st.html(answered_html(answered, values, skipped, facts, L))
            st.selectbox(tx("edit"), options=answered, index=None, key="edit_fact",
                         placeholder=tx("edit_placeholder"), format_func=lambda n: facts[n].label(L))
            editing = st.session_state.get("edit_fact")
            if editing in answered:
                ask(facts[editing], errors, notes)
    if view["next"] is not None:
        extra = {spec.name: x for spec, x in view["next"]}
        with st.container():
            laid = []
            for name, width in question_slots([(n, slot_width(facts[n])) for n in extra]):
                if name is None:  # an empty place, kept so that the questions below do not move
                    for _ in range(width):
                        st.empty()
                else:
                    width = ask(facts[name], errors, notes, extra[name])
                laid.append((name, width))
            st.session_state["_slots"] = laid
            if view["next"]:
                st.button(tx("show_more").format(n=NEXT_STEP), key="more_questions", on_click=state.more)
            else:
                st.info(tx("no_more"))


MAX_GAP = 6  # empty places (elements) kept at most before the next questions are laid out afresh


def question_slots(questions: list[tuple[str, int]]) -> list[tuple[str | None, int]]:
    """Where the next questions go, as (question, elements) and (None, n) for n empty places: as many
    as can be kept at the place (element index) they had on the last run, the questions still read top
    to bottom in the score's order. An answered question's place stays empty; a question that moved up
    takes the place before the first one kept. The most questions kept in place are chosen (a longest
    chain of questions whose old places increase, with room between two for the ones ranked between
    them); more than MAX_GAP empty places and they are laid out afresh."""
    old: dict[str, int] = {}
    at = 0
    for name, width in st.session_state.get("_slots") or []:
        if name is not None:
            old[name] = at
        at += width
    n = len(questions)
    before = [0]  # elements of the questions ranked above each
    for _, width in questions:
        before.append(before[-1] + width)
    best: list[tuple[int, int]] = []  # (questions kept in place up to and with i, the kept one before)
    for i, (name, _) in enumerate(questions):
        best.append((0, -1))
        if name not in old:
            continue
        if before[i] <= old[name]:  # room above it for the ones ranked above
            best[i] = (1, -1)
        for j in range(i):  # or after a kept one, with room between for the ones ranked between
            if best[j][0] and best[j][0] + 1 > best[i][0] and \
                    old[questions[j][0]] + before[i] - before[j] <= old[name]:
                best[i] = (best[j][0] + 1, j)
    kept: set[int] = set()
    i = max(range(n), key=lambda k: best[k][0], default=-1)
    while i >= 0 and best[i][0]:
        kept.add(i)
        i = best[i][1]
    slots: list[tuple[str | None, int]] = []
    at = 0
    for i, (name, width) in enumerate(questions):
        if i in kept and old[name] > at:
            slots.append((None, old[name] - at))
            at = old[name]
        slots.append((name, width))
        at += width
    if sum(w for name, w in slots if name is None) > MAX_GAP:
        return list(questions)
    return slots


def answered_html(names: list[str], values: dict, skipped: set, facts, L: str) -> str:
    sep = tx("colon")
    items = []
    for n in names:
        spec = facts[n]
        shown = tx("unknown") if n in skipped or n not in values else spec.value_label(values[n], L)
        items.append(f"<li>{html.escape(spec.label(L))}{sep}<b>{html.escape(shown)}</b></li>")
    return f'<div class="answered"><div class="muted">{html.escape(tx("answered"))}</div><ul>{"".join(items)}</ul></div>'

