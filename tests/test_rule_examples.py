"""Every rule's hand-worked examples, one test each: `rules/x.yaml::rule.id::example name`."""

import pytest

from eligibility import default_rules
from eligibility.examples import cases, check

_RULES = default_rules()
_CASES = cases(_RULES)


@pytest.mark.parametrize("case", _CASES, ids=[c.name for c in _CASES])
def test_example(case):
    problems = check(case, _RULES)
    assert not problems, f"{case.name}: " + "; ".join(problems)


def test_every_rule_has_eligible_and_ineligible_examples():
    missing = []
    for r in _RULES:
        statuses = {e.expect.status for e in r.spec.examples}
        if not {"eligible", "ineligible"} <= statuses:
            missing.append(f"{r.file}: {r.id} has {sorted(statuses)}")
    assert not missing, "\n".join(missing)
