"""The catalogue page: every measure, filtered by region, industry, kind, window on a date and words;
one measure's conditions, amount, period, source (the document's words) and worked examples."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from eligibility import present as P
from eligibility.evaluate import window
from eligibility.explain import KIND_WORDS, STATUS_WORDS, STRENGTH_WORDS
from eligibility.words import APP, CITY_EN, SOME_COUNTIES

from ..shared import lang, md_text, tx, zh


def page_browse(rules) -> None:
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
                           + (tx("paren").format(x=rules.by_id[i].document.number) if rules.by_id[i].document.number else ""))
        if rid:
            rule_detail(rules.by_id[rid], rules, L)


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


def rule_detail(rule, rules, L: str) -> None:
    s = rule.spec
    facts = rules.facts
    colon = tx("colon")
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
        from eligibility import amounts
        from eligibility.explain import Labeller

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
    st.markdown(f"{p.start} – {p.end or '…'}" + (f"{tx('sep')}{P.t(L, 'deadline')}{colon}{p.deadline}" if p.deadline else "")
                + (f"  \n{p.text}" if p.text and L == "zh" else ""))
    if s.excludes:
        st.caption(f"{tx('rb_excludes')}{colon}{tx('sep').join(titles.get(i, '') for i in s.excludes)}")
    if s.tops_up:
        st.caption(f"{tx('rb_tops_up')}{colon}{titles.get(s.tops_up, '')}")
    st.markdown(f"##### {tx('rb_source')}")
    doc = rule.document
    st.markdown(zh(doc.title + (APP["zh"]["paren"].format(x=doc.number) if doc.number else "") + (f" · {doc.issuer}" if doc.issuer else ""))
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
        fx = tx("sep").join(f"{facts[k].label(L)}={_value_text(facts[k], v, L)}"
                                               for k, v in ex.facts.items() if k in facts)
        rows.append({**({cols["name"]: ex.name} if L == "zh" else {}), cols["facts"]: fx,
                     cols["status"]: STATUS_WORDS[L][ex.expect.status],
                     cols["amount"]: "" if ex.expect.amount is None else str(ex.expect.amount)})
    st.dataframe(rows, hide_index=True, width="stretch", key="rb_examples")

