"""What every page uses: the reader's language and words, the rule catalogue (loaded in the background),
and the footer that ends every run.

The words themselves are in `eligibility/words.py` (`APP`); `tx(key)` reads them in the reader's language.
"""

from __future__ import annotations

import gc
import html
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import streamlit as st

from eligibility import __version__
from eligibility.errors import RuleLoadError
from eligibility.questions import known_places
from eligibility.words import APP

UNKNOWN = "__unknown__"  # the "don't know" option of choice questions
NEXT_STEP = 5  # follow-up questions shown at a time

# The reader's language, and when a full run started, for the run in progress. Each session's script
# runs in its own thread, so a thread's values are that session's (module globals would be shared by
# every session of the server).
_RUN = threading.local()


def read_lang() -> str:
    """Read the language once at the start of a run (full or fragment), not at every word."""
    _RUN.lang = "en" if st.session_state.get("lang") == "en" else "zh"
    return _RUN.lang


def lang() -> str:
    return getattr(_RUN, "lang", "zh")


def tx(key: str) -> Any:
    return APP[lang()][key]


def msg(e: Exception | str) -> str:
    """Messages are 'zh / en': keep the reader's half."""
    text = str(e)
    if " / " not in text:
        return text
    return text.split(" / ")[0] if lang() == "zh" else text.split(" / ")[-1]


def zh(text: str) -> str:
    """Chinese text (a place, a document) shown in English mode, marked as Chinese."""
    return f'<span lang="zh-CN">{html.escape(text)}</span>' if lang() == "en" else html.escape(text)


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()<>#+-.!|~:$"})


def md_text(text: str) -> str:
    """Plain text made safe inside a widget label (labels are Markdown)."""
    return text.translate(_MD_SPECIAL)


# ---------------------------------------------------------------- the catalogue


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


def rules_dir() -> str | None:
    return os.environ.get("ELIGIBILITY_RULES_DIR") or None


def start_loading() -> None:
    catalogue_future(rules_dir())


def rules_ready() -> bool:
    return catalogue_future(rules_dir()).done()


def get_rules():
    """(rules, places), waiting for the load; a catalogue that does not load is told on the page."""
    try:
        return catalogue_future(rules_dir()).result()
    except RuleLoadError as e:
        st.error(tx("rules_error"))
        st.code("\n".join(str(i) for i in e.issues[:50]))
        st.stop()


def early_places() -> dict:
    """Place names for parsing answers before the rules are in (regions only), then the full set."""
    fut = catalogue_future(rules_dir())
    if fut.done() and fut.exception() is None:
        return fut.result()[1]
    return known_places(None)


# ---------------------------------------------------------------- the end of a run


def run_started(started: float) -> None:
    """Note when the full run began, for the footer of the fragment that ends it."""
    _RUN.started = started


def take_started() -> float:
    """When this run began: the full run's start once, then (fragment reruns) now."""
    started = getattr(_RUN, "started", None)
    _RUN.started = None
    return started or time.perf_counter()


def footer(started: float) -> None:
    rules = get_rules()[0]
    # the last element of every run (full or fragment): tests and bench/ui.py wait for its marker to know
    # a run is fully shown
    st.session_state["_runs"] = st.session_state.get("_runs", 0) + 1
    took = (time.perf_counter() - started) * 1000
    words = html.escape(tx("footer").format(tool=__version__, rules=rules.version, n=len(rules)))
    st.html(f'<p class="muted footer">{words}</p>'
            f'<span class="run-done" data-run="{st.session_state["_runs"]}" data-ms="{took:.0f}"></span>')
