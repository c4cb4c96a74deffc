"""docs/rules.md: the rule catalogue in words, generated from the rule files.

One entry per rule, grouped by seed and by document: who qualifies (the `when` tree in Chinese),
what, how much (the formula with its parameters), when, where, which agency, how binding, and the
source with its 文号 and quote. The output depends only on the rule files, the fact dictionary and
the seeds (no dates, no versions), so `eligibility rules docs --check` and tests/test_docs.py can
tell whether the committed file is current.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from . import amounts
from .conditions import Compare, Group, Node, parse_condition
from .explain import KIND_WORDS, PER_WORDS, STRENGTH_WORDS, Labeller, requirement_words
from .facts import FactDictionary, default_facts
from .loading import CompiledRule, RuleSet
from .errors import RuleLoadError
from .safe_yaml import PROJECT

DEFAULT_OUT = PROJECT / "docs" / "rules.md"
HEADER = "<!-- 本文件由 `eligibility rules docs` 根据 rules/*.yaml 生成，请勿手改 / generated from the rule files, do not edit -->"


# ---------------------------------------------------------------- conditions in words


def compare_text(node: Compare, facts: FactDictionary, negate: bool = False) -> str:
    """One comparison in words: 主体类型为企业, 企业规模属于中型、小型、微型, 裁员率不高于5.5%.

    A yes/no fact reads as its label (受疫情影响较大) or the label with 否; `negate` words the opposite.
    """
    spec = facts[node.fact]
    if spec.type == "bool" and node.op in ("eq", "ne"):
        yes = (bool(node.value) if node.op == "eq" else not node.value) != negate
        return spec.label("zh") if yes else f"{spec.label('zh')}：否"
    return requirement_words(node, "zh", facts, negate)


def _bundled(facts: FactDictionary | None) -> FactDictionary:
    """The public functions below called without a fact dictionary (tests, a session at the prompt):
    the bundled one. render() always passes the rule set's."""
    return facts if facts is not None else default_facts()


def condition_text(node: Node, facts: FactDictionary | None = None, top: bool = True) -> str:
    """A condition tree in Chinese: top-level `all` parts joined by '；', nested groups in brackets."""
    facts = _bundled(facts)
    if isinstance(node, Compare):
        return compare_text(node, facts)
    if node.kind == "not":
        inner = node.children[0]
        if isinstance(inner, Compare):
            return compare_text(inner, facts, negate=True)
        return "不属于以下情形：" + condition_text(inner, facts, top=False)
    parts = [condition_text(c, facts, top=False) for c in node.children]
    if node.kind == "all":
        return "；".join(parts) if top else "（" + "，且".join(parts) + "）"
    return ("满足其一：" + "；或".join(parts)) if top else "（" + "，或".join(parts) + "）"


def rule_condition(rule: CompiledRule, facts: FactDictionary | None = None) -> Node:
    """The rule's own `when` (the compiled condition also holds the jurisdiction)."""
    facts = _bundled(facts)
    issues: list = []
    node = parse_condition(rule.spec.when, facts, "$.when", issues)
    assert node is not None and not issues, issues  # the rule loaded, so its condition parses
    return node


# ---------------------------------------------------------------- amounts, periods, sources


def amount_text(rule: CompiledRule, facts: FactDictionary | None = None) -> str | None:
    """The formula in words with the document's figures filled in, bounds and what the figure covers."""
    if rule.amount is None:
        return None
    facts = _bundled(facts)
    label = Labeller(facts, "zh").formula_name(rule.amount.param_text)
    pieces = []
    for cond, expr in rule.amount.cases:
        formula = amounts.render(expr, label)
        if cond is None:
            pieces.append(formula)
            continue
        when = condition_text(cond, facts, top=False)
        if isinstance(cond, Group) and cond.kind != "not":
            when = when[1:-1]  # the case's own brackets
        pieces.append(f"若{when}：{formula}")
    text = "；".join(pieces)
    if rule.amount.cap is not None:
        text += f"；上限：{amounts.render(rule.amount.cap, label)}"
    if rule.amount.floor is not None:
        text += f"；下限：{amounts.render(rule.amount.floor, label)}"
    per = PER_WORDS["zh"][rule.amount.spec.per]
    unit = f"（单位：元{per}）" if per else "（单位：元）"
    words = rule.amount.spec.text.zh if rule.amount.spec.text else None
    return (f"{words} — " if words else "") + text + unit


def _date(d: dt.date) -> str:
    return d.isoformat()


def period_text(rule: CompiledRule) -> str:
    p = rule.spec.period
    out = f"{_date(p.start)} 起"
    out += f"，至 {_date(p.end)}" if p.end else "，未定截止日期"
    if p.deadline:
        out += f"；申请截止 {_date(p.deadline)}"
    if p.text:
        out += f"（原文：{_one_line(p.text)}）"
    return out


def source_text(rule: CompiledRule) -> str:
    d = rule.document
    out = f"《{_strip_book(d.title)}》"
    extras = [x for x in (d.number, d.issuer, _date(d.date) if d.date else None) if x]
    if extras:
        out += "，" + "，".join(extras)
    out += f"；汇编第{d.part}篇" if d.part is not None else ""
    return out


def _strip_book(title: str) -> str:
    return title[1:-1] if title.startswith("《") and title.endswith("》") else title


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


_MD = re.compile(r"([\\`*_<>\[\]#|])")


