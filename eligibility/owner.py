"""A report as a business owner reads it: one line per benefit, an honest date framing, and the
maybes grouped by the question that decides them. No words and no streamlit here (present.py words
it, ui/app.py draws it); tests check the figures against the engine's.

Two questions an owner may ask (`mode`):

- "now":    what can I still apply for on the date? Only `open` measures count as "can apply" and
            make the totals (the engine's `total_in_effect` for the definite money); `end_unknown`
            ones are a section of their own ("confirm with the agency"); `upcoming` ones too; closed
            ones are only counted ("N more have closed").
- "period": what could I have had while each measure ran? Every measure judged on the facts,
            whatever its window, each line showing its own period; the totals are the engine's
            `total_amount` (definite) and `total_up_to` ("up to").

One line per benefit: measures that pay the same money (an `excludes` group of
`RuleSet.exclusion_groups`, which includes `supersedes` links, joined with `tops_up` links) make one
line; the amount counted is the engine's choice (`counted_in_total`, or in "now" the engine's
choice among the open ones), the alternatives are folded under it. Amounts per month or year are
never added to one-off 元.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable

from .money import counted_member, counts_toward_total, tie_key
from .facts import FactDictionary
from .loading import RuleSet
from .models import Report, RuleResult
from .questions import DERIVED_INPUTS, FIRST_QUESTIONS, Question, next_questions

MODES = ("now", "period")
ZERO = Decimal(0)
WINDOW_PREF = {"open": 0, "end_unknown": 1, "upcoming": 2, "closed": 3}
NOW_SECTIONS = ("open", "end_unknown", "upcoming")


@dataclass
class Line:
    """One benefit: the measure shown (head), the others paying the same money, the counted ones."""

    head: RuleResult
    members: list[RuleResult]  # head first, then the alternatives folded under it
    counted: list[RuleResult] = field(default_factory=list)  # whose amounts this view adds up (once per group)
    section: str = ""  # open | end_unknown | upcoming | all | closed | maybe | service

    @property
    def others(self) -> list[RuleResult]:
        return self.members[1:]

    @property
    def status(self) -> str:
        return self.head.status

    @property
    def money(self) -> bool:
        return self.head.kind == "money"

    @property
    def per(self) -> str:
        return self.head.per

    @property
    def definite(self) -> Decimal:
        return sum((r.amount for r in self.counted if r.amount_kind in (None, "exact")), ZERO)

    @property
    def up_to(self) -> Decimal:
        return sum((r.amount for r in self.counted if r.amount_kind not in (None, "exact")), ZERO)

    @property
    def amount(self) -> Decimal | None:
        """The line's money: the counted amounts (a base and its top-up add up), else the head's."""
        if self.counted:
            return self.definite + self.up_to
        return self.head.amount

    @property
    def amount_kind(self) -> str | None:
        if self.counted:
            kinds = {r.amount_kind or "exact" for r in self.counted}
            return "exact" if kinds == {"exact"} else ("up_to" if "up_to" in kinds else "estimate")
        return self.head.amount_kind


@dataclass
class MaybeGroup:
    """Undetermined money lines that one question decides (fact None: the rest)."""

    fact: str | None
    question: Question | None
    lines: list[Line]

    @property
    def money(self) -> Decimal:
        return sum((ln.head.amount for ln in self.lines
                    if ln.head.amount and ln.per == "once"), ZERO)


@dataclass
class OwnerView:
    mode: str
    as_of: dt.date
    sections: list[tuple[str, list[Line]]]  # money lines per section, in order
    services: list[Line]  # eligible measures without money (relief, services)
    services_maybe: int  # undetermined relief/service lines
    maybe: list[MaybeGroup]
    closed: list[Line]  # "now": lines one would have had, now closed
    ineligible: list[RuleResult]
    not_here: int
    questions: list[Question]  # the order the form asks them in (first questions first)
    closed_maybe: int = 0  # "now": measures that may have applied, now closed
    facts: FactDictionary | None = None  # the rule set's fact dictionary, for the view's words

    @property
    def lines(self) -> list[Line]:
        return [ln for _, lines in self.sections for ln in lines]

    @property
    def definite(self) -> Decimal:
        return sum((ln.definite for ln in self.lines), ZERO)

    @property
    def up_to(self) -> Decimal:
        return sum((ln.up_to for ln in self.lines), ZERO)

    @property
    def confirm(self) -> list[Line]:
        """Eligible lines whose end is not stated: confirm with the agency."""
        return [ln for ln in self.lines + self.services if ln.head.window == "end_unknown"]

    @property
    def periodic(self) -> list[Line]:
        return [ln for ln in self.lines if ln.per != "once"]

    @property
    def maybe_money(self) -> Decimal:
        return sum((g.money for g in self.maybe), ZERO)

    @property
    def n_maybe(self) -> int:
        return sum(len(g.lines) for g in self.maybe)


# ---------------------------------------------------------------- groups


def not_here(result: RuleResult) -> bool:
    """Ineligible only because of where the business is (the rule's jurisdiction failed)."""
    return result.outside_jurisdiction


def benefit_groups(rules: RuleSet) -> tuple[dict[str, int], dict[str, int]]:
    """(rule id -> benefit line number, rule id -> the engine's counted-once group number): the rule
    set's one grouping (`RuleSet.benefit_groups`)."""
    groups = rules.benefit_groups
    return groups.line, groups.counted_once


def _best(members: Iterable[RuleResult], sup: dict[str, list[str]]) -> RuleResult | None:
    """The engine's choice within a counted-once group (money.counted_member, as evaluate._count_once)."""
    return counted_member(list(members), sup)


def _order(r: RuleResult, sup: dict[str, list[str]], now: bool):
    return (0 if r.status == "eligible" else 1, WINDOW_PREF[r.window] if now else 0,
            0 if r.kind == "money" else 1, 1 if sup.get(r.rule_id) else 0,
            -(r.amount if r.amount is not None else Decimal(-1)), tie_key(r.amount_kind, r.rule_id))


# ---------------------------------------------------------------- questions


def _decided_both(facts: FactDictionary) -> dict[str, list[str]]:
    """Facts derivations.yaml decides both ways, with the inputs that decide them (once per dictionary:
    `askable` runs for every follow-up question on every answer)."""
    from .derived import derivations

    hit = _BOTH.get(id(facts))
    if hit is None or hit[0] is not facts:
        both = {d.fact: sorted(d.when.facts()) for d in derivations(facts) if d.decides == "both"}
        hit = _BOTH[id(facts)] = (facts, both)
    return hit[1]


_BOTH: dict[int, tuple[FactDictionary, dict[str, list[str]]]] = {}


def askable(names: Iterable[str], facts: FactDictionary, known: set[str]) -> list[str]:
    """Missing facts as the questions to ask: derived facts become their unknown inputs (the size
    from staff, revenue and assets; renting premises from the monthly rent, derivations.yaml)."""
    both = _decided_both(facts)
    out: list[str] = []
    for n in names:
        spec = facts.get(n)
        if spec is None:
            continue
        if n in both:
            inputs = both[n]
        elif spec.derived:
            inputs = list(DERIVED_INPUTS.get(n, ()))
        else:
            inputs = [n]
        for f in inputs:
            if f not in known and f in facts and not facts[f].derived and f not in out:
                out.append(f)
    return out


def _known(report: Report) -> set[str]:
    return set(report.input) | {k for k, v in report.derived.items() if not isinstance(v, list)}


def question_order(report: Report, rules: RuleSet, exclude: Iterable[str] = ()) -> list[Question]:
    """The follow-up questions in the order the form asks them: next_questions' score (the batch's
    too), each derived fact replaced by what decides it (it is never asked itself)."""
    facts = rules.facts
    exclude = set(exclude)
    known = _known(report)
    out: dict[str, Question] = {}
    for q in next_questions(report, rules, exclude=exclude):
        for name in askable([q.fact], facts, known):
            if name in exclude or name in FIRST_QUESTIONS:
                continue
            if name in out:
                prev = out[name]
                out[name] = Question(name, prev.spec, prev.score + q.score, prev.rules + q.rules,
                                     prev.amount_rules + q.amount_rules, prev.money + q.money)
            else:
                out[name] = q if name == q.fact else Question(name, facts[name], q.score, q.rules, q.amount_rules,
                                                              q.money)
    return list(out.values())


# ---------------------------------------------------------------- the view


def build_view(report: Report, rules: RuleSet, mode: str = "now", questions: list[Question] | None = None,
               skipped: Iterable[str] = ()) -> OwnerView:
    """The owner's view of `report` for one of the two questions (MODES)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    now = mode == "now"
    rank = rules.superseded_by  # later measures narrow earlier ones: those come after
    facts = rules.facts
    line_of, engine_of = benefit_groups(rules)
    hidden = 0
    by_line: dict[int, list[RuleResult]] = {}
    ineligible: list[RuleResult] = []
    for r in report.results:
        if r.status == "ineligible":
            if not_here(r):
                hidden += 1
            else:
                ineligible.append(r)
            continue
        by_line.setdefault(line_of.get(r.rule_id, -1 - len(by_line)), []).append(r)

    sections: dict[str, list[Line]] = {s: [] for s in (NOW_SECTIONS if now else ("all",))}
    services: list[Line] = []
    closed: list[Line] = []
    maybe_lines: list[Line] = []
    services_maybe = 0
    closed_maybe = 0
    for members in by_line.values():
        members.sort(key=lambda r: _order(r, rank, now))
        eligible = [r for r in members if r.status == "eligible"]
        if now:
            live = [r for r in eligible if r.window in NOW_SECTIONS]
            if live:
                counted = _counted(live, engine_of, rank, open_only=True)
                head = _head(counted, live, rank, now)
                line = Line(head, [head] + [r for r in members if r is not head], counted, head.window)
            elif eligible:
                closed.append(Line(eligible[0], members, [], "closed"))
                continue
            else:
                visible = [r for r in members if r.window in NOW_SECTIONS]
                if not visible:  # undetermined and closed: not a question for "now", only counted
                    closed_maybe += 1
                    continue
                head = visible[0]
                line = Line(head, [head] + [r for r in members if r is not head], [], "maybe")
        else:
            if eligible:
                counted = [r for r in eligible if r.counted_in_total]
                head = _head(counted, eligible, rank, now)
                line = Line(head, [head] + [r for r in members if r is not head], counted, "all")
            else:
                line = Line(members[0], members, [], "maybe")
        if line.section == "maybe":
            if line.money:
                maybe_lines.append(line)
            else:
                services_maybe += 1
        elif not line.money:
            line.section = "service"
            services.append(line)
        else:
            sections[line.section].append(line)

    def amount_key(ln: Line):
        a = ln.amount
        return (ln.per != "once", a is None, -(a or 0), ln.head.title.zh)

    for lines in sections.values():
        lines.sort(key=amount_key)
    services.sort(key=lambda ln: (WINDOW_PREF[ln.head.window], ln.head.title.zh))
    closed.sort(key=amount_key)

    if questions is None:
        questions = question_order(report, rules, exclude=skipped)
    order = _question_sequence(report, facts, questions)
    maybe = _group_maybes(maybe_lines, order, facts, _known(report), questions)
    ineligible.sort(key=lambda r: (WINDOW_PREF[r.window], -(r.amount or 0), r.title.zh))
    return OwnerView(mode, report.as_of, [(s, ls) for s, ls in sections.items()], services, services_maybe, maybe,
                     closed, ineligible, hidden, questions, closed_maybe, facts)


def _counted(members: list[RuleResult], engine_of: dict[str, int], rank: dict[str, list[str]],
             open_only: bool) -> list[RuleResult]:
    """Per engine counted-once group, the member whose money is added up: the engine's own choice
    (`counted_in_total`) for the whole period, its choice among the open ones for "now"."""
    if not open_only:
        return [r for r in members if r.counted_in_total]
    groups: dict[int, list[RuleResult]] = {}
    for r in members:
        if r.in_effect and counts_toward_total(r):
            groups.setdefault(engine_of.get(r.rule_id, -1), []).append(r)
    return [b for g in groups.values() if (b := _best(g, rank)) is not None]


def _head(counted: list[RuleResult], candidates: list[RuleResult], rank: dict[str, list[str]], now: bool) -> RuleResult:
    if counted:
        return min(counted, key=lambda r: _order(r, rank, now))
    return min(candidates, key=lambda r: _order(r, rank, now))


def _question_sequence(report: Report, facts: FactDictionary, questions: list[Question]) -> list[str]:
    """Unanswered first questions (the form's top), then the follow-ups in the form's order."""
    known = _known(report)
    first = [f for f in FIRST_QUESTIONS if f not in known]
    return first + [q.fact for q in questions if q.fact not in first]


def _group_maybes(lines: list[Line], order: list[str], facts: FactDictionary, known: set[str],
                  questions: list[Question]) -> list[MaybeGroup]:
    pos = {f: i for i, f in enumerate(order)}
    qs = {q.fact: q for q in questions}
    groups: dict[str | None, list[Line]] = {}
    for ln in lines:
        missing: list[str] = []
        for r in ln.members:
            if r.status == "undetermined":
                missing += [m for m in r.missing if m not in missing]
        names = [n for n in askable(missing, facts, known) if n in pos]
        fact = min(names, key=pos.__getitem__) if names else None
        groups.setdefault(fact, []).append(ln)
    out = []
    for fact in sorted(groups, key=lambda f: pos.get(f, len(pos)) if f is not None else len(pos) + 1):
        ls = sorted(groups[fact], key=lambda ln: (-(ln.head.amount or 0) if ln.per == "once" else 0, ln.head.title.zh))
        q = qs.get(fact) if fact is not None else None
        if fact is not None and q is None:
            q = Question(fact, facts[fact], first=True)
        out.append(MaybeGroup(fact, q, ls))
    return out
