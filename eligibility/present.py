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
from .conditions import Compare, Group, Node, cite_for, deciding, is_negated, parents_of
from .explain import (STATUS_WORDS, STRENGTH_WORDS, _jsonable, amount_text,
                      computation_words, describe_compare, fact_names, money, reasons, requirement_words, with_cite)
from .facts import FactDictionary, format_decimal
from .loading import CompiledRule, RuleSet
from .models import Report, RuleResult
from .owner import not_here  # noqa: F401 - present.not_here, as it was

from .validity import WINDOWS
from .words import APP as APP_WORDS, CSV_HEADERS, PER, REPORT, YES_NO, view as V
STATUS_ORDER = {"eligible": 0, "undetermined": 1, "ineligible": 2}

UI = REPORT  # the words of the cards and the downloads (eligibility/words.py)


def t(lang: str, key: str) -> Any:
    return UI["en" if lang == "en" else "zh"][key]


# ---------------------------------------------------------------- grouping



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
    facts = facts or r.facts
    if r.status == "undetermined" and r.missing:
        names = fact_names(r.missing, lang, facts)
        if lang == "zh":
            return "可能符合，还需：" + "、".join(names)
        return "possibly eligible, still needed: " + ", ".join(names)
    return STATUS_WORDS["en" if lang == "en" else "zh"][r.status]


amount_words = amount_text  # a result's amount in words (explain.amount_text): "最高12,000.00元/月"


def strength_words(r: RuleResult, lang: str = "zh") -> str:
    return STRENGTH_WORDS["en" if lang == "en" else "zh"][r.strength]


def span_words(start: dt.date, end: dt.date | None, lang: str = "zh") -> str:
    """From a day to a day (or from a day on): 2020-02-01 至 2020-06-30 / from 2020-02-01."""
    if lang == "en":
        return f"{start.isoformat()} to {end.isoformat()}" if end else f"from {start.isoformat()}"
    return f"{start.isoformat()} 至 {end.isoformat()}" if end else f"自{start.isoformat()}起"


def period_words(r: RuleResult, lang: str = "zh") -> str:
    p = r.period
    zh = lang != "en"
    if p.end or p.deadline:
        span = span_words(p.start, p.end, lang)
    else:
        span = (f"自{p.start.isoformat()}起（{t(lang, 'open_ended')}）" if zh
                else f"from {p.start.isoformat()} ({t(lang, 'open_ended')})")
    text = f"{t(lang, 'period')}：{span}" if zh else f"{t(lang, 'period')}: {span}"
    if p.deadline:
        text += f"；{t(lang, 'deadline')}：{p.deadline.isoformat()}" if zh else f"; {t(lang, 'deadline')}: {p.deadline.isoformat()}"
    if p.text and zh:  # the document's own words about its period are Chinese
        text += f"（{p.text}）"
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
    if spec.type == "bool" and node.op in ("eq", "ne"):
        want = (node.value if node.op == "eq" else not node.value) ^ negated
        yes = ("是" if want else "否") if lang == "zh" else ("yes" if want else "no")
        return f"{spec.label(lang)}：{yes}" if lang == "zh" else f"{spec.label(lang)}: {yes}"
    return requirement_words(node, lang, facts, negated)


def why_not(r: RuleResult, lang: str = "zh", facts: FactDictionary | None = None) -> list[dict[str, str]]:
    """For an ineligible result: each failed condition in words, its cite, and what would change it."""
    facts = facts or r.facts
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
            cite = f"（原文：“{e(it['cite'])}”）" if lang == "zh" else f" (document: “{zh_span(it['cite'], lang)}”)"
        items.append(f"<li>{e(it['said'])}{cite} → {e(it['change'])}</li>")
    return f"<ul>{''.join(items)}</ul>"


def why_lines(r: RuleResult, lang: str = "zh", facts: FactDictionary | None = None, cites: bool = True) -> list[str]:
    """The engine's reasons without the trivial place lines of an eligible result."""
    lines = reasons(r, lang, facts, cites)
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


