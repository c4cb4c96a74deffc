"""The Streamlit app a business owner fills in: `streamlit run ui/app.py`.

A thin entry: the page's settings, the header (title, language, page switch) and one page from
`ui/views/`: the owner's questionnaire and answer (`form`, with `questions` and `results`), the
catalogue (`catalogue`) or the advisers' batch check (`batch`). Widgets fill a dict of raw answers, each
parsed through the fact dictionary, the engine evaluates, `eligibility.owner` makes the owner's view and
`eligibility.present` words it. All words are in `eligibility/words.py`. Every widget has a key (tests
drive the app by keys). Set ELIGIBILITY_RULES_DIR to use another rules folder than the bundled one.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from eligibility.words import APP  # noqa: E402

st.set_page_config(page_title=APP["zh"]["page_title"], page_icon="🧾", layout="wide")

from ui import state  # noqa: E402
from ui.shared import footer, get_rules, read_lang, run_started, start_loading, tx  # noqa: E402
from ui.style import CSS, DATE_COMMIT_JS  # noqa: E402


def main() -> None:
    started = time.perf_counter()
    read_lang()
    st.html(CSS)
    st.html(DATE_COMMIT_JS, unsafe_allow_javascript=True)
    head, switch = st.columns([5, 2])
    with switch:
        st.radio(APP["zh"]["lang"], options=["zh", "en"], key="lang", horizontal=True, on_change=state.relabel,
                 format_func=tx("lang_names").__getitem__)
    with head:
        st.title(tx("title"), anchor="title")  # headings get fixed anchors: see page_form
    st.caption(tx("subtitle"))
    start_loading()  # start loading the rules while the page is sent
    pages = tx("pages")
    page = st.radio(tx("page"), options=list(pages), key="page", horizontal=True,
                    format_func=lambda v: pages[v], label_visibility="collapsed")
    if page == "form":
        from ui.views.form import form_fragment

        run_started(started)
        form_fragment()
        return
    if page == "browse":
        from ui.views.catalogue import page_browse

        page_browse(get_rules()[0])
    else:
        from ui.views.batch import page_batch

        page_batch(get_rules()[0])
    footer(started)


main()
