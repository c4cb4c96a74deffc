"""Results as people read them: groups by window, highlighted quotes, why-not and what would change it,
and the downloadable report (HTML, CSV, JSON). No streamlit here: the app and tests both use it.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
from decimal import Decimal
from typing import Any, Iterable, Mapping

from . import safe_cells
from .conditions import OPERATORS, Compare, Group, Node
from .explain import (PER_WORDS, STATUS_WORDS, STRENGTH_WORDS, WINDOW_WORDS, _jsonable, cite_for,
                      deciding, describe_compare, is_negated, money, parents_of, reasons)
from .facts import FactDictionary, default_facts, format_decimal
from .loading import CompiledRule, RuleSet
from .models import Report, RuleResult

from .validity import WINDOWS
STATUS_ORDER = {"eligible": 0, "undetermined": 1, "ineligible": 2}

UI = {
    "zh": {
        "window_head": {"open": "执行中（现在可申请）", "closed": "已截止（可用于补申请、审计核对）",
                        "upcoming": "尚未开始", "end_unknown": "文件未写明截止日期（请先向受理部门确认是否仍在执行）"},
        "period": "执行期", "deadline": "申请截止", "open_ended": "未规定截止日期",
        "open_ended_note": "文件未写明截止日期（{text}），是否仍在执行请向受理部门确认。",
        "end_unknown_note": "文件发布于{date}（距评估日已{age}），未写明截止日期，不能据此认定现在仍可申请；请向{agency}确认是否仍在执行。",
        "estimate_end": "（截止日期按“{event}”估计）",
        "closed_note": "此政策已于{end}截止。按您填写的情况，在{start}至{end}期间本可享受。",
        "upcoming_note": "此政策将于{start}开始执行。",
        "amount": "金额", "formula": "计算公式", "filled": "代入数字", "agency": "受理部门",
        "strength": "政策力度", "source": "政策依据", "quote": "原文", "why": "判断依据",
        "why_not": "不符合的原因", "change": "如何才能符合", "still_need": "还需补充",
        "amount_need": "计算金额还需", "total": "预计可得资金合计（重叠项只计一次）",
        "total_open": "其中现在仍可申请", "not_counted": "与其他政策重叠，金额不重复计入合计",
        "possible_money": "可能还有（待补充信息后确认）", "note": "说明",
        "not_here": "另有{n}项政策不适用于您所在的地区（未列出）。",
        "report_title": "企业可享受扶持政策评估报告", "as_of": "评估日期", "rules_version": "规则版本",
        "tool_version": "工具版本", "generated": "生成时间", "input": "填写的信息（原样记录）",
        "fact": "事实项", "raw": "填写内容", "parsed": "系统理解为", "derived": "系统推算",
        "none": "无", "jurisdiction": "适用地区", "disclaimer":
            "本报告根据所填信息和政策原文自动生成，仅供参考；是否享受以受理部门审核为准。",
        "need_one": "需{req}", "need_place": "仅适用于：{place}",
    },
    "en": {
        "window_head": {"open": "Open now", "closed": "Closed (for back-claims and audits)",
                        "upcoming": "Upcoming", "end_unknown": "No end date stated (confirm with the agency first)"},
        "period": "Period", "deadline": "Apply by", "open_ended": "no end date given",
        "open_ended_note": "The document gives no end date ({text}); ask the agency whether it still applies.",
        "end_unknown_note": "Issued on {date} ({age} before the evaluation date) with no end date stated: this does not show "
                            "it can still be claimed. Ask {agency} whether it still applies.",
        "estimate_end": " (end estimated from: {event})",
        "closed_note": "Closed on {end}. On your answers you would have qualified from {start} to {end}.",
        "upcoming_note": "Starts on {start}.",
        "amount": "Amount", "formula": "Formula", "filled": "With your numbers", "agency": "Apply to",
        "strength": "Strength", "source": "Source", "quote": "Quote", "why": "Why",
        "why_not": "Why not", "change": "What would change it", "still_need": "Still needed",
        "amount_need": "For the amount", "total": "Expected money in total (overlaps counted once)",
        "total_open": "of which still open", "not_counted": "overlaps another benefit; not counted twice",
        "possible_money": "Possibly more (once the missing facts are known)", "note": "Note",
        "not_here": "{n} more measures do not apply where you are (not listed).",
        "report_title": "Support-policy eligibility report", "as_of": "Evaluation date",
        "rules_version": "Rules version", "tool_version": "Tool version", "generated": "Generated",
        "input": "Input as received", "fact": "Fact", "raw": "Entered", "parsed": "Understood as",
        "derived": "Derived", "none": "none", "jurisdiction": "Where it applies", "disclaimer":
            "Generated from your answers and the documents' words; the agency's review decides.",
        "need_one": "needs {req}", "need_place": "applies only in: {place}",
    },
}


def t(lang: str, key: str) -> Any:
    return UI["en" if lang == "en" else "zh"][key]


# ---------------------------------------------------------------- grouping



def not_here(result: RuleResult) -> bool:
    """Ineligible only because of where the business is (the rule's jurisdiction failed)."""
    if result.status != "ineligible" or result.trace is None:
        return False
    leaves = deciding(result.trace)
    return bool(leaves) and any(isinstance(x.node, Compare) and x.node.origin == "jurisdiction" for x in leaves)


def sort_key(r: RuleResult):
    return (STATUS_ORDER[r.status], -(r.amount or 0), r.rule_id)


def by_window(report: Report, include_not_here: bool = False) -> dict[str, list[RuleResult]]:
    """open / closed / upcoming -> results, eligible first, biggest amounts first."""
    out: dict[str, list[RuleResult]] = {w: [] for w in WINDOWS}
    for r in report.results:
        if include_not_here or not not_here(r):
            out[r.window].append(r)
    for w in out:
        out[w].sort(key=sort_key)
    return out


def default_window(groups: dict[str, list[RuleResult]]) -> str:
    """The group to show first: open if anything there may apply, else closed, else upcoming."""
    for w in WINDOWS:
        if any(r.status != "ineligible" for r in groups.get(w, ())):
            return w
    for w in WINDOWS:
        if groups.get(w):
            return w
    return "open"


def possible_money(report: Report, rules: RuleSet | None = None) -> Decimal:
    """Money of the 'possibly eligible' results, with overlaps counted once: nothing from an `excludes`
    group that already pays, and only the largest of a group otherwise."""
    maybe = {r.rule_id: r for r in report.results if r.status == "undetermined" and r.amount is not None}
    if rules is not None:
        paying = {r.rule_id for r in report.results if r.counted_in_total}
        for group in rules.exclusion_groups:
            members = sorted((maybe[i] for i in group if i in maybe), key=lambda r: (-r.amount, r.rule_id))
            drop = members if group & paying else members[1:]
            for r in drop:
                maybe.pop(r.rule_id, None)
    return sum((r.amount for r in maybe.values()), Decimal(0))


# ---------------------------------------------------------------- words


def status_words(r: RuleResult, lang: str = "zh", facts: FactDictionary | None = None) -> str:
    """符合 / 可能符合，还需… / 不符合."""
    facts = facts or default_facts()
    if r.status == "undetermined" and r.missing:
        names = [facts[m].label(lang) for m in r.missing if m in facts]
        if lang == "zh":
            return "可能符合，还需：" + "、".join(names)
        return "possibly eligible, still needed: " + ", ".join(names)
    return STATUS_WORDS["en" if lang == "en" else "zh"][r.status]


def amount_words(r: RuleResult, lang: str = "zh") -> str:
    from .explain import amount_text

    return amount_text(r, lang)


def strength_words(r: RuleResult, lang: str = "zh") -> str:
    return STRENGTH_WORDS["en" if lang == "en" else "zh"][r.strength]


def period_words(r: RuleResult, lang: str = "zh") -> str:
    p = r.period
    zh = lang != "en"
    if p.end:
        span = f"{p.start.isoformat()} 至 {p.end.isoformat()}" if zh else f"{p.start.isoformat()} to {p.end.isoformat()}"
    elif p.deadline:
        span = f"自{p.start.isoformat()}起" if zh else f"from {p.start.isoformat()}"
    else:
        span = (f"自{p.start.isoformat()}起（{t(lang, 'open_ended')}）" if zh
                else f"from {p.start.isoformat()} ({t(lang, 'open_ended')})")
    text = f"{t(lang, 'period')}：{span}" if zh else f"{t(lang, 'period')}: {span}"
    if p.deadline:
        text += f"；{t(lang, 'deadline')}：{p.deadline.isoformat()}" if zh else f"; {t(lang, 'deadline')}: {p.deadline.isoformat()}"
    if p.text:
        text += f"（{p.text}）" if zh else f" ({p.text})"
    return text


def _age(start: dt.date, on: dt.date, lang: str) -> str:
    months = max(0, (on.year - start.year) * 12 + on.month - start.month)
    years, rest = divmod(months, 12)
    if lang == "en":
        return f"{years} years {rest} months" if years else f"{rest} months"
    return f"{years}年{rest}个月" if years else f"{rest}个月"


def window_note(r: RuleResult, lang: str = "zh", on: dt.date | None = None) -> str:
    p = r.period
    if r.window == "closed":
        from .validity import last_day

        end = (last_day(p) or p.start).isoformat()
        note = t(lang, "closed_note").format(start=p.start.isoformat(), end=end)
        if p.end_estimate:
            note += t(lang, "estimate_end").format(event=_event_words(p.end_event, lang))
        return note
    if r.window == "end_unknown":
        date = r.source.date or p.start
        return t(lang, "end_unknown_note").format(date=date.isoformat(), age=_age(date, on or dt.date.today(), lang),
                                                  agency=r.agency.get(lang))
    if r.window == "upcoming":
        return t(lang, "upcoming_note").format(start=p.start.isoformat())
    if p.end is None and p.deadline is None:
        return t(lang, "open_ended_note").format(text=p.text or t(lang, "open_ended"))
    return ""


def _event_words(key: str | None, lang: str) -> str:
    from .validity import events

    ev = events().get(key or "")
    return "" if ev is None else (ev.en if lang == "en" else ev.zh)


def source_words(r: RuleResult) -> str:
    s = r.source
    return s.document + (f"（{s.number}）" if s.number else "")


def _requirement(node: Compare, negated: bool, lang: str, facts: FactDictionary) -> str:
    spec = facts[node.fact]
    op = OPERATORS[node.op]
    expected = _values_words(spec, node.value, lang)
    if spec.type == "bool" and node.op in ("eq", "ne"):
        want = (node.value if node.op == "eq" else not node.value) ^ negated
        yes = ("是" if want else "否") if lang == "zh" else ("yes" if want else "no")
        return f"{spec.label(lang)}：{yes}" if lang == "zh" else f"{spec.label(lang)}: {yes}"
    if lang == "zh":
        return f"{spec.label(lang)}{op.zh_not if negated else op.zh}{expected}"
    return f"{spec.label(lang)} {'not ' if negated else ''}{op.en} {expected}"


def _values_words(spec, value: Any, lang: str) -> str:
    vals = value if isinstance(value, tuple) else (value,)
    words = []
    for v in vals:
        if isinstance(v, Decimal) and spec.type == "percent":
            words.append(f"{format_decimal(v)}%")
        else:
            words.append(spec.value_label(v, lang))
    return ("、" if lang == "zh" else ", ").join(words)


def why_not(r: RuleResult, lang: str = "zh", facts: FactDictionary | None = None) -> list[dict[str, str]]:
    """For an ineligible result: each failed condition in words, its cite, and what would change it."""
    facts = facts or default_facts()
    if r.status != "ineligible" or r.trace is None:
        return []
    parents = parents_of(r.trace)
    out = []
    for leaf in deciding(r.trace):
        node = leaf.node
        if not isinstance(node, Compare):
            continue
        negated = is_negated(leaf, parents)
        said = describe_compare(node, leaf, lang, facts)
        if node.origin == "jurisdiction":
            change = t(lang, "need_place").format(place=r.jurisdiction)
        else:
            change = t(lang, "need_one").format(req=_requirement(node, negated, lang, facts))
        parent = parents.get(id(leaf))
        alt = parent is not None and isinstance(parent.node, Group) and len(parent.children) > 1 and \
            parent.node.kind == ("all" if negated else "any")
        if alt and out and out[-1].get("group") == id(parent):
            change = ("或" if lang == "zh" else "or ") + change
        out.append({"fact": node.fact, "said": said, "cite": cite_for(leaf, parents) or "", "change": change,
                    "group": id(parent) if alt else None})
    for item in out:
        item.pop("group", None)
    return out




def why_not_html(r: RuleResult, lang: str = "zh", facts: FactDictionary | None = None) -> str:
    """<ul> of the failed conditions: what was found, the document's words, what would change it."""
    e = html.escape
    items = []
    for it in why_not(r, lang, facts):
        cite = ""
        if it["cite"]:
            cite = f"（原文：“{e(it['cite'])}”）" if lang == "zh" else f" (document: “{e(it['cite'])}”)"
        items.append(f"<li>{e(it['said'])}{cite} → {e(it['change'])}</li>")
    return f"<ul>{''.join(items)}</ul>"


def why_lines(r: RuleResult, lang: str = "zh", facts: FactDictionary | None = None) -> list[str]:
    """The engine's reasons without the trivial place lines of an eligible result."""
    lines = reasons(r, lang, facts)
    if r.status == "eligible":
        prefix = "适用地区：" if lang == "zh" else "where it applies: "
        lines = [x for x in lines if not x.startswith(prefix)]
    return lines


# ---------------------------------------------------------------- quotes with the deciding words marked


def highlight_terms(rule: CompiledRule | None, result: RuleResult | None = None) -> list[tuple[str, str]]:
    """(text, class) to mark in the quote: cites of deciding conditions ('key'), other cites ('cite'),
    and the numbers of the rule's conditions and amount ('num')."""
    if rule is None:
        return []
    terms: list[tuple[str, str]] = []
    key_cites: set[str] = set()
    if result is not None and result.trace is not None:
        parents = parents_of(result.trace)
        for leaf in deciding(result.trace):
            c = cite_for(leaf, parents)
            if c:
                key_cites.add(c)
    for node in _walk(rule.condition):
        if node.cite:
            terms.append((node.cite, "key" if node.cite in key_cites else "cite"))
        if isinstance(node, Compare):
            vals = node.value if isinstance(node.value, tuple) else (node.value,)
            for v in vals:
                if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
                    terms.append((format_decimal(v), "num"))
    if rule.amount is not None:
        for v in rule.amount.params.values():
            terms.append((format_decimal(v * 100) + "%", "num"))
            terms.append((format_decimal(v), "num"))
        for text in (getattr(rule.amount, "param_text", None) or {}).values():
            terms.append((str(text), "num"))
        for part in (rule.amount.spec.cap, rule.amount.spec.floor):
            if isinstance(part, (int, float)) and not isinstance(part, bool):
                terms.append((format_decimal(part), "num"))
        for _, expr in rule.amount.cases:
            for n in _numbers(expr):
                terms.append((n, "num"))
    return terms


def _walk(node: Node):
    yield node
    for c in getattr(node, "children", ()):
        yield from _walk(c)


def _numbers(expr) -> list[str]:
    from . import amounts

    out: list[str] = []
    if isinstance(expr, amounts.Num):
        out.append(expr.text)
    for attr in ("arg", "left", "right"):
        sub = getattr(expr, attr, None)
        if sub is not None:
            out += _numbers(sub)
    for sub in getattr(expr, "args", ()) or ():
        out += _numbers(sub)
    return out


_PRIORITY = {"num": 1, "cite": 2, "key": 3}


def highlight_html(quote: str, terms: Iterable[tuple[str, str]]) -> str:
    """The quote, HTML-escaped, with <mark class=key|cite|num> around the terms (whitespace-insensitive)."""
    marks = [0] * len(quote)
    for text, cls in terms:
        text = (text or "").strip()
        if not text:
            continue
        if cls == "num":
            plain = text.replace(",", "")
            variants = {text, plain}
            for v in variants:
                pat = r"(?<![\d.])" + re.escape(v) + r"(?![\d])(?:\s*%)?"
                if v.endswith("%"):
                    pat = r"(?<![\d.])" + re.escape(v[:-1]) + r"\s*%"
                for m in re.finditer(pat, quote):
                    _paint(marks, m.start(), m.end(), _PRIORITY[cls])
            continue
        chars = [re.escape(ch) for ch in re.sub(r"\s+", "", text)]
        if not chars:
            continue
        for m in re.finditer(r"\s*".join(chars), quote):
            _paint(marks, m.start(), m.end(), _PRIORITY[cls])
    names = {v: k for k, v in _PRIORITY.items()}
    out: list[str] = []
    i = 0
    while i < len(quote):
        j = i
        while j < len(quote) and marks[j] == marks[i]:
            j += 1
        chunk = html.escape(quote[i:j])
        out.append(f'<mark class="{names[marks[i]]}">{chunk}</mark>' if marks[i] else chunk)
        i = j
    return "".join(out)


def _paint(marks: list[int], start: int, end: int, level: int) -> None:
    for k in range(start, end):
        if marks[k] < level:
            marks[k] = level


# ---------------------------------------------------------------- rule conditions in words (rule browser)


def condition_lines(node: Node, lang: str = "zh", facts: FactDictionary | None = None, depth: int = 0) -> list[str]:
    """A condition tree as nested markdown bullets."""
    facts = facts or default_facts()
    pad = "  " * depth
    if isinstance(node, Compare):
        spec = facts[node.fact]
        op = OPERATORS[node.op]
        words = _values_words(spec, node.value, lang)
        if spec.type == "bool" and node.op == "eq":
            text = f"{spec.label(lang)}：{spec.value_label(node.value, lang)}" if lang == "zh" else \
                f"{spec.label(lang)}: {spec.value_label(node.value, lang)}"
        else:
            text = f"{spec.label(lang)}{op.zh}{words}" if lang == "zh" else f"{spec.label(lang)} {op.en} {words}"
        if node.origin == "jurisdiction":
            text = (t(lang, "jurisdiction") + ("：" if lang == "zh" else ": ")) + text
        if node.cite:
            text += f"（原文：“{node.cite}”）" if lang == "zh" else f" (document: “{node.cite}”)"
        return [f"{pad}- {text}"]
    head = {"zh": {"all": "同时满足以下全部条件", "any": "满足以下任一条件", "not": "不得存在以下情形"},
            "en": {"all": "all of", "any": "any of", "not": "none of"}}["en" if lang == "en" else "zh"][node.kind]
    if node.cite:
        head += f"（原文：“{node.cite}”）" if lang == "zh" else f" (document: “{node.cite}”)"
    lines = [f"{pad}- {head}"]
    for c in node.children:
        lines += condition_lines(c, lang, facts, depth + 1)
    return lines


def rule_applies_to(rule: CompiledRule, values: Mapping[str, Any]) -> bool:
    """False when the given facts alone already rule the rule out (used by the browser's filters)."""
    from .conditions import evaluate_node

    return evaluate_node(rule.condition, dict(values), {}).outcome is not False


def in_effect_on(rule: CompiledRule, on: dt.date) -> bool:
    from .evaluate import window

    return window(rule, on)[1]


# ---------------------------------------------------------------- downloads


CSV_COLUMNS = ["rule_id", "title", "status", "status_words", "window", "in_effect", "kind", "strength",
               "amount", "per", "counted_in_total", "amount_formula", "amount_filled", "missing",
               "amount_missing", "agency", "jurisdiction", "period_start", "period_end", "deadline",
               "document", "number", "quote", "reasons"]


def result_rows(report: Report, lang: str = "zh", facts: FactDictionary | None = None) -> list[dict[str, Any]]:
    facts = facts or default_facts()
    rows = []
    for r in sorted(report.results, key=lambda r: (WINDOWS.index(r.window), sort_key(r))):
        rows.append({
            "rule_id": r.rule_id, "title": r.title.get(lang), "status": r.status,
            "status_words": status_words(r, lang, facts), "window": r.window, "in_effect": r.in_effect,
            "kind": r.kind, "strength": r.strength,
            "amount": "" if r.amount is None else f"{r.amount:.2f}", "per": r.per,
            "counted_in_total": r.counted_in_total, "amount_formula": r.amount_formula or "",
            "amount_filled": r.amount_filled or "",
            "missing": "；".join(facts[m].label(lang) for m in r.missing if m in facts),
            "amount_missing": "；".join(facts[m].label(lang) for m in r.amount_missing if m in facts),
            "agency": r.agency.get(lang), "jurisdiction": r.jurisdiction,
            "period_start": r.period.start.isoformat(),
            "period_end": r.period.end.isoformat() if r.period.end else "",
            "deadline": r.period.deadline.isoformat() if r.period.deadline else "",
            "document": r.source.document, "number": r.source.number or "", "quote": r.source.quote,
            "reasons": "；".join(reasons(r, lang, facts)),
        })
    return rows


def report_csv(report: Report, lang: str = "zh") -> bytes:
    """UTF-8 with BOM so that Excel opens the Chinese right."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    w.writeheader()
    for row in result_rows(report, lang):
        w.writerow({k: safe_cells.cell(v) for k, v in row.items()})  # nothing a spreadsheet would run
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def report_json(report: Report, lang: str = "zh", raw_input: Mapping[str, Any] | None = None) -> bytes:
    data = report.as_dict(lang)
    data["lang"] = lang
    data["input_as_received"] = _jsonable(dict(raw_input or {}))
    data["generated_at"] = dt.datetime.now().isoformat(timespec="seconds")
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --ok:#1a7f37; --maybe:#9a6700; --no:#cf222e; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC",
       "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", "Heiti SC", SimSun, sans-serif;
       color: var(--fg); max-width: 900px; margin: 2em auto; padding: 0 1em; line-height: 1.6; font-size: 15px; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { border-bottom: 2px solid var(--line); padding-bottom: .2em; }
h3 { margin: .2em 0; font-size: 1.1em; }
.meta, .muted { color: var(--muted); font-size: .9em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { border: 1px solid var(--line); padding: .3em .5em; text-align: left; vertical-align: top; }
.total { font-size: 1.3em; font-weight: bold; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6em .9em; margin: .8em 0; page-break-inside: avoid; }
.status { font-weight: bold; } .eligible { color: var(--ok); } .undetermined { color: var(--maybe); }
.ineligible { color: var(--no); }
blockquote { margin: .4em 0; padding: .3em .8em; border-left: 4px solid var(--line); background: #f6f8fa; }
mark.key { background: #ffe58f; font-weight: bold; } mark.cite { background: #fff4c2; }
mark.num { background: #d0ebff; }
ul { margin: .2em 0; padding-left: 1.4em; }
@media print { body { margin: 0; max-width: none; font-size: 11pt; } .card { border-color: #999; }
  a { color: inherit; text-decoration: none; } }
"""


def report_html(report: Report, rules: RuleSet | None = None, lang: str = "zh",
                raw_input: Mapping[str, Any] | None = None, facts: FactDictionary | None = None) -> str:
    """A self-contained, printable report (UTF-8, CJK fonts, no external resources)."""
    facts = facts or (rules.facts if rules is not None else default_facts())
    by_id = rules.by_id if rules is not None else {}
    e = html.escape
    colon = "：" if lang == "zh" else ": "
    groups = by_window(report)
    hidden = sum(1 for r in report.results if not_here(r))
    parts = [f"<!DOCTYPE html><html lang=\"{'zh-CN' if lang == 'zh' else 'en'}\"><head><meta charset=\"utf-8\">",
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
             f"<title>{e(t(lang, 'report_title'))}</title><style>{CSS}</style></head><body>",
             f"<h1>{e(t(lang, 'report_title'))}</h1>",
             "<p class=\"meta\">"
             f"{e(t(lang, 'as_of'))}{colon}{report.as_of.isoformat()}　"
             f"{e(t(lang, 'rules_version'))}{colon}{e(report.rules_version)}　"
             f"{e(t(lang, 'tool_version'))}{colon}{e(report.tool_version)}　"
             f"{e(t(lang, 'generated'))}{colon}{dt.datetime.now().isoformat(timespec='seconds')}</p>"]
    parts.append(f"<p class=\"total\">{e(t(lang, 'total'))}{colon}{e(money(report.total_amount, lang))}</p>")
    parts.append(f"<p>{e(t(lang, 'total_open'))}{colon}{e(money(report.total_in_effect, lang))}")
    pm = possible_money(report, rules)
    if pm:
        parts.append(f"；{e(t(lang, 'possible_money'))}{colon}{e(money(pm, lang))}")
    parts.append("</p>")
    # input as received
    raw = dict(raw_input or {})
    parts.append(f"<h2>{e(t(lang, 'input'))}</h2><table><tr><th>{e(t(lang, 'fact'))}</th>"
                 f"<th>{e(t(lang, 'raw'))}</th><th>{e(t(lang, 'parsed'))}</th></tr>")
    names = list(dict.fromkeys([*raw, *report.input]))
    for name in names:
        spec = facts.get(name)
        label = spec.label(lang) if spec else name
        parsed = report.input.get(name)
        parsed_words = "—" if parsed is None else (spec.value_label(_typed(spec, parsed), lang) if spec else str(parsed))
        shown = raw.get(name, parsed)
        parts.append(f"<tr><td>{e(label)}</td><td>{e('' if shown is None else str(shown))}</td>"
                     f"<td>{e(parsed_words)}</td></tr>")
    parts.append("</table>")
    if report.derived:
        items = []
        for k, v in report.derived.items():
            spec = facts.get(k)
            if spec is None:
                continue
            val = "、".join(spec.value_label(x, lang) for x in v) if isinstance(v, list) else \
                spec.value_label(_typed(spec, v), lang)
            items.append(f"<li>{e(spec.label(lang))}{colon}{e(val)}</li>")
        parts.append(f"<p><b>{e(t(lang, 'derived'))}</b></p><ul>{''.join(items)}</ul>")
    wwords = t(lang, "window_head")
    for status in ("eligible", "undetermined", "ineligible"):
        items = [r for w in WINDOWS for r in groups[w] if r.status == status]
        if not items:
            continue
        head = STATUS_WORDS["en" if lang == "en" else "zh"][status]
        parts.append(f"<h2 class=\"{status}\">{e(head)}（{len(items)}）</h2>" if lang == "zh" else
                     f"<h2 class=\"{status}\">{e(head)} ({len(items)})</h2>")
        if status == "eligible":
            for w in WINDOWS:
                sub = [r for r in items if r.window == w]
                if sub:
                    parts.append(f"<h3 class=\"muted\">{e(wwords[w])}</h3>")
                    parts.extend(card_html(r, by_id.get(r.rule_id), lang, facts, report.as_of) for r in sub)
            continue
        parts.append("<ul>")
        for r in items:
            line = f"<li><b>{e(r.title.get(lang))}</b>（{e(WINDOW_WORDS['en' if lang == 'en' else 'zh'][r.window])}）"
            if r.amount is not None:
                line += f" {e(amount_words(r, lang))}"
            line += f"<br><span class=\"muted\">{e(source_words(r))}</span>"
            if status == "undetermined":
                line += f"<br>{e(status_words(r, lang, facts))}"
            else:
                line += why_not_html(r, lang, facts)
            parts.append(line + "</li>")
        parts.append("</ul>")
    if hidden:
        parts.append(f"<p class=\"muted\">{e(t(lang, 'not_here').format(n=hidden))}</p>")
    parts.append(f"<p class=\"muted\">{e(t(lang, 'disclaimer'))}</p></body></html>")
    return "".join(parts)


def _typed(spec, v):
    if spec.type in ("money", "percent", "number") and isinstance(v, str):
        try:
            return Decimal(v)
        except Exception:
            return v
    return v


def card_html(r: RuleResult, rule: CompiledRule | None, lang: str, facts: FactDictionary,
              on: dt.date | None = None) -> str:
    e = html.escape
    colon = "：" if lang == "zh" else ": "
    out = [f"<div class=\"card\"><h3>{e(r.title.get(lang))}</h3>",
           f"<p><span class=\"status {r.status}\">{e(status_words(r, lang, facts))}</span>"]
    if r.amount is not None:
        out.append(f"　<b>{e(amount_words(r, lang))}</b>")
        if not r.counted_in_total and r.status == "eligible":
            out.append(f" <span class=\"muted\">（{e(t(lang, 'not_counted'))}）</span>")
    out.append("</p>")
    out.append(f"<p>{e(r.benefit.get(lang))}</p>")
    if r.amount_formula:
        out.append(f"<p>{e(t(lang, 'formula'))}{colon}{e(r.amount_formula)}")
        if r.amount_filled:
            out.append(f"<br>{e(t(lang, 'filled'))}{colon}{e(r.amount_filled)} = {e(money(r.amount, lang))}")
        out.append("</p>")
    out.append(f"<p>{e(period_words(r, lang))}")
    note = window_note(r, lang, on)
    if note:
        out.append(f"<br><span class=\"muted\">{e(note)}</span>")
    out.append("</p>")
    out.append(f"<p>{e(t(lang, 'agency'))}{colon}{e(r.agency.get(lang))}<br>"
               f"{e(t(lang, 'strength'))}{colon}{e(strength_words(r, lang))}</p>")
    if r.status == "ineligible":
        out.append(f"<p><b>{e(t(lang, 'why_not'))}</b></p>{why_not_html(r, lang, facts)}")
    else:
        lines = why_lines(r, lang, facts)
        if lines:
            out.append(f"<p><b>{e(t(lang, 'why'))}</b></p><ul>" + "".join(f"<li>{e(x)}</li>" for x in lines) + "</ul>")
    out.append(f"<p>{e(t(lang, 'source'))}{colon}{e(source_words(r))}</p>")
    out.append(f"<blockquote>{highlight_html(r.source.quote, highlight_terms(rule, r))}</blockquote>")
    if r.note:
        out.append(f"<p class=\"muted\">{e(t(lang, 'note'))}{colon}{e(r.note)}</p>")
    out.append("</div>")
    return "".join(out)