def condition_lines(node: Node, lang: str, facts: FactDictionary, depth: int = 0) -> list[str]:
    """A condition tree as nested markdown bullets."""
    pad = "  " * depth
    if isinstance(node, Compare):
        spec = facts[node.fact]
        if spec.type == "bool" and node.op == "eq":
            text = f"{spec.label(lang)}：{spec.value_label(node.value, lang)}" if lang == "zh" else \
                f"{spec.label(lang)}: {spec.value_label(node.value, lang)}"
        else:
            text = requirement_words(node, lang, facts)
        if node.origin == "jurisdiction":
            text = (t(lang, "jurisdiction") + ("：" if lang == "zh" else ": ")) + text
        return [f"{pad}- {with_cite(text, node.cite, lang)}"]
    head = {"zh": {"all": "同时满足以下全部条件", "any": "满足以下任一条件", "not": "不得存在以下情形"},
            "en": {"all": "all of", "any": "any of", "not": "none of"}}["en" if lang == "en" else "zh"][node.kind]
    lines = [f"{pad}- {with_cite(head, node.cite, lang)}"]
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
    facts = facts or report.facts
    rows = []
    for r in sorted(report.results, key=lambda r: (WINDOWS.index(r.window), sort_key(r))):
        rows.append({
            "rule_id": r.rule_id, "title": r.title.get(lang), "status": r.status,
            "status_words": status_words(r, lang, facts), "window": r.window, "in_effect": r.in_effect,
            "kind": r.kind, "strength": r.strength,
            "amount": "" if r.amount is None else f"{r.amount:.2f}", "per": r.per,
            "counted_in_total": r.counted_in_total, "amount_formula": r.amount_formula or "",
            "amount_filled": r.amount_filled or "",
            "missing": "；".join(fact_names(r.missing, lang, facts)),
            "amount_missing": "；".join(fact_names(r.amount_missing, lang, facts)),
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


# ---------------------------------------------------------------- the owner's view in words (app and report)


def zh_span(text: str, lang: str) -> str:
    """Chinese source text (a document's title, its words) inside English: marked as Chinese."""
    e = html.escape(text)
    return f'<span lang="zh-CN">{e}</span>' if lang == "en" and re.search(r"[\u3000-\u9fff\uff00-\uffef]", text) else e


def formula_words(r: RuleResult, rule: CompiledRule | None, lang: str, facts: FactDictionary) -> str | None:
    """The amount's formula in the reader's language: the engine words it in Chinese
    (`amount_formula`); in English, the formula the engine computed with (`r.amount_expr`), relabelled."""
    if lang != "en" or not r.amount_formula or rule is None or rule.amount is None:
        return r.amount_formula
    if r.amount_expr is None:  # a result made by hand: no formula to relabel
        return None
    from . import amounts

    return amounts.render(r.amount_expr, amounts.Labeller(facts, "en").formula_name(rule.amount.param_text))


def formula_html(r: RuleResult, rule: CompiledRule | None, lang: str, facts: FactDictionary, card: bool = False) -> str:
    """The amount's formula and the company's numbers in it, as one paragraph: under a heading in an
    owner's benefit line, labelled inline in the report's card (`card`); '' without a formula."""
    formula = formula_words(r, rule, lang, facts)
    if not formula:
        return ""
    e = html.escape
    if card:
        colon = "：" if lang == "zh" else ": "
        head = f"<p>{e(t(lang, 'formula'))}{colon}{e(formula)}"
        filled = f"<br>{e(t(lang, 'filled'))}{colon}{e(computation_words(r, lang))}"
    else:
        head = f"<p><b>{e(V(lang, 'formula'))}</b><br>{e(formula)}"
        filled = f"<br>{e(computation_words(r, lang))}"
    return head + (filled if r.amount_filled else "") + "</p>"


_INTERNAL = re.compile(r"[（(]?[A-Za-z][A-Za-z0-9_]*(?:[._][A-Za-z0-9_*]+)+[）)]?")


def clean_note(note: str | None, lang: str, rules: RuleSet | None = None, facts: FactDictionary | None = None) -> str:
    """A rule's note for people: Chinese only (notes are written in Chinese), with the editors' names
    for things (rule ids, fact names, schema fields, "(cite)") replaced by their words (rule titles need
    `rules`, fact labels `facts` or `rules`)."""
    if not note or lang == "en":
        return ""
    facts = facts or (rules.facts if rules is not None else {})
    titles = {r.id: r.spec.title.zh for r in rules} if rules is not None else {}
    fields = REPORT["zh"]["note_fields"]

    def words(m: re.Match) -> str:
        raw = m.group(0)
        core = raw.strip("（）()")
        wrap = (raw[0] in "（(", raw[-1] in "）)")
        if core in titles:
            said = f"“{titles[core]}”"
        elif core in facts:
            said = f"“{facts[core].zh}”"
        elif core in fields:
            said = fields[core]
        elif core.endswith(".*") or "." in core:
            said = fields["other_rules"]
        else:
            return raw
        return ("（" if wrap[0] else "") + said + ("）" if wrap[1] else "")

    note = re.sub(r"\s*[（(]\s*cite\s*[)）]", "", note)  # an editor's mark, not words
    note = _INTERNAL.sub(words, note)
    return _SCHEMA_WORD.sub(lambda m: fields[m.group(0)], note).strip()


_SCHEMA_WORD = re.compile(r"(?<![A-Za-z_])(entitled|discretionary|encouraged|end|start|deadline|relief|strength|period|"
                          r"benefit|excludes|money|service|exact|estimate|stated|derived|event|supersedes|kind)"
                          r"(?![A-Za-z_])")


def tag_words(r: RuleResult, lang: str, short: bool = False) -> str:
    """The measure's window in a few words: open until / no end stated / closed on / starts on
    (`short`: two or three words, for lists of many measures)."""
    from .validity import last_day

    tags = V(lang, "short_tag" if short else "tag")
    last = last_day(r.period)
    if r.window == "open":
        return tags["open"].format(d=last.isoformat()) if last else tags["open_no_end"]
    day = {"closed": last or r.period.start, "upcoming": r.period.start}.get(r.window)
    return tags[r.window].format(d=day.isoformat()) if day else tags[r.window]


def line_amount_words(ln, lang: str, facts: FactDictionary, maybe: bool = False) -> str:
    """A line's money as a person reads it; '' for a maybe without a figure (never "0 元")."""
    from .explain import amount_words as words_for

    amount = ln.amount
    if amount is None or (maybe and not amount):
        if maybe or not ln.money:
            return ""
        need = fact_names(ln.head.amount_missing, lang, facts)
        if need:
            shown = ("、" if lang == "zh" else ", ").join(need[:2])
            if len(need) > 2:
                shown += f"等{len(need)}项" if lang == "zh" else f" and {len(need) - 2} more"
            return V(lang, "amount_tbd").format(x=shown)
        return V(lang, "amount_none")
    return words_for(amount, ln.amount_kind, ln.per, lang)


def _period_span(r: RuleResult, lang: str) -> str:
    from .validity import last_day

    return span_words(r.period.start, last_day(r.period), lang)


def summary_html(ov, lang: str) -> str:
    """The answer at the top: the definite total, the "up to" total, what to confirm, what may follow."""
    e = html.escape
    head = V(lang, "now_head" if ov.mode == "now" else "period_head")
    parts = [f'<div class="sum"><div class="sum-head">{e(head)}</div>']
    if ov.definite or ov.up_to:
        parts.append(f'<div class="sum-definite"><span class="big">{e(money(ov.definite, lang))}</span> '
                     f'<span class="muted">{e(V(lang, "definite"))}</span></div>')
    else:  # no "0.00元": say it in words
        words = V(lang, "nothing_open" if ov.mode == "now" else "nothing_period")
        parts.append(f'<div class="sum-definite none">{e(words)}</div>')
    if ov.up_to:
        parts.append(f'<div class="sum-upto">{e(V(lang, "up_to"))} <b>{e(money(ov.up_to, lang))}</b> '
                     f'<span class="muted">（{e(V(lang, "up_to_note"))}）</span></div>' if lang == "zh" else
                     f'<div class="sum-upto">{e(V(lang, "up_to"))} <b>{e(money(ov.up_to, lang))}</b> '
                     f'<span class="muted">({e(V(lang, "up_to_note"))})</span></div>')
    n_confirm = len(ov.confirm)
    if n_confirm:
        parts.append(f'<div class="sum-confirm">⚠ {e(V(lang, "confirm_count").format(n=n_confirm))}</div>')
    if ov.periodic:
        parts.append(f'<div class="sum-periodic">{e(V(lang, "monthly").format(n=len(ov.periodic)))}</div>')
    if ov.n_maybe:
        m = f"：{ov.n_maybe}项" if lang == "zh" else f": {ov.n_maybe}"
        if ov.maybe_money:
            m += ("，" if lang == "zh" else ", ") + V(lang, "maybe_money").format(m=money(ov.maybe_money, lang))
        parts.append(f'<div class="sum-maybe">{e(V(lang, "maybe_head") + m)}</div>')
    if ov.mode == "now" and ov.closed:
        parts.append(f'<div class="sum-closed muted">{e(V(lang, "closed_count").format(n=len(ov.closed)))}</div>')
    if ov.mode == "now" and ov.closed_maybe:
        parts.append(f'<div class="sum-closed muted">{e(V(lang, "closed_maybe").format(n=ov.closed_maybe))}</div>')
    parts.append("</div>")
    return "".join(parts)


def top_lines_html(ov, lang: str, facts: FactDictionary, n: int = 3) -> str:
    """The first benefits in one short list (the phone's answer above the form)."""
    e = html.escape
    items = [f'<li><span class="t">{e(ln.head.title.get(lang))}</span> '
             f'<span class="amt">{e(line_amount_words(ln, lang, facts) if ln.amount is not None else V(lang, "amount_short"))}'
             f'</span> <span class="muted">{e(short_tag(ln.head, lang))}</span></li>' for ln in ov.lines[:n]]
    return f'<ul class="top">{"".join(items)}</ul>' if items else ""


def line_html(ln, rules: RuleSet, lang: str, facts: FactDictionary, on: dt.date | None = None,
              period: bool = False) -> str:
    """One benefit: a summary line (title, amount, window, agency) and, on opening, how to apply, how
    it is computed, why, the document's words and the measures paying the same money."""
    e = html.escape
    colon = "：" if lang == "zh" else ": "
    r = ln.head
    rule = rules.by_id.get(r.rule_id)
    amount = line_amount_words(ln, lang, facts)
    sub = [tag_words(r, lang)]
    if period:
        sub.insert(0, f"{V(lang, 'period')}{colon}{_period_span(r, lang)}")
    sub.append(r.agency.get(lang))
    out = [f'<details class="ben {r.status}"><summary><span class="t">{e(r.title.get(lang))}</span>'
           f'<span class="amt">{e(amount)}</span><span class="sub">{e(" · ".join(sub))}</span></summary><div class="body">',
           f"<p>{e(r.benefit.get(lang))}</p>"]
    how = [f"{V(lang, 'apply_to')}{colon}{e(r.agency.get(lang))}"]
    from .validity import last_day

    last = last_day(r.period)
    if last and r.window != "end_unknown":
        how.append(f"{V(lang, 'deadline')}{colon}{last.isoformat()}")
    doc = r.source.document + (f"（{r.source.number}）" if r.source.number else "")
    how.append(f"{V(lang, 'document')}{colon}{zh_span(doc, lang)}")
    out.append(f"<p><b>{e(V(lang, 'how'))}</b><br>" + "<br>".join(how) + "</p>")
    note = window_note(r, lang, on)
    if note:
        out.append(f'<p class="muted">{e(note)}</p>')
    out.append(formula_html(r, rule, lang, facts))
    why = why_lines(r, lang, facts, cites=lang == "zh")
    if why:
        out.append(f"<p><b>{e(V(lang, 'why'))}</b></p><ul>" + "".join(f"<li>{e(x)}</li>" for x in why) + "</ul>")
    out.append(f'<p><b>{e(V(lang, "quote"))}</b></p><blockquote lang="zh-CN">'
               f"{highlight_html(r.source.quote, highlight_terms(rule, r))}</blockquote>")
    if ln.others:
        alts = []
        for o in ln.others:
            bits = [tag_words(o, lang), status_words(o, lang, facts)]
            if o.amount is not None:
                bits.insert(0, amount_words(o, lang))
            if o.tops_up:
                bits.insert(0, V(lang, "tops_up"))
            alts.append(f"<li>{e(o.title.get(lang))}（{e('，'.join(bits))}）</li>" if lang == "zh" else
                        f"<li>{e(o.title.get(lang))} ({e('; '.join(bits))})</li>")
        out.append(f'<div class="alt"><b>{e(V(lang, "same_money"))}</b><ul>{"".join(alts)}</ul></div>')
    out.append("</div></details>")
    return "".join(out)


def short_tag(r: RuleResult, lang: str) -> str:
    """The window in two or three words (lists of many measures)."""
    return tag_words(r, lang, short=True)


def _maybe_item(ln, lang: str, facts: FactDictionary) -> str:
    e = html.escape
    amount = line_amount_words(ln, lang, facts, maybe=True)
    bits = [x for x in (amount, short_tag(ln.head, lang)) if x]
    sep = "，" if lang == "zh" else "; "
    return (f'<li><span class="t">{e(ln.head.title.get(lang))}</span> '
            f'<span class="muted">{"（" if lang == "zh" else "("}{e(sep.join(bits))}{"）" if lang == "zh" else ")"}</span></li>')


MAYBE_SHOWN = 3  # titles per question before "N more"
MAYBE_GROUPS = 5  # questions shown before "the other questions"


def maybe_html(ov, lang: str, facts: FactDictionary) -> str:
    """Undetermined money measures grouped by the question that decides them, in the form's order."""
    if not ov.maybe:
        return ""
    e = html.escape
    head = V(lang, "maybe_head")
    if ov.maybe_money:
        head += ("：" if lang == "zh" else ": ") + V(lang, "maybe_money").format(m=money(ov.maybe_money, lang))
    out = [f'<h4 class="sec maybe">{e(head)}</h4><p class="muted">{e(V(lang, "maybe_note"))}</p>']
    for i, g in enumerate(ov.maybe):
        if i == MAYBE_GROUPS:
            rest = ov.maybe[MAYBE_GROUPS:]
            out.append(f'<details class="more"><summary>{e(V(lang, "maybe_rest").format(q=len(rest), n=sum(len(x.lines) for x in rest)))}'
                       f'</summary>')
        if g.question is not None:
            title = V(lang, "maybe_group").format(q=g.question.label(lang), n=len(g.lines))
        else:
            title = V(lang, "maybe_other") + (f" · {len(g.lines)}")
        if g.money:
            title += ("，" if lang == "zh" else ", ") + V(lang, "maybe_money").format(m=money(g.money, lang))
        items = [_maybe_item(ln, lang, facts) for ln in g.lines]
        more = ""
        if len(items) > MAYBE_SHOWN:
            more = (f'<details class="more"><summary>{e(V(lang, "maybe_more").format(n=len(items) - MAYBE_SHOWN))}'
                    f'</summary><ul>{"".join(items[MAYBE_SHOWN:])}</ul></details>')
        out.append(f'<div class="mq"><div class="mq-head">{e(title)}</div><ul>{"".join(items[:MAYBE_SHOWN])}</ul>{more}</div>')
    if len(ov.maybe) > MAYBE_GROUPS:
        out.append("</details>")
    return "".join(out)


def services_html(ov, lang: str) -> str:
    if not ov.services and not ov.services_maybe:
        return ""
    e = html.escape
    items = []
    for ln in ov.services:
        r = ln.head
        items.append(f'<li><span class="t">{e(r.title.get(lang))}</span> <span class="muted">'
                     f'{e(" · ".join((tag_words(r, lang), r.agency.get(lang))))}</span></li>')
    more = f'<p class="muted">{e(V(lang, "services_maybe").format(n=ov.services_maybe))}</p>' if ov.services_maybe else ""
    count = f" · {len(ov.services)}" if ov.services else ""
    return (f'<h4 class="sec services">{e(V(lang, "services_head"))}{count}</h4>'
            + (f'<ul class="svc">{"".join(items)}</ul>' if items else "") + more)


def view_html(ov, rules: RuleSet, lang: str, facts: FactDictionary | None = None) -> str:
    """The results column below the totals: the benefits by section, the maybes, services."""
    facts = facts or rules.facts
    e = html.escape
    out = []
    for section, lines in ov.sections:
        if not lines:
            continue
        out.append(f'<h4 class="sec {section}">{e(V(lang, "sections")[section])} · {len(lines)}</h4>')
        note = V(lang, "section_notes").get(section)
        if note:
            out.append(f'<p class="muted">{e(note)}</p>')
        out.extend(line_html(ln, rules, lang, facts, ov.as_of, period=ov.mode == "period") for ln in lines)
    out.append(maybe_html(ov, lang, facts))
    out.append(services_html(ov, lang))
    if ov.not_here:
        out.append(f'<p class="muted">{e(V(lang, "not_here").format(n=ov.not_here))}</p>')
    return "".join(out)


def ineligible_html(ov, lang: str, facts: FactDictionary) -> str:
    """The measures one does not qualify for: the failed condition and what would change it."""
    e = html.escape
    items = [f"<li><b>{e(r.title.get(lang))}</b> <span class=\"muted\">{e(tag_words(r, lang))}</span>"
             f"{why_not_html(r, lang, facts)}</li>" for r in ov.ineligible]
    return f'<ul class="inel">{"".join(items)}</ul>'


def benefits_csv(ov, lang: str = "zh", facts: FactDictionary | None = None, rules: RuleSet | None = None) -> bytes:
    """The owner's results table: one row per benefit (titles, words, amounts; no internal names),
    then the measures one does not qualify for. UTF-8 with BOM so that Excel opens the Chinese right."""
    facts = facts or (rules.facts if rules is not None else ov.facts)
    heads = CSV_HEADERS["en" if lang == "en" else "zh"]
    yes_no = YES_NO["en" if lang == "en" else "zh"]
    sep = "；" if lang == "zh" else "; "
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(list(heads.values()))
    rows: list[tuple[Any, bool]] = [(ln, False) for ln in ov.lines + ov.services]
    rows += [(ln, True) for g in ov.maybe for ln in g.lines]
    rows += [(ln, False) for ln in ov.closed]
    for ln, maybe in rows:
        r = ln.head
        rule = rules.by_id.get(r.rule_id) if rules is not None else None
        counted = bool(ln.counted) and ln.per == "once"
        w.writerow([r.title.get(lang), status_words(r, lang, facts), tag_words(r, lang),
                    "" if ln.amount is None or (maybe and not ln.amount) else f"{ln.amount:.2f}",
                    line_amount_words(ln, lang, facts, maybe), PER["en" if lang == "en" else "zh"][ln.per],
                    yes_no[counted], sep.join(o.title.get(lang) for o in ln.others), r.agency.get(lang),
                    _period_span(r, lang), (r.period.deadline.isoformat() if r.period.deadline else ""),
                    r.source.document, r.source.number or "",
                    (formula_words(r, rule, lang, facts) or "") + (f" = {computation_words(r, lang)}"
                                                                    if r.amount_filled else ""),
                    sep.join(fact_names(r.missing, lang, facts)),
                    sep.join(reasons(r, lang, facts, cites=lang == "zh")), r.source.quote])
    for r in ov.ineligible:
        w.writerow([r.title.get(lang), status_words(r, lang, facts), tag_words(r, lang), "", "",
                    PER["en" if lang == "en" else "zh"][r.per], yes_no[False], "", r.agency.get(lang),
                    _period_span(r, lang), (r.period.deadline.isoformat() if r.period.deadline else ""),
                    r.source.document, r.source.number or "", "", "",
                    sep.join(it["said"] + " → " + it["change"] for it in why_not(r, lang, facts)), r.source.quote])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


# ---------------------------------------------------------------- the printable report


CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --ok:#1a7f37; --maybe:#9a6700; --no:#cf222e; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC",
       "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", "Heiti SC", SimSun, sans-serif;
       color: var(--fg); max-width: 900px; margin: 1.5em auto; padding: 0 1em; line-height: 1.5; font-size: 14px; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { font-size: 1.15em; border-bottom: 2px solid var(--line);
  padding-bottom: .15em; margin: 1em 0 .4em; }
h3 { margin: .2em 0; font-size: 1.05em; }
.meta, .muted { color: var(--muted); font-size: .92em; }
table { border-collapse: collapse; width: 100%; margin: .4em 0; }
th, td { border: 1px solid var(--line); padding: .25em .45em; text-align: left; vertical-align: top; }
table.benefits { table-layout: fixed; } table.benefits th:nth-child(2) { width: 28%; }
td.amt { font-weight: bold; } tr.how td { font-size: .9em; color: #333; border-top: none; background: #f6f8fa; }
tbody.ben { page-break-inside: avoid; break-inside: avoid; }
table.head { width: auto; } table.head th { padding-right: 1.5em; }
tr { page-break-inside: avoid; break-inside: avoid; }
.sum { border: 2px solid var(--ok); border-radius: 6px; padding: .5em .9em; margin: .6em 0; }
.sum-head { font-weight: bold; } .sum .big { font-size: 1.6em; font-weight: bold; color: var(--ok); }
.sum-confirm { color: var(--maybe); }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .5em .8em; margin: .6em 0; page-break-inside: avoid; }
.status { font-weight: bold; } .eligible { color: var(--ok); } .undetermined { color: var(--maybe); }
.ineligible { color: var(--no); }
blockquote { margin: .3em 0; padding: .25em .7em; border-left: 4px solid var(--line); background: #f6f8fa; }
mark.key { background: #ffe58f; font-weight: bold; } mark.cite { background: #fff4c2; }
mark.num { background: #d0ebff; }
ul { margin: .2em 0; padding-left: 1.3em; }
.print { font: inherit; font-size: 1em; padding: .4em 1.2em; border: 1px solid var(--ok); background: var(--ok);
  color: #fff; border-radius: 6px; cursor: pointer; }
.answers span { white-space: nowrap; }
@page { size: A4; margin: 14mm 14mm 16mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; padding: 0; }
  .no-print { display: none !important; }
  .card { border-color: #999; } a { color: inherit; text-decoration: none; }
  .appendix { break-before: page; page-break-before: always; }
  h2 { break-after: avoid; page-break-after: avoid; }
}
"""


REPORT_MAYBE_GROUPS = 4  # questions listed under "possibly more" in the printed report


def report_html(report: Report, rules: RuleSet | None = None, lang: str = "zh",
                raw_input: Mapping[str, Any] | None = None, facts: FactDictionary | None = None, *,
                company: str | None = None, mode: str = "period", view=None) -> str:
    """A report an owner can print: company, date asked, the benefits with amounts and how to apply
    (agency, deadline, document) in about two A4 pages for a typical firm, a print / PDF button, and
    the documents' words and the computations in an appendix. Self-contained (UTF-8, CJK fonts, no
    external resources); `mode` is the question asked (owner.MODES)."""
    from .evaluate import resolve_rules
    from .owner import build_view

    rules = resolve_rules(rules)
    facts = facts or rules.facts
    ov = view or build_view(report, rules, mode)
    e = html.escape
    zh = lang != "en"
    colon = "：" if zh else ": "
    parts = [f"<!DOCTYPE html><html lang=\"{'zh-CN' if zh else 'en'}\"><head><meta charset=\"utf-8\">",
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
             f"<title>{e(V(lang, 'report_title'))}{(' · ' + e(company)) if company else ''}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>{e(V(lang, 'report_title'))}</h1>",
             f'<p class="no-print"><button type="button" class="print" onclick="window.print()">{e(V(lang, "print"))}</button> '
             f'<span class="muted">{e(V(lang, "print_hint"))}</span></p>']
    question = APP_WORDS["en" if not zh else "zh"]["when_options"][ov.mode]
    parts.append("<table class=\"head\">"
                 f"<tr><th>{e(V(lang, 'company'))}</th><td>{e(company) if company else e(V(lang, 'company_blank'))}</td></tr>"
                 f"<tr><th>{e(V(lang, 'asked_on'))}</th><td>{report.as_of.isoformat()}</td></tr>"
                 f"<tr><th>{e(V(lang, 'question'))}</th><td>{e(question)}</td></tr></table>")
    parts.append(summary_html(ov, lang))
    cols = V(lang, "cols")
    from .validity import last_day

    for section, lines in ov.sections:
        if not lines:
            continue
        parts.append(f"<h2>{e(V(lang, 'sections')[section])}（{len(lines)}）</h2>" if zh else
                     f"<h2>{e(V(lang, 'sections')[section])} ({len(lines)})</h2>")
        parts.append(f"<table class=\"benefits\"><tr><th>{e(cols['benefit'])}</th><th>{e(cols['amount'])}</th></tr>")
        for ln in lines:
            r = ln.head
            cell = [f"<b>{e(r.title.get(lang))}</b>"]
            if ln.others:
                cell.append(f'<span class="muted">{e(V(lang, "same_money_n").format(n=len(ln.others)))}</span>')
            apply = [f"{e(V(lang, 'apply_to'))}{colon}{e(r.agency.get(lang))}"]
            if ov.mode == "period":
                apply.append(f"{e(V(lang, 'period'))}{colon}{e(_period_span(r, lang))}"
                             + (f"（{e(tag_words(r, lang))}）" if zh else f" ({e(tag_words(r, lang))})"))
            else:
                apply.append(e(tag_words(r, lang)))
            doc = r.source.document + (f"（{r.source.number}）" if r.source.number else "")
            apply.append(f"{e(V(lang, 'document'))}{colon}{zh_span(doc, lang)}")
            parts.append(f"<tbody class=\"ben\"><tr><td>{'<br>'.join(cell)}</td>"
                         f"<td class=\"amt\">{e(line_amount_words(ln, lang, facts))}</td></tr>"
                         f"<tr class=\"how\"><td colspan=\"2\"><b>{e(cols['apply'])}</b>{colon}"
                         f"{('；' if zh else '; ').join(apply)}</td></tr></tbody>")
        parts.append("</table>")
    if ov.services:
        parts.append(f"<h2>{e(V(lang, 'services_head'))}</h2><ul>")
        for ln in ov.services:
            r = ln.head
            parts.append(f"<li><b>{e(r.title.get(lang))}</b> — {e(V(lang, 'apply_to'))}{colon}{e(r.agency.get(lang))}"
                         f"；{e(tag_words(r, lang))}</li>" if zh else
                         f"<li><b>{e(r.title.get(lang))}</b> — {e(V(lang, 'apply_to'))}{colon}{e(r.agency.get(lang))}; "
                         f"{e(tag_words(r, lang))}</li>")
        parts.append("</ul>")
    if ov.maybe:
        head = V(lang, "maybe_head")
        if ov.maybe_money:
            head += colon + V(lang, "maybe_money").format(m=money(ov.maybe_money, lang))
        parts.append(f"<h2>{e(head)}</h2><p class=\"muted\">{e(V(lang, 'maybe_note_report'))}</p><ul>")
        for g in ov.maybe[:REPORT_MAYBE_GROUPS]:
            label = (V(lang, "maybe_group").format(q=g.question.label(lang), n=len(g.lines)) if g.question else
                     V(lang, "maybe_other") + f" · {len(g.lines)}")
            if g.money:
                label += ("，" if zh else ", ") + V(lang, "maybe_money").format(m=money(g.money, lang))
            names = ("、" if zh else "; ").join(ln.head.title.get(lang) for ln in g.lines[:2])
            more = ("" if len(g.lines) <= 2 else (f" 等{len(g.lines)}项" if zh else f" and {len(g.lines) - 2} more"))
            parts.append(f"<li><b>{e(label)}</b>{colon}{e(names)}{e(more)}</li>")
        rest = sum(len(g.lines) for g in ov.maybe[REPORT_MAYBE_GROUPS:])
        if rest:
            parts.append(f"<li>{e(V(lang, 'maybe_more').format(n=rest))}</li>")
        parts.append("</ul>")
    # what the owner told us, compactly
    raw = dict(raw_input or {})
    order = {n: i for i, n in enumerate(facts)}
    names = sorted((n for n in dict.fromkeys([*raw, *report.input]) if n in facts), key=order.__getitem__)
    answers = []
    for name in names:
        spec = facts[name]
        parsed = report.input.get(name)
        val = spec.value_label(_typed(spec, parsed), lang) if parsed is not None else str(raw.get(name, ""))
        shown = zh_span(val, lang) if spec.type == "text" else e(val)  # place names as typed
        answers.append(f"<span>{e(spec.label(lang))}{colon}{shown}</span>")
    derived = []
    for k, v in report.derived.items():
        spec = facts.get(k)
        if spec is None or isinstance(v, list):
            continue
        derived.append(f"<span>{e(spec.label(lang))}{colon}{e(spec.value_label(_typed(spec, v), lang))}</span>")
    parts.append(f"<h2>{e(V(lang, 'answers'))}</h2><p class=\"answers\">{('；' if zh else '; ').join(answers)}</p>")
    if derived:
        parts.append(f"<p class=\"answers\"><b>{e(V(lang, 'derived'))}</b>{colon}{('；' if zh else '; ').join(derived)}</p>")
    parts.append(f"<p class=\"muted\">{e(V(lang, 'disclaimer'))}</p>"
                 f"<p class=\"meta\">{e(V(lang, 'generated'))}{colon}{dt.datetime.now().isoformat(timespec='seconds')}　"
                 f"{e(V(lang, 'rules_version'))}{colon}{e(report.rules_version)}　"
                 f"{e(V(lang, 'tool_version'))}{colon}{e(report.tool_version)}</p>")
    # appendix: the documents' words, the computations, the input as received
    parts.append(f"<section class=\"appendix\"><h2>{e(V(lang, 'appendix'))}</h2><p class=\"muted\">{e(V(lang, 'appendix_note'))}</p>")
    for ln in ov.lines + ov.services:
        for r in ln.members:
            if r.status == "eligible":
                parts.append(card_html(r, rules.by_id.get(r.rule_id), lang, facts, report.as_of, rules))
    parts.append(f"<h3>{e(V(lang, 'input'))}</h3><table><tr><th>{e(V(lang, 'fact'))}</th>"
                 f"<th>{e(V(lang, 'raw'))}</th><th>{e(V(lang, 'parsed'))}</th></tr>")
    for name in names:
        spec = facts[name]
        parsed = report.input.get(name)
        parsed_words = "—" if parsed is None else spec.value_label(_typed(spec, parsed), lang)
        typed = str(raw[name]) if name in raw and raw[name] is not None else parsed_words  # as the owner wrote it
        parts.append(f"<tr><td>{e(spec.label(lang))}</td><td>{zh_span(typed, lang)}</td>"
                     f"<td>{zh_span(parsed_words, lang) if spec.type == 'text' else e(parsed_words)}</td></tr>")
    parts.append("</table></section></body></html>")
    return "".join(parts)


def _typed(spec, v):
    if spec.type in ("money", "percent", "number") and isinstance(v, str):
        try:
            return Decimal(v)
        except Exception:
            return v
    return v


def card_html(r: RuleResult, rule: CompiledRule | None, lang: str, facts: FactDictionary,
              on: dt.date | None = None, rules: RuleSet | None = None) -> str:
    """One measure in full (the report's appendix): verdict, amount and formula, period, agency, why,
    the document and its words."""
    e = html.escape
    colon = "：" if lang == "zh" else ": "
    out = [f"<div class=\"card\"><h3>{e(r.title.get(lang))}</h3>",
           f"<p><span class=\"status {r.status}\">{e(status_words(r, lang, facts))}</span>"]
    if r.amount is not None:
        out.append(f"　<b>{e(amount_words(r, lang))}</b>")
        if not r.counted_in_total and r.status == "eligible":
            out.append(f" <span class=\"muted\">（{e(t(lang, 'not_counted'))}）</span>" if lang == "zh" else
                       f" <span class=\"muted\">({e(t(lang, 'not_counted'))})</span>")
    out.append("</p>")
    out.append(f"<p>{e(r.benefit.get(lang))}</p>")
    out.append(formula_html(r, rule, lang, facts, card=True))
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
        lines = why_lines(r, lang, facts, cites=lang == "zh")
        if lines:
            out.append(f"<p><b>{e(t(lang, 'why'))}</b></p><ul>" + "".join(f"<li>{e(x)}</li>" for x in lines) + "</ul>")
    src = r.source
    doc = src.document + (f"（{src.number}）" if src.number else "") + (f" · {src.issuer}" if src.issuer else "") + \
        (f" · {src.date.isoformat()}" if src.date else "")
    out.append(f"<p>{e(t(lang, 'source'))}{colon}{zh_span(doc, lang)}</p>")
    out.append(f"<blockquote lang=\"zh-CN\">{highlight_html(r.source.quote, highlight_terms(rule, r))}</blockquote>")
    extra = clean_note(r.note, lang, rules, facts)
    if extra:
        out.append(f"<p class=\"muted\">{e(t(lang, 'note'))}{colon}{e(extra)}</p>")
    out.append("</div>")
    return "".join(out)
