"""Traces -> words. Evaluation decides; this module only says why, zh first, en second."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .amounts import Labeller  # noqa: F401 - where it always was for the app; the engine names formulas with it
from .conditions import (OPERATORS, Compare, Possible, Trace, cite_for, deciding,  # noqa: F401 - trace analysis lives
                         is_negated, parents_of)  # with the traces; re-exported for the callers of explain
from .facts import FactDictionary, format_decimal

STATUS_WORDS = {
    "zh": {"eligible": "符合", "ineligible": "不符合", "undetermined": "可能符合，还需补充信息"},
    "en": {"eligible": "eligible", "ineligible": "not eligible", "undetermined": "possibly eligible, more facts needed"},
}
STRENGTH_WORDS = {
    "zh": {"entitled": "符合条件即可享受", "discretionary": "经有关部门审核批准后可享受",
           "encouraged": "政策鼓励，具体由各方协商或部门确定"},
    "en": {"entitled": "an entitlement once the conditions are met", "discretionary": "at the authority's discretion",
           "encouraged": "encouraged; depends on others' agreement"},
}
KIND_WORDS = {"zh": {"money": "资金", "relief": "缓解措施", "service": "服务"},
              "en": {"money": "money", "relief": "relief", "service": "service"}}
WINDOW_WORDS = {"zh": {"open": "执行中", "closed": "已截止", "upcoming": "尚未开始", "end_unknown": "未写明截止日期，需确认"},
                "en": {"open": "open", "closed": "closed", "upcoming": "upcoming",
                       "end_unknown": "no end date stated; confirm"}}
AMOUNT_KIND_WORDS = {"zh": {"exact": "", "up_to": "最高", "estimate": "约"},
                     "en": {"exact": "", "up_to": "up to ", "estimate": "about "}}
PER_WORDS = {"zh": {"once": "", "month": "/月", "year": "/年"}, "en": {"once": "", "month": "/month", "year": "/year"}}


def amount_text(r, lang: str = "zh") -> str:
    """An amount as a person reads it: "最高 12,000.00元/月" — the cap word and the unit always shown."""
    if r.amount is None:
        return ""
    return amount_words(r.amount, r.amount_kind, r.per, lang)


def amount_words(amount: Decimal, kind: str | None = None, per: str = "once", lang: str = "zh") -> str:
    lang = "en" if lang == "en" else "zh"
    return AMOUNT_KIND_WORDS[lang][kind or "exact"] + money(amount, lang) + PER_WORDS[lang][per]


def computation_words(r, lang: str = "zh") -> str:
    """The company's numbers in the amount's formula and what they come to: "10,000 × 2 = 20,000.00元"."""
    return f"{r.amount_filled} = {money(r.amount, lang)}" if r.amount_filled else ""


def fact_names(names, lang: str, facts: FactDictionary) -> list[str]:
    """Facts as a person reads them (their labels), in the order given; names not in `facts` left out."""
    return [facts[m].label(lang) for m in names if m in facts]


def money(value: Decimal | None, lang: str = "zh") -> str:
    if value is None:
        return "金额待定" if lang == "zh" else "amount to be determined"
    text = f"{value:,.2f}"
    return f"{text}元" if lang == "zh" else f"{text} yuan"


def value_words(spec, value: Any, lang: str = "zh") -> str:
    """A value of a fact in words (a rule's threshold or a company's answer): 5.5% (two places at most),
    餐饮业、零售业 (a list), 小型或微型 (a derived value known only up to a set), 2020年3月1日."""
    if isinstance(value, Possible):
        joiner = "或" if lang == "zh" else " or "
        return joiner.join(spec.value_label(v, lang) for v in sorted(value.values))
    if isinstance(value, tuple):
        return ("、" if lang == "zh" else ", ").join(value_words(spec, v, lang) for v in value)
    if isinstance(value, dt.date):
        return f"{value.year}年{value.month}月{value.day}日" if lang == "zh" else value.isoformat()
    if isinstance(value, Decimal) and spec.type == "percent":
        return f"{format_decimal(round(value, 2))}%"
    return spec.value_label(value, lang)


def requirement_words(node: Compare, lang: str, facts: FactDictionary, negate: bool = False) -> str:
    """What a comparison asks for (or, `negate`, its opposite): 裁员率不高于5.5% / layoff rate at most 5.5%.
    Yes/no facts are worded by each caller (a list item, a requirement, a catalogue line differ)."""
    spec = facts[node.fact]
    op = OPERATORS[node.op]
    if lang == "zh":
        return f"{spec.label(lang)}{op.zh_not if negate else op.zh}{value_words(spec, node.value, lang)}"
    return f"{spec.label(lang)} {'not ' if negate else ''}{op.en} {value_words(spec, node.value, lang)}"


def describe_compare(node: Compare, trace: Trace, lang: str, facts: FactDictionary) -> str:
    """One comparison in words, e.g. '裁员率为6.1%，高于5.5%'."""
    spec = facts[node.fact]
    op = OPERATORS[node.op]
    label = spec.label(lang)
    expected = value_words(spec, node.value, lang)
    if trace.outcome is None:
        if lang == "zh":
            return f"{label}未知（条件：{op.zh}{expected}）"
        return f"{label} unknown (condition: {op.en} {expected})"
    actual = value_words(spec, trace.actual, lang)
    if spec.type == "bool" and node.op in ("eq", "ne"):
        want = node.value if node.op == "eq" else not node.value
        if lang == "zh":
            return f"{label}：{actual}" + ("" if trace.outcome else f"（要求：{'是' if want else '否'}）")
        return f"{label}: {actual}" + ("" if trace.outcome else f" (required: {'yes' if want else 'no'})")
    if node.op == "eq":
        if lang == "zh":
            return f"{label}为{actual}" + ("" if trace.outcome else f"（要求为{expected}）")
        return f"{label} is {actual}" + ("" if trace.outcome else f" (required: {expected})")
    if lang == "zh":
        words = op.zh if trace.outcome else op.zh_not
        return f"{label}为{actual}，{words}{expected}"
    words = op.en if trace.outcome else f"not {op.en}"
    return f"{label} is {actual}, {words} {expected}"


def with_cite(text: str, cite: str | None, lang: str) -> str:
    """Words followed by the document's own: （原文：“…”） / (document: “…”)."""
    if not cite:
        return text
    return f"{text}（原文：“{cite}”）" if lang == "zh" else f"{text} (document: “{cite}”)"


