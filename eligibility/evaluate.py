"""One company -> a report: every rule's three-valued verdict, amount and trace.

Words are not made here (see explain.py); this module only decides and records why.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any, Mapping


from . import __version__, amounts
from .conditions import Possible, Trace, decider, evaluate_node, place_fails
from .derived import derive
from .facts import consistency
from .errors import ArgumentError, CompanyValidationError, Issue
from .loading import CompiledAmount, CompiledRule, RuleSet, load_rules
from .models import PeriodOut, Report, RuleResult, SourceRef, company_model
from .money import counted_member, counts_toward_total
from .validity import as_date, end_is_estimate, window

ZERO = Decimal(0)


_DEFAULT_LOCK = threading.Lock()


def default_rules() -> RuleSet:
    """The bundled rules, loaded and validated once per process (threads asking at once wait for the
    one load: the app's server warms the catalogue up in a thread while the first visitor arrives)."""
    with _DEFAULT_LOCK:
        return _default_rules()


def resolve_rules(rules: RuleSet | None) -> RuleSet:
    """The rule set a caller passed, or the bundled one."""
    return default_rules() if rules is None else rules


@lru_cache(maxsize=1)
def _default_rules() -> RuleSet:
    return load_rules()


def to_company(company: Any) -> Any:
    """A Company from a Company or a mapping; bad values raise CompanyValidationError naming each field."""
    if isinstance(company, company_model()):
        comp = company
    elif not isinstance(company, Mapping):
        raise CompanyValidationError([Issue("", f"expected a mapping of facts, got {type(company).__name__}")])
    else:
        comp = _validate(company)
    errors, _ = consistency(comp.known())
    if errors:
        raise CompanyValidationError(errors)
    return comp


def _validate(company: Mapping) -> Any:
    """Company(...) itself turns pydantic's errors into CompanyValidationError naming each field."""
    return company_model().model_validate(dict(company))


def _reads(amount: CompiledAmount) -> tuple[tuple[str, ...], ...]:
    """Per case, the names its formula, cap and floor read (first appearance first), walked once per
    amount and kept on it: walking the formula trees per company was a tenth of evaluate()."""
    got = amount.__dict__.get("_reads")
    if got is None:
        extra = [n for e in (amount.cap, amount.floor) if e is not None for n in amounts.names(e)]
        got = amount.__dict__["_reads"] = tuple(tuple(dict.fromkeys([*amounts.names(expr), *extra]))
                                               for _, expr in amount.cases)
    return got


def compute_amount(amount: CompiledAmount, values: dict[str, Any], needs: dict[str, tuple[str, ...]]
                   ) -> tuple[Decimal | None, amounts.Expr | None, list[str], list[Trace]]:
    """(value in 元 to the fen, the formula used, facts still needed, case traces)."""
    chosen: amounts.Expr | None = None
    reads: tuple[str, ...] = ()
    missing: dict[str, None] = {}
    traces: list[Trace] = []
    for (cond, expr), names in zip(amount.cases, _reads(amount)):
        if cond is None:
            chosen, reads = expr, names
            break
        t = evaluate_node(cond, values, needs)
        traces.append(t)
        if t.outcome is True:
            chosen, reads = expr, names
            break
        if t.outcome is None:
            missing.update(dict.fromkeys(t.missing))
            break
    if chosen is None:
        return None, None, list(missing), traces
    # the names the formulas read, params before facts; a value known only up to a set is not a number
    params = amount.params
    env: dict[str, Any] = {}
    for n in reads:
        v = params[n] if n in params else values.get(n)
        if v is None or isinstance(v, Possible):
            missing.update(dict.fromkeys(needs.get(n, (n,))))
        else:
            env[n] = v
    if missing:
        return None, chosen, list(missing), traces
    value = amounts.compute(chosen, env)
    if value is None:
        return None, chosen, [], traces
    if amount.cap is not None:
        cap = amounts.compute(amount.cap, env)
        if cap is not None:
            value = min(value, cap)
    if amount.floor is not None:
        floor = amounts.compute(amount.floor, env)
        if floor is not None:
            value = max(value, floor)
    return amounts.to_cents(max(value, ZERO)), chosen, [], traces


def _period_out(rule: CompiledRule) -> PeriodOut:
    p = rule.spec.period
    return PeriodOut(start=p.start, end=p.end, end_kind=p.end_kind, end_event=p.end_event,
                     end_estimate=end_is_estimate(p), end_basis=p.end_basis, deadline=p.deadline, text=p.text)


_STATUS = {True: "eligible", False: "ineligible", None: "undetermined"}


def evaluate_rule(rule: CompiledRule, values: dict[str, Any], needs: dict[str, tuple[str, ...]],
                  on: dt.date, labeller, superseded_by: list[str] | None = None) -> RuleResult:
    condition = rule.condition
    outcome, missing = decider(condition)(values, needs)  # the trace is built when asked for (reasons)
    kept = rule.__dict__  # what does not depend on the company, kept on the rule: the window on the last
    hit = kept.get("_window_on")  # date asked for (evaluate() asks every rule for one date) and the template
    if hit is None or hit[0] != on:
        hit = kept["_window_on"] = (on, *window(rule, on))
    _, win, in_effect = hit
    amount_value = formula = filled = expr = None
    amount_missing: list[str] = []
    amount_traces: list[Trace] = []
    amount = rule.amount
    if amount is not None and outcome is not False:
        try:
            amount_value, expr, amount_missing, amount_traces = compute_amount(amount, values, needs)
        except ArithmeticError:  # beyond 28 significant digits: the figures given cannot be real
            used = [n for n in amount.names if n not in amount.params]
            raise CompanyValidationError([Issue(n, "数值过大，金额无法计算 / too large to compute an amount")
                                          for n in used[:1]]) from None
        if expr is not None:
            formula = _formula_text(rule, expr, labeller)
            if amount_value is not None:
                filled = amounts.render(expr, labeller.formula_value(values, amount.param_text))
    # the template with the company's verdict: what model_copy(update=...) and the private-attribute
    # assignments do, in one step (pydantic's copy and setattr were a quarter of evaluate()'s time).
    # Not validated, like model_copy: the values are the engine's own.
    template, fields_set = kept.get("_result_template") or _template(rule)
    fields = template.__dict__.copy()
    fields["status"] = _STATUS[outcome]
    fields["in_effect"] = in_effect
    fields["window"] = win
    fields["amount"] = amount_value
    fields["amount_formula"] = formula
    fields["amount_filled"] = filled
    fields["amount_missing"] = amount_missing
    fields["missing"] = list(missing)
    fields["excludes"] = list(fields["excludes"])
    fields["superseded_by"] = list(superseded_by) if superseded_by else []
    new = _new_result(RuleResult)
    _set(new, "__dict__", fields)
    _set(new, "__pydantic_fields_set__", set(fields_set))
    _set(new, "__pydantic_extra__", None)
    _set(new, "__pydantic_private__", {
        "_trace": partial(evaluate_node, condition, values, needs), "_amount_trace": amount_traces,
        "_amount_expr": expr, "_facts": labeller.facts,
        "_place": partial(place_fails, condition, values, needs) if outcome is False else None})
    return new


_new_result = RuleResult.__new__
_set = object.__setattr__
# the fields evaluate_rule fills in for the company (the rest are the template's)
_FILLED = frozenset(("status", "in_effect", "window", "amount", "amount_formula", "amount_filled", "amount_missing",
                     "missing", "excludes", "superseded_by"))


def _template(rule: CompiledRule) -> tuple[RuleResult, frozenset[str]]:
    """A rule's result with what does not depend on the company (id, texts, period, source), validated
    once and kept on the rule with the fields set of its copies; evaluate_rule copies it with the
    company's verdict (no validation: the values it fills in are its own)."""
    got = rule.__dict__.get("_result_template")
    if got is None:
        spec, doc = rule.spec, rule.document
        template = RuleResult(
            rule_id=spec.id, title=spec.title, status="ineligible", in_effect=False, window="open",
            kind=spec.kind, strength=spec.strength, benefit=spec.benefit, agency=spec.agency,
            jurisdiction=rule.jurisdiction_text,
            amount=None, amount_formula=None, amount_filled=None, amount_missing=[],
            amount_kind=spec.amount.kind if spec.amount else None,
            per=spec.amount.per if spec.amount else "once",
            period=_period_out(rule),
            source=SourceRef(seed=rule.seed, document=doc.title, number=doc.number, issuer=doc.issuer, date=doc.date,
                             quote=" …… ".join(spec.quotes)),
            missing=[], excludes=list(spec.excludes), tops_up=spec.tops_up, note=spec.note,
            supersedes=list(spec.supersedes),
        )
        got = rule.__dict__["_result_template"] = (template, frozenset(template.__pydantic_fields_set__ | _FILLED))
    return got


def _formula_text(rule: CompiledRule, expr: amounts.Expr, labeller) -> str:
    """The formula in words: it depends on the rule, the case chosen and the labeller's language only."""
    cache = rule.__dict__.setdefault("_formula_texts", {})
    key = (id(expr), labeller.lang)
    hit = cache.get(key)
    if hit is None or hit[0] is not labeller.facts:
        hit = cache[key] = (labeller.facts, amounts.render(expr, labeller.formula_name(rule.amount.param_text)))
    return hit[1]


def _count_once(results: list[RuleResult], rules: RuleSet) -> tuple[Decimal, Decimal, Decimal]:
    """Totals counting each benefit once. Within a counted-once group (`excludes`, `supersedes`): a
    measure that a paying later measure supersedes is out (the later document narrowed it); of the
    rest, the largest amount, then exact before up_to, then the smaller id.

    Marks `counted_in_total`; returns (definite total, definite total over rules in effect on the
    date, "up to" total). Exact amounts are definite; caps (up_to) and estimates are only "up to".
    Relief and services carry no money to add up.
    """
    paying = {r.rule_id: r for r in results if counts_toward_total(r)}
    grouped = {i for g in rules.exclusion_groups for i in g}
    groups = [[paying[i] for i in g if i in paying] for g in rules.exclusion_groups]
    groups += [[r] for i, r in paying.items() if i not in grouped]
    superseders = rules.superseded_by

    def best(members: list[RuleResult]) -> RuleResult | None:
        return counted_member(members, superseders)

    total = total_open = up_to = ZERO
    for members in groups:
        if not members:  # a counted-once group none of whose members pays
            continue
        top = best(members)
        if top is not None:
            top.counted_in_total = True
            if top.amount_kind == "exact":
                total += top.amount
            else:
                up_to += top.amount
        top_open = best([r for r in members if r.in_effect])
        if top_open is not None and top_open.amount_kind == "exact":
            total_open += top_open.amount
    return total, total_open, up_to


def evaluate(company: Any, on: dt.date | str | None = None, rules: RuleSet | None = None) -> Report:
    """Evaluate one company (a Company or a mapping of facts) against every rule on date `on`."""
    rules = default_rules() if rules is None else rules
    if not isinstance(rules, RuleSet):
        raise ArgumentError([Issue("rules", f"应为规则集 / expected a RuleSet (load_rules()), got {type(rules).__name__}")])
    on = as_date(on)
    given, warnings, values, needs, how, labeller = prepare(company, rules)
    sup = rules.superseded_by
    results = [evaluate_rule(r, values, needs, on, labeller, sup.get(r.spec.id)) for r in rules.rules]
    return assemble_report(on, given, values, how, results, rules, warnings)


def prepare(company: Any, rules: RuleSet) -> tuple:
    """A company's facts made ready for the rules (one place for evaluate() and the app's incremental
    re-evaluation): (given, warnings, values incl. derived, needs, how derived, labeller)."""
    given = to_company(company).known()
    _, warnings = consistency(given, rules.facts)
    values, needs, how = derive(given, rules.facts)
    return given, warnings, values, needs, how, amounts.Labeller(rules.facts)


def assemble_report(on: dt.date, given: dict[str, Any], values: dict[str, Any], how: dict[str, str],
                    results: list[RuleResult], rules: RuleSet, warnings: list) -> Report:
    """The report around a company's results: totals counted once, derived facts, the input as given
    (one place for evaluate() and the app's incremental re-evaluation)."""
    total, total_open, up_to = _count_once(results, rules)
    derived = {}
    for name in how:
        v = values.get(name)
        derived[name] = sorted(v.values) if isinstance(v, Possible) else v
    for name, v in values.items():
        if isinstance(v, Possible):
            derived[name] = sorted(v.values)
    report = Report(as_of=on, derived=derived, results=results, total_amount=total, total_in_effect=total_open,
                    total_up_to=up_to, rules_version=rules.version, tool_version=__version__,
                    warnings=[str(w) for w in warnings],
                    input={k: (str(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, dt.date) else v)
                           for k, v in given.items()})
    report._facts = rules.facts
    return report
