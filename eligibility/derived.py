"""Derived facts: what the documents define by other facts is computed and cited, never asked.

- size: 工信部联企业〔2011〕300号 (size_standard.yaml), a declared size wins;
- layoff_rate: 领取失业保险金人数 ÷ 上年度月均参保职工人数 (石人社字〔2020〕39号);
- insured_decline_pct: 申请时参保人数比上年度平均参保人数减少的比例 (石人社字〔2020〕35号);
- the facts of derivations.yaml (renting premises, 小型微利企业, 小规模纳税人), decided by plain facts.
With partial inputs a derived fact may be known only up to a set (Possible); its `needs` name the
input facts that would settle it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from .conditions import Node, Possible, evaluate_node, parse_condition
from .errors import Issue, RuleLoadError
from .facts import FactDictionary, default_facts

HERE = Path(__file__).parent
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Sector:
    key: str
    zh: str
    text: str
    sme: Node
    medium: Node
    micro: Node


@dataclass(frozen=True)
class SizeStandard:
    citation: str
    sectors: dict[str, Sector]
    by_industry: dict[str, str]

    def sector_for(self, industry: str) -> Sector:
        return self.sectors[self.by_industry.get(industry, "other")]

    def inputs(self, sector: Sector) -> tuple[str, ...]:
        return tuple(sorted(sector.sme.facts() | sector.medium.facts() | sector.micro.facts(),
                            key=["employees", "revenue", "total_assets"].index))


_SIZE: dict[int, tuple[Any, "SizeStandard"]] = {}


def size_standard(facts: FactDictionary | None = None) -> SizeStandard:
    """size_standard.yaml compiled against a fact dictionary (once per dictionary)."""
    facts = facts or default_facts()
    hit = _SIZE.get(id(facts))
    if hit is None or hit[0] is not facts:
        hit = _SIZE[id(facts)] = (facts, _load_size_standard(facts))
    return hit[1]


def _load_size_standard(facts: FactDictionary) -> SizeStandard:
    from .safe_yaml import read_yaml

    path = HERE / "size_standard.yaml"
    raw = read_yaml(path)
    issues: list[Issue] = []
    sectors: dict[str, Sector] = {}
    by_industry: dict[str, str] = {}
    for key, s in raw["sectors"].items():
        loc = f"{path.name}: $.sectors.{key}"
        nodes = {part: parse_condition(s[part], facts, f"{loc}.{part}", issues) for part in ("sme", "medium", "micro")}
        for ind in s["industries"]:
            if ind not in facts["industry"].values:
                issues.append(Issue(f"{loc}.industries", f"unknown industry {ind!r}"))
            by_industry[ind] = key
        if not issues:
            sectors[key] = Sector(key, s["zh"], s["text"], nodes["sme"], nodes["medium"], nodes["micro"])  # type: ignore
    if issues:
        raise RuleLoadError(issues)
    return SizeStandard(raw["citation"], sectors, by_industry)


@dataclass(frozen=True)
class Derivation:
    """A fact that plain input facts decide (wholly, or only a "no"), when it was not answered."""

    fact: str
    decides: str  # both | no
    citation: str
    when: Node

    def adopt(self, outcome: bool | None) -> bool | None:
        """The fact's value from the condition's outcome (None: still unknown, asked as itself)."""
        if outcome is None or (self.decides == "no" and outcome is True):
            return None
        return outcome


_DERIVATIONS: dict[int, tuple[Any, tuple["Derivation", ...]]] = {}


def derivations(facts: FactDictionary | None = None) -> tuple[Derivation, ...]:
    """derivations.yaml, validated once per fact dictionary: the fact exists, is a bool nobody marked
    derived, and the condition reads only plain (non-derived) facts, so that both engines can
    evaluate it first."""
    facts = facts or default_facts()
    hit = _DERIVATIONS.get(id(facts))
    if hit is None or hit[0] is not facts:
        hit = _DERIVATIONS[id(facts)] = (facts, _load_derivations(facts))
    return hit[1]


def _load_derivations(facts: FactDictionary) -> tuple[Derivation, ...]:
    from .safe_yaml import read_yaml

    path = HERE / "derivations.yaml"
    raw = read_yaml(path)
    issues: list[Issue] = []
    out: list[Derivation] = []
    for name, d in (raw.get("derivations") or {}).items():
        loc = f"{path.name}: $.derivations.{name}"
        if name not in facts or facts[name].type != "bool" or facts[name].derived:
            issues.append(Issue(loc, f"{name!r} must be a bool fact of facts.yaml that is not derived{facts.suggest(name)}"))
            continue
        if not isinstance(d, dict) or set(d) != {"decides", "citation", "when"} or d["decides"] not in ("both", "no"):
            issues.append(Issue(loc, "an entry has exactly: decides (both | no), citation, when"))
            continue
        node = parse_condition(d["when"], facts, f"{loc}.when", issues)
        if node is None:
            continue
        bad = [f for f in node.facts() if facts[f].derived or f in {x.fact for x in out} or f == name]
        if bad:
            issues.append(Issue(f"{loc}.when", f"reads derived facts {bad}: only plain input facts"))
            continue
        out.append(Derivation(name, d["decides"], str(d["citation"]), node))
    if issues:
        raise RuleLoadError(issues)
    return tuple(out)


def _size(values: dict[str, Any], std: SizeStandard) -> tuple[Any, tuple[str, ...]]:
    """The size class or the set it may be in, and the inputs that would settle it."""
    industry = values.get("industry")
    if industry is None:
        unknown = tuple(f for f in ("employees", "revenue", "total_assets") if values.get(f) is None)
        return None, ("industry", *unknown)
    sector = std.sector_for(industry)
    needs = tuple(f for f in std.inputs(sector) if values.get(f) is None)
    sme = evaluate_node(sector.sme, values, {}).outcome
    medium = evaluate_node(sector.medium, values, {}).outcome
    micro = evaluate_node(sector.micro, values, {}).outcome
    possible: set[str] = set()
    if sme is not True:
        possible.add("large")
    if sme is not False:
        if medium is not False:
            possible.add("medium")
        if medium is not True:
            if micro is not False:
                possible.add("micro")
            if micro is not True:
                possible.add("small")
    if len(possible) == 1:
        return possible.pop(), ()
    if len(possible) == 4:
        return None, needs
    return Possible(frozenset(possible)), needs


def _ratio_pct(num: Any, den: Any) -> Decimal | None:
    if num is None or den is None or den == 0:
        return None
    return Decimal(num) * HUNDRED / Decimal(den)


def derive(given: dict[str, Any], facts: FactDictionary | None = None
           ) -> tuple[dict[str, Any], dict[str, tuple[str, ...]], dict[str, str]]:
    """Return (values incl. derived facts, needs for unknown derived facts, how each was derived).
    `facts`: the rule set's fact dictionary (the bundled one when not given)."""
    std = size_standard(facts)
    values = dict(given)
    needs: dict[str, tuple[str, ...]] = {}
    how: dict[str, str] = {}

    for d in derivations(facts):
        if values.get(d.fact) is None:
            v = d.adopt(evaluate_node(d.when, values, {}).outcome)
            if v is not None:
                values[d.fact] = v
                how[d.fact] = d.citation

    if values.get("size") is None:
        size, size_needs = _size(values, std)
        if size is not None:
            values["size"] = size
            sector = std.sector_for(values["industry"])
            how["size"] = f"按{std.citation}（{sector.zh}）：{sector.text}"
        if size_needs:
            needs["size"] = size_needs
    else:
        how["size"] = "企业自报 / declared"

    if values.get("layoff_rate") is None:
        rate = _ratio_pct(values.get("unemployment_claimants"), values.get("insured_employees"))
        if rate is not None:
            values["layoff_rate"] = rate
            how["layoff_rate"] = "稳岗返还裁员率按照领取失业保险金人数与上年度月均参加失业保险职工人数比较确定（石人社字〔2020〕39号）"
        else:
            needs["layoff_rate"] = tuple(f for f in ("unemployment_claimants", "insured_employees")
                                         if values.get(f) is None) or ("insured_employees",)

    if values.get("insured_decline_pct") is None:
        before, now = values.get("insured_employees"), values.get("insured_employees_at_application")
        pct = None if before is None or now is None else _ratio_pct(Decimal(before) - Decimal(now), before)
        if pct is not None:
            values["insured_decline_pct"] = pct
            how["insured_decline_pct"] = "申请稳岗返还时失业保险参保人数比上年度平均参保人数减少的比例（石人社字〔2020〕35号）"
        else:
            needs["insured_decline_pct"] = tuple(f for f in ("insured_employees", "insured_employees_at_application")
                                                 if values.get(f) is None) or ("insured_employees",)
    return values, needs, how