def reasons(result, lang: str = "zh", facts: FactDictionary | None = None, cites: bool = True) -> list[str]:
    """Why (or why not, or what is missing), each line in the document's words where it gives them
    (`cites=False`: without the document's words, e.g. when the quote is shown next to them).
    `facts`: the fact dictionary (the one the result was judged with when not given)."""
    facts = facts or result.facts
    trace: Trace | None = result.trace
    if trace is None:
        return []
    parents = parents_of(trace)
    lines: list[str] = []
    for leaf in deciding(trace):
        node = leaf.node
        assert isinstance(node, Compare)
        negated = is_negated(leaf, parents)
        text = describe_compare(node, leaf, lang, facts)
        if negated:
            text = ("不得存在以下情形：" if lang == "zh" else "must not hold: ") + text
        if node.origin == "jurisdiction":
            text = ("适用地区：" if lang == "zh" else "where it applies: ") + text
        lines.append(with_cite(text, cite_for(leaf, parents) if cites else None, lang))
    if result.status == "undetermined" and result.missing:
        names = ("、" if lang == "zh" else ", ").join(fact_names(result.missing, lang, facts))
        lines.insert(0, f"还需补充：{names}" if lang == "zh" else f"Still needed: {names}")
    if result.status != "ineligible" and result.amount_missing:
        names = "、".join(fact_names(result.amount_missing, lang, facts))
        lines.append(f"计算金额还需：{names}" if lang == "zh" else f"To compute the amount: {names}")
    return lines


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() and abs(v) < 10**15 else float(v)
    if isinstance(v, (dt.date,)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def result_dict(r, lang: str = "zh", facts: FactDictionary | None = None) -> dict[str, Any]:
    return {
        "rule_id": r.rule_id,
        "title": r.title.get(lang),
        "title_en": r.title.en,
        "status": r.status,
        "in_effect": r.in_effect,
        "window": r.window,
        "kind": r.kind,
        "strength": r.strength,
        "benefit": r.benefit.get(lang),
        "agency": r.agency.get(lang),
        "jurisdiction": r.jurisdiction,
        "amount": _jsonable(r.amount),
        "amount_kind": r.amount_kind,
        "amount_formula": r.amount_formula,
        "amount_filled": computation_words(r, lang) or None,
        "amount_missing": r.amount_missing,
        "per": r.per,
        "counted_in_total": r.counted_in_total,
        "period": _jsonable(r.period.model_dump()),
        "source": _jsonable(r.source.model_dump()),
        "missing": r.missing,
        "reasons": reasons(r, lang, facts),
        "excludes": r.excludes,
        "supersedes": r.supersedes,
        "superseded_by": r.superseded_by,
        "tops_up": r.tops_up,
        "note": r.note,
    }


def report_dict(report, lang: str = "zh", facts: FactDictionary | None = None) -> dict[str, Any]:
    facts = facts or report.facts
    return {
        "as_of": report.as_of.isoformat(),
        "derived": _jsonable(report.derived),
        "total_amount": _jsonable(report.total_amount),
        "total_in_effect": _jsonable(report.total_in_effect),
        "total_up_to": _jsonable(report.total_up_to),
        "rules_version": report.rules_version,
        "tool_version": report.tool_version,
        "input": report.input,
        "warnings": report.warnings,
        "results": [result_dict(r, lang, facts) for r in report.results],
    }


def summary_text(report, lang: str = "zh", show_ineligible: bool = False, facts: FactDictionary | None = None) -> str:
    """A readable summary for the terminal: eligible, then possible, then (optionally) not eligible.
    `facts`: the fact dictionary (the report's rule set's when not given)."""
    facts = facts or report.facts
    w = STATUS_WORDS[lang]
    out = []
    head = f"评估日期：{report.as_of}　规则版本：{report.rules_version}" if lang == "zh" else \
        f"As of {report.as_of}, rules version {report.rules_version}"
    out.append(head)
    if report.derived:
        parts = []
        for k, v in report.derived.items():
            spec = facts[k]
            val = value_words(spec, Possible(frozenset(v)) if isinstance(v, list) else v, lang)
            parts.append(f"{spec.label(lang)}：{val}" if lang == "zh" else f"{spec.label(lang)}: {val}")
        out.append(("推算：" if lang == "zh" else "Derived: ") + "；".join(parts))
    out.append((f"确定可得资金合计：{money(report.total_amount, lang)}（当前仍在执行期内的：{money(report.total_in_effect, lang)}）；"
                 f"另有最高可得：{money(report.total_up_to, lang)}"
                if lang == "zh" else
                f"Definite money in total: {money(report.total_amount, lang)} (still open: {money(report.total_in_effect, lang)}); "
                f"up to a further {money(report.total_up_to, lang)}"))
    order = ["eligible", "undetermined"] + (["ineligible"] if show_ineligible else [])
    for status in order:
        group = [r for r in report.results if r.status == status]
        if not group:
            continue
        out.append("")
        out.append(f"【{w[status]}】{len(group)}项" if lang == "zh" else f"[{w[status]}] {len(group)}")
        for r in group:
            amount = f"　{amount_text(r, lang)}" if r.amount is not None else ""
            out.append(f"- {r.title.get(lang)}（{WINDOW_WORDS[lang][r.window]}）{amount}")
            if r.amount_filled:
                out.append(f"    计算：{computation_words(r, lang)}" if lang == "zh" else
                           f"    computed: {computation_words(r, lang)}")
            for line in reasons(r, lang, facts)[:4]:
                out.append(f"    {line}")
            doc = r.source.document + (f"（{r.source.number}）" if r.source.number else "")
            out.append(f"    依据：{doc}" if lang == "zh" else f"    source: {doc}")
    return "\n".join(out)