def md(text: str) -> str:
    """Plain text that Markdown will not read as markup."""
    return _MD.sub(r"\\\1", _one_line(text))


# ---------------------------------------------------------------- the page


def _group_key(rule: CompiledRule) -> tuple:
    d = rule.document
    return (rule.seed, d.part if d.part is not None else -1, re.sub(r"\s+", "", d.title))


def _seed_titles(rules: RuleSet, seeds_dir: Path | None) -> dict[str, str]:
    from .coverage import seed_title

    out: dict[str, str] = {}
    for seed in sorted({r.seed for r in rules}):
        text = rules.seeds.get(seed)
        if text is None and seeds_dir is not None and (seeds_dir / seed).is_file():
            from .safe_yaml import read_seed

            try:
                text = read_seed(seeds_dir, seed, seed)
            except RuleLoadError:
                text = None
        titles = sorted({r.document.title for r in rules if r.seed == seed})
        out[seed] = seed_title(text, titles, seed) if text else (titles[0] if len(titles) == 1 else seed)
    return out


def rule_entry(rule: CompiledRule, facts: FactDictionary | None = None) -> list[str]:
    """The Markdown lines of one rule."""
    facts = _bundled(facts)
    s = rule.spec
    lines = [f"#### {md(s.title.zh)}", "", f"`{s.id}` · {md(s.title.en)}", ""]
    lines.append(f"- **谁可以享受**：{md(condition_text(rule_condition(rule, facts), facts))}")
    lines.append(f"- **内容**：{md(s.benefit.zh)}（{KIND_WORDS['zh'][s.kind]}）")
    how_much = amount_text(rule, facts)
    lines.append(f"- **金额**：{md(how_much)}" if how_much else "- **金额**：文件未规定可计算的金额")
    lines.append(f"- **时间**：{md(period_text(rule))}")
    lines.append(f"- **地区**：{md(rule.jurisdiction_text)}")
    lines.append(f"- **部门**：{md(s.agency.zh)}")
    lines.append(f"- **力度**：{STRENGTH_WORDS['zh'][s.strength]}（{s.strength}）")
    if s.excludes:
        lines.append("- **不重复计算**：与 " + "、".join(f"`{x}`" for x in s.excludes) + " 为同一笔资金，合计时只计一次")
    if s.tops_up:
        lines.append(f"- **补差**：在 `{s.tops_up}` 基础上补足差额")
    lines.append(f"- **依据**：{md(source_text(rule))}")
    if s.note:
        lines.append(f"- **说明**：{md(s.note)}")
    lines.append("- **原文**：")
    lines.append("")
    for i, q in enumerate(s.quotes):
        if i:
            lines.append(">")
        lines.append(f"> {md(q)}")
    lines.append("")
    return lines


def render(rules: RuleSet, seeds_dir: Path | None = None, facts: FactDictionary | None = None) -> str:
    """The whole of docs/rules.md as text (ends with one newline)."""
    facts = facts or rules.facts
    # seed, then table-of-contents number, then the order the rule files first name the document
    found: dict[tuple, list[CompiledRule]] = {}
    for r in rules:
        found.setdefault(_group_key(r), []).append(r)
    first = {k: i for i, k in enumerate(found)}
    groups = {k: found[k] for k in sorted(found, key=lambda k: (k[0], k[1], first[k]))}
    seeds = _seed_titles(rules, seeds_dir)
    out = [HEADER, "", "# 规则目录 / Rule catalogue", ""]
    out.append(f"共 {len(rules)} 条规则，来自 {len(seeds)} 份来源文本中的 {len(groups)} 份文件。"
               "每条列出：谁可以享受、内容、金额、时间、地区、部门、力度、依据和原文。"
               "重新生成：`eligibility rules docs`。")
    out.append("")
    out.append("## 目录 / Contents")
    out.append("")
    for seed, title in seeds.items():
        n = sum(1 for r in rules if r.seed == seed)
        out.append(f"- {md(title)}（`{seed}`，{n} 条）")
        docs = [(k, g) for k, g in groups.items() if k[0] == seed]
        if len(docs) > 1 or docs and docs[0][1][0].document.part is not None:
            for _, g in docs:
                d = g[0].document
                part = f"第{d.part}篇 " if d.part is not None else ""
                out.append(f"  - {part}{md(_strip_book(d.title))}（{len(g)} 条）")
    for seed, title in seeds.items():
        out += ["", f"## {md(title)}", "", f"来源文件 / Seed: `{seed}`"]
        for key, g in groups.items():
            if key[0] != seed:
                continue
            d = g[0].document
            part = f"第{d.part}篇 " if d.part is not None else ""
            out += ["", f"### {part}{md(_strip_book(d.title))}", ""]
            meta = [x for x in (d.number, d.issuer, _date(d.date) if d.date else None) if x]
            if meta:
                out += [md("，".join(meta)), ""]
            for r in g:
                out += rule_entry(r, facts)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


def write(rules: RuleSet, path: Path = DEFAULT_OUT, seeds_dir: Path | None = None) -> bool:
    """Write the page; True when the file changed."""
    text = render(rules, seeds_dir)
    old = path.read_text("utf-8") if path.is_file() else None
    if old == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return True


def is_current(rules: RuleSet, path: Path = DEFAULT_OUT, seeds_dir: Path | None = None) -> bool:
    return path.is_file() and path.read_text("utf-8") == render(rules, seeds_dir)
