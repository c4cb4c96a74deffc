"""The questionnaire's questions: one widget per fact (keyed q_<fact>, skip_<fact>), and the answers read
back from the widgets' state, each parsed through the fact dictionary (`FactSpec.parse`)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import streamlit as st

from eligibility.facts import FactSpec, FactValueError
from eligibility.questions import normalise_place
from eligibility.words import APP

from ..shared import UNKNOWN, lang, md_text, msg, tx, zh
from ..state import FORM_KEYS

RAW_UNKNOWN = APP["zh"]["unknown"]  # answers as received are kept (and reported) in Chinese


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
                raw[name] = RAW_UNKNOWN
                continue
            raw[name] = spec.value_label(v, "zh") if spec.type == "enum" else APP["zh"][v]
            v = {"yes": True, "no": False}.get(v, v) if spec.type == "bool" else v
        elif spec.type == "date":
            if st.session_state.get(f"skip_{name}"):
                skipped.add(name)
                raw[name] = RAW_UNKNOWN
                continue
            if v is None:
                continue
            raw[name] = v.isoformat()
        else:
            if st.session_state.get(f"skip_{name}"):
                skipped.add(name)
                raw[name] = RAW_UNKNOWN
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


def unit_words(unit: str | None) -> str:
    """A fact's unit after its label: （人） in Chinese, (people) in English, nothing for a bare count."""
    if not unit:
        return ""
    shown = tx("units").get(unit, unit)
    return tx("unit").format(u=shown) if shown else ""


_GLOSS = re.compile(r"\s*[（(][^()（）]*[\u4e00-\u9fff][^()（）]*[)）]")


def help_words(text: str, L: str) -> str:
    """A fact's English help as English: the currency in words, Chinese glosses left out."""
    if L != "en" or not text:
        return text
    text = _GLOSS.sub("", text)
    for chinese, english in tx("currency").items():
        text = text.replace(chinese, english)
    return text


def slot_width(spec: FactSpec) -> int:
    """The elements a follow-up question takes (`ask`): its widget, and "don't know" for typed answers."""
    return 1 if spec.type in ("enum", "bool") else 2


def ask(spec: FactSpec, errors: dict, notes: dict, extra: str = "", first: bool = False) -> int:
    """One question: its widget, help text and unit, and its error right under it.

    The first questions are self-explanatory and keep their help in a tooltip; later ones show the
    question in bold, then the help text and what hangs on it, in the widget's own label (one element
    per question rather than a text block and a widget: fewer elements, faster reruns). Dates are a
    date picker: they count as soon as they are picked. Returns the number of elements drawn."""
    L = lang()
    key = f"q_{spec.name}"
    unit = unit_words(spec.unit)
    label = spec.label(L) + unit
    help_text = (spec.help(L) or None) if first else None
    if not first:
        hint = tx("question_notes").get(spec.name, "")
        note = " ".join(x for x in (help_words(spec.help(L), L), hint, extra) if x)
        label = f"**{md_text(label)}**" + (f" :gray[{md_text(note)}]" if note else "")
    drawn = 1
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
            drawn += 1
    else:  # text-like: typed and parsed; later questions get an explicit "don't know" box
        skip_key = f"skip_{spec.name}"
        ph = tx("placeholder_num") if spec.type == "money" else \
            tx("placeholder_int") if spec.type in ("int", "percent", "number") else tx("placeholder_text")
        st.text_input(label, key=key, help=help_text, placeholder=ph, disabled=bool(st.session_state.get(skip_key)))
        if not first:  # a first question left empty is simply unknown
            st.checkbox(tx("unknown"), key=skip_key)
            drawn += 1
    if spec.name in errors:
        st.error(errors[spec.name], icon=":material/error:")
        drawn += 1
    elif spec.name in notes:
        st.caption(notes[spec.name], unsafe_allow_html=True)
        drawn += 1
    return drawn

