"""evaluate() again after one answer changed, re-evaluating only the rules that read what changed.

The questionnaire evaluates the whole catalogue after every answer, and a follow-up answer (the
monthly rent, the staff insured) is read by a handful of rules. `Evaluator.evaluate` gives exactly
the report `evaluate.evaluate` gives (tests/test_incremental.py compares them over random answer
sequences): the facts are validated and derived afresh, the rules whose facts (`CompiledRule.facts`,
derived ones included) are unchanged keep their last result, the others are evaluated by
`evaluate_rule`, and the totals are counted once over all of them by the engine's own counting.

One Evaluator per person: it keeps the last results and hands them on to the next report.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .evaluate import assemble_report, evaluate_rule, prepare
from .loading import RuleSet
from .models import Report, RuleResult
from .validity import as_date


class Evaluator:
    """evaluate(), remembering the last run to redo only what an answer changes."""

    def __init__(self, rules: RuleSet):
        self.rules = rules
        self._last: tuple[dt.date, dict[str, Any], dict[str, tuple[str, ...]], list[RuleResult]] | None = None
        self.reevaluated = 0  # rules evaluated by the last call (for tests and measurements)

    def evaluate(self, company: Any, on: dt.date | str | None = None) -> Report:
        rules = self.rules
        on = as_date(on)
        given, warnings, values, needs, how, labeller = prepare(company, rules)
        sup = rules.superseded_by
        last = self._last
        if last is not None and last[0] == on:
            _, old_values, old_needs, old_results = last
            changed = {k for k in set(values) | set(old_values) if not _same(values.get(k), old_values.get(k))}
            changed |= {k for k in set(needs) | set(old_needs) if needs.get(k) != old_needs.get(k)}
            results = []
            for rule, old in zip(rules, old_results):
                if rule.facts & changed:
                    results.append(evaluate_rule(rule, values, needs, on, labeller, sup.get(rule.id)))
                else:
                    old.counted_in_total = False  # counted afresh below
                    results.append(old)
            self.reevaluated = sum(1 for r in rules if r.facts & changed)
        else:
            results = [evaluate_rule(r, values, needs, on, labeller, sup.get(r.id)) for r in rules]
            self.reevaluated = len(results)
        self._last = (on, values, needs, results)
        return assemble_report(on, given, values, how, results, rules, warnings)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
