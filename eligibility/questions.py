"""Which facts to ask next: the questionnaire's brain, kept out of the UI so it can be tested alone.

The first questions are fixed (place, kind of organisation, industry, size inputs): they decide the
most rules at once. After that the next questions are the facts the engine reports as missing for
rules still undetermined (and for the amounts of rules that are or may be eligible), ranked by how
many rules and how much money an answer can settle:

    score(fact) = sum over undetermined rules waiting on the fact of  w(rule) / len(rule.missing)
                + sum over rules not ineligible whose amount waits on it of  w(rule) / 2 / len(rule.amount_missing)
    w(rule)     = 3 for money, 1 for relief, 0.5 for a service (a faster procedure);
                  ×2 when the rule's window is open on the evaluation date

This is scoring.py's one score, which the batch's `facts_to_collect` uses too. A rule that waits on
one fact alone is settled by that answer (weight 1); one that waits on three facts is a third settled
by each. Ties go to the fact dictionary's order. Facts already given, derived facts (asked via their inputs: the engine's
`missing` already names inputs such as `insured_employees` for `layoff_rate`), facts the user chose
to skip, and the fixed first questions are never among the next questions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from math import lcm
from typing import Any, Iterable, Mapping

from .facts import FactDictionary, FactSpec, default_facts
from .loading import RuleSet
from .models import Report, RuleResult
from .scoring import SCALE, scaled

FIRST_QUESTIONS: tuple[str, ...] = ("province", "city", "county", "entity_type", "industry",
                                    "employees", "revenue", "total_assets")

# Inputs of the derived facts, as a fallback when a derived fact itself shows up as missing.
DERIVED_INPUTS: dict[str, tuple[str, ...]] = {
    "size": ("industry", "employees", "revenue", "total_assets"),
    "layoff_rate": ("unemployment_claimants", "insured_employees"),
    "insured_decline_pct": ("insured_employees", "insured_employees_at_application"),
}

ZERO = Decimal(0)


@dataclass(frozen=True)
class Question:
    """One fact worth asking, with what hangs on it."""

    fact: str
    spec: FactSpec
    score: float = 0.0
    rules: tuple[str, ...] = ()  # undetermined rules whose verdict waits on this fact
    amount_rules: tuple[str, ...] = ()  # rules whose amount waits on this fact
    money: Decimal = ZERO  # known amounts of the rules above (元)
    first: bool = False

    @property
    def n_rules(self) -> int:
        return len(set(self.rules) | set(self.amount_rules))

    def label(self, lang: str = "zh") -> str:
        return self.spec.label(lang)

    def help(self, lang: str = "zh") -> str:
        return self.spec.help(lang)


@dataclass
class _Tally:
    score: int = 0  # over SCALE × the lcm of the waiting rules' fact counts (next_questions)
    rules: list[str] = field(default_factory=list)
    amount_rules: list[str] = field(default_factory=list)
    money: Decimal = ZERO
    counted: set[str] = field(default_factory=set)


def _inputs(name: str, facts: FactDictionary, known: set[str]) -> list[str]:
    """A missing fact as the facts to ask: derived facts become their unknown inputs."""
    spec = facts.get(name)
    if spec is None:
        return []
    if not spec.derived:
        return [name]
    return [f for f in DERIVED_INPUTS.get(name, ()) if f not in known and f in facts
            and not facts[f].derived]


def first_questions(values: Mapping[str, Any] | None = None, facts: FactDictionary | None = None
                    ) -> list[Question]:
    """The fixed opening questions; `total_assets` only where the size standard uses it."""
    facts = facts or default_facts()
    values = values or {}
    out = []
    for name in FIRST_QUESTIONS:
        if name == "total_assets" and not _assets_needed(values.get("industry"), facts):
            continue
        out.append(Question(name, facts[name], first=True))
    return out


def _assets_needed(industry: str | None, facts: FactDictionary) -> bool:
    if industry is None:
        return True
    from .derived import size_standard

    std = size_standard(facts)
    return "total_assets" in std.inputs(std.sector_for(industry))


def next_questions(report: Report | Mapping[str, Any], rules: RuleSet | None = None, *,
                   on: dt.date | str | None = None, exclude: Iterable[str] = (),
                   limit: int | None = None, include_first: bool = False) -> list[Question]:
    """The facts to ask next, most decisive first.

    `report` is a Report, or a mapping of facts (then it is evaluated on `on` with `rules`).
    `exclude` names facts not to ask (e.g. the ones the user answered 不清楚). Fixed first
    questions are left out unless `include_first`.
    """
    if not isinstance(report, Report):
        from .evaluate import evaluate

        report = evaluate(report, on=on, rules=rules)
    facts = rules.facts if rules is not None else report.facts
    known = set(report.input) | {k for k, v in report.derived.items() if not isinstance(v, list)}
    skip = set(exclude) | known
    if not include_first:
        skip |= set(FIRST_QUESTIONS)
    tallies: dict[str, _Tally] = {}
    # Each share is scaled(kind, window) / (SCALE × n) for a rule waiting on n facts: summed exactly as
    # integers over SCALE × lcm(every n), the same scores (ties stay ties) without a Fraction addition per
    # rule and fact (some hundreds per answer in the app). First the waiting rules, then the sums.
    waiting: list[tuple[list[str], RuleResult, int, bool]] = []
    for r in report.results:
        if r.status == "undetermined" and r.missing:
            names = _expand(r.missing, facts, known)
            if names:
                waiting.append((names, r, scaled(r.kind, r.window, False), False))
        if r.status != "ineligible" and r.amount_missing:
            names = _expand(r.amount_missing, facts, known)
            if names:
                waiting.append((names, r, scaled(r.kind, r.window, True), True))
    common = lcm(*{len(names) for names, *_ in waiting}) if waiting else 1
    for names, r, weight, as_amount in waiting:
        share = weight * (common // len(names))
        for name in names:
            if name in skip:
                continue
            t = tallies.get(name)
            if t is None:
                t = tallies[name] = _Tally()
            t.score += share
            target = t.amount_rules if as_amount else t.rules
            if r.rule_id not in target:
                target.append(r.rule_id)
            if r.amount is not None and r.rule_id not in t.counted:
                t.counted.add(r.rule_id)
                t.money += r.amount

    order = {name: i for i, name in enumerate(facts)}
    ranked = sorted(tallies.items(), key=lambda kv: (-kv[1].score, order.get(kv[0], len(order))))
    den = SCALE * common
    out = [Question(name, facts[name], t.score / den, tuple(t.rules), tuple(t.amount_rules), t.money)
           for name, t in ranked]
    return out[:limit] if limit is not None else out


def _expand(names: Iterable[str], facts: FactDictionary, known: set[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        for f in _inputs(n, facts, known):
            if f not in out:
                out.append(f)
    return out


def missing_for(report: Report, fact: str) -> list[RuleResult]:
    """Results that name `fact` as missing (for the verdict or for the amount)."""
    return [r for r in report.results
            if fact in r.missing or (r.status != "ineligible" and fact in r.amount_missing)]


# ---------------------------------------------------------------- place names as people type them


def known_places(rules: RuleSet | None = None) -> dict[str, set[str]]:
    """Cities and counties the catalogue names (from jurisdictions and regions)."""
    from .conditions import Compare
    from .loading import load_regions

    cities: set[str] = set()
    counties: set[str] = set()
    for region in load_regions().values():
        cities.add(region["city"])
        counties.update(region["counties"])
    for r in rules or ():
        for node in _walk(r.condition):
            if isinstance(node, Compare) and node.fact == "city":
                vals = node.value if isinstance(node.value, tuple) else (node.value,)
                cities.update(v for v in vals if isinstance(v, str))
            if isinstance(node, Compare) and node.fact == "county":
                vals = node.value if isinstance(node.value, tuple) else (node.value,)
                counties.update(v for v in vals if isinstance(v, str))
    return {"city": cities, "county": counties}


def _walk(node):
    yield node
    for c in getattr(node, "children", ()):
        yield from _walk(c)


def normalise_place(fact: str, text: str | None, places: dict[str, set[str]]) -> str | None:
    """'石家庄' -> '石家庄市', '长安' -> '长安区' when the catalogue knows exactly one such name."""
    if text is None or fact not in places:
        return text
    t = text.strip()
    names = places[fact]
    if t in names or not t:
        return t
    hits = [n for n in names if n[:-1] == t or (len(t) >= 2 and n.startswith(t) and len(n) - len(t) <= 1)]
    return hits[0] if len(hits) == 1 else t
