"""The answer panel: the summary (definite and up-to totals), one card per benefit, the maybes by
question, services, what has closed; the downloads (the printable report, CSV, JSON) and, on request,
the measures not met and why. Worded by `eligibility.present` from the owner's view (`eligibility.owner`)."""

from __future__ import annotations

import html

import streamlit as st

from eligibility import present as P

from ..shared import tx


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

