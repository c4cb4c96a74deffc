"""Rules carry their own worked examples; this runs them (for pytest and `eligibility rules lint`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .derived import derive
from .errors import CompanyValidationError, Issue
from .evaluate import evaluate_rule, to_company
from .amounts import Labeller
from .loading import CompiledRule, RuleSet


@dataclass(frozen=True)
class ExampleCase:
    rule: CompiledRule
    index: int

    @property
    def example(self):
        return self.rule.spec.examples[self.index]

    @property
    def name(self) -> str:
        return f"{self.rule.file}::{self.rule.id}::{self.example.name}"


def cases(rules: RuleSet) -> list[ExampleCase]:
    return [ExampleCase(r, i) for r in rules for i in range(len(r.spec.examples))]


def check(case: ExampleCase, rules: RuleSet) -> list[str]:
    """Problems with one example; empty when the engine agrees with the hand-worked answer."""
    ex = case.example
    try:
        company = to_company(ex.facts)
    except CompanyValidationError as e:
        return [f"facts do not validate: {e}"]
    values, needs, _ = derive(company.known(), rules.facts)
    on = ex.as_of or case.rule.spec.period.start
    result = evaluate_rule(case.rule, values, needs, on, Labeller(rules.facts))
    problems = []
    if result.status != ex.expect.status:
        from .explain import reasons

        why = "; ".join(reasons(result, "en", rules.facts)) or "-"
        problems.append(f"status {result.status}, expected {ex.expect.status} ({why})")
    if ex.expect.amount is not None:
        want = Decimal(ex.expect.amount).quantize(Decimal("0.01"))
        if result.amount != want:
            problems.append(f"amount {result.amount}, expected {want}"
                            + (f" (missing {result.amount_missing})" if result.amount_missing else ""))
    for m in ex.expect.missing or ():
        if m not in result.missing and m not in result.amount_missing:
            problems.append(f"{m!r} should be among the missing facts, got {result.missing + result.amount_missing}")
    return problems


def run_all(rules: RuleSet) -> list[Issue]:
    out = []
    for case in cases(rules):
        for p in check(case, rules):
            out.append(Issue(f"{case.rule.file}: rule {case.rule.id} example {case.example.name!r}", p))
    return out
