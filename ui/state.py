"""The answers, kept across pages and reruns; the reset, the language switch and "show more"."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from eligibility.facts import default_facts

from .shared import NEXT_STEP

KEEP_ON_RESET = ("lang", "page", "_runs")  # the language, the page and the run counter are not answers
FORM_KEYS = ("q_", "skip_")
FORM_SINGLE = ("on", "when", "company_name")


def persist_keys() -> None:
    """Widgets of a page that is not shown lose their state; keep answers in a plain dict."""
    store = st.session_state.setdefault("answers", {})
    present = set(st.session_state.keys())  # one look at the state, not one per answer
    for k, v in store.items():
        if k not in present:
            st.session_state[k] = v


def save_keys() -> None:
    store = st.session_state.setdefault("answers", {})
    for k in list(st.session_state.keys()):
        if isinstance(k, str) and (k.startswith(FORM_KEYS) or k in FORM_SINGLE):
            store[k] = st.session_state[k]


def reset() -> None:
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


def relabel() -> None:
    """After a language switch, set every answer again by value, so that option widgets show it in
    the new language (their state travels as the formatted label)."""
    for k, v in st.session_state.get("answers", {}).items():
        if k.startswith("q_") and v is not None:
            st.session_state[k] = v
    for k in ("page", "when", "edit_fact", "rb_province", "rb_industry", "rb_kind", "rb_window", "rb_rule"):
        if k in st.session_state and st.session_state[k] is not None:
            st.session_state[k] = st.session_state[k]


def more() -> None:
    st.session_state["n_next"] = st.session_state.get("n_next", NEXT_STEP) + NEXT_STEP

