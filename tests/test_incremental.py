"""The app's incremental evaluation gives exactly evaluate()'s report, answer after answer."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility import default_facts, evaluate
from eligibility.errors import CompanyValidationError
from eligibility.incremental import Evaluator
from tests.strategies import askable_facts, value_strategy

CATERER = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
           "industry": "catering", "employees": 40, "revenue": 3_000_000}


def same(a, b) -> None:
    assert a.model_dump() == b.model_dump()
    assert [r.trace is not None for r in a.results] == [r.trace is not None for r in b.results]


def test_a_follow_up_answer_re_evaluates_only_the_rules_that_read_it(rules):
    ev = Evaluator(rules)
    on = dt.date(2020, 3, 15)
    same(ev.evaluate(CATERER, on), evaluate(CATERER, on=on, rules=rules))
    assert ev.reevaluated == len(rules)
    step = {**CATERER, "monthly_rent": 10_000}  # also decides renting premises (derivations.yaml)
    same(ev.evaluate(step, on), evaluate(step, on=on, rules=rules))
    assert 0 < ev.reevaluated < len(rules) // 4
    step = {**step, "employees": 400}  # changes the size: every rule reading the size again
    same(ev.evaluate(step, on), evaluate(step, on=on, rules=rules))
    same(ev.evaluate(step, dt.date(2026, 12, 3)), evaluate(step, on=dt.date(2026, 12, 3), rules=rules))
    assert ev.reevaluated == len(rules)  # another day: everything again


ANSWERED = ["province", "city", "county", "entity_type", "industry", "employees", "revenue", "total_assets",
            "monthly_rent", "rents_state_owned_premises", "insured_employees", "unemployment_claimants",
            "unemployment_insurance_paid", "affected_by_epidemic", "annual_taxable_income", "graduate_interns",
            "intern_retention_rate_pct", "local_minimum_wage_monthly", "received_2020_job_retention_refund",
            "job_retention_refund_2020_amount", "city_avg_monthly_unemployment_benefit", "loss_in_2019"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_sequence_of_answers_gives_evaluates_report(rules, data):
    facts = default_facts()
    names = [n for n in ANSWERED if n in askable_facts()]
    ev = Evaluator(rules)
    company = dict(CATERER)
    on = data.draw(st.sampled_from([dt.date(2020, 3, 15), dt.date(2020, 6, 1), dt.date(2026, 12, 3)]))
    for _ in range(data.draw(st.integers(1, 6))):
        name = data.draw(st.sampled_from(names))
        if data.draw(st.booleans()) or name not in company:
            company[name] = data.draw(value_strategy(facts[name]))
        else:
            company.pop(name)  # an answer taken back ("don't know")
        try:
            expected = evaluate(company, on=on, rules=rules)
        except CompanyValidationError:
            with pytest.raises(CompanyValidationError):
                ev.evaluate(company, on)
            company.pop(name, None)
            continue
        same(ev.evaluate(company, on), expected)
