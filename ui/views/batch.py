"""The advisers' batch page: upload a company list, check every company with the same code as
`eligibility batch` (web limits on size and rows), see the summary, the errors and a chart per measure,
download the results as people read them (titles and labels, no internal names)."""

from __future__ import annotations

import streamlit as st

from eligibility.explain import STATUS_WORDS
from eligibility.owner import askable
from eligibility.words import BATCH_TEMPLATE

from ..shared import lang, msg, tx

BATCH_MAX_BYTES = 5 * 1024 * 1024
BATCH_MAX_ROWS = 2000


def _columns_table(facts, L: str) -> list[dict]:
    """Every accepted column: its Chinese (or English) name, what it means, how to fill it."""
    cols = tx("batch_columns_cols")
    types = tx("batch_types")
    sep = tx("list_sep")
    rows = []
    for spec in facts.values():
        if spec.derived:
            continue
        rows.append({cols["column"]: spec.label(L), cols["meaning"]: spec.help(L), cols["type"]: types[spec.type],
                     cols["values"]: sep.join(v.get(L, k) for k, v in spec.values.items()) if spec.values else ""})
    return rows


def _template_csv(facts) -> bytes:
    heads = [BATCH_TEMPLATE["name"], *[facts[n].zh for n in BATCH_TEMPLATE["facts"]]]
    return ("\ufeff" + ",".join(heads) + "\n" + ",".join(BATCH_TEMPLATE["row"]) + "\n").encode("utf-8")


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
        out.append(f"{head}{tx('colon')}{msg(rest)}" if sep else msg(part))
    return tx("sep").join(out)


def batch_views(frame, summary, long, rules, L: str):
    """The summary and the details as people read them: titles, labels, words; no internal names."""
    import polars as pl

    facts = rules.facts
    cols = tx("batch_cols")
    name_col = _name_column(frame, facts)
    titles = {r.id: r.spec.title.get(L) for r in rules}
    sep = tx("sep")

    def titled(ids):
        return sep.join(titles.get(i, "") for i in (ids or "").split(";") if i in titles)

    def labelled(names):
        asked = askable([f for f in (names or "").split(";") if f], facts, set())
        return tx("list_sep").join(facts[f].label(L) for f in asked)

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

