"""Unknown is not false: a verdict reached with facts unknown holds whatever those facts turn out to be."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility import default_rules, evaluate
from strategies import companies, full_company

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(partial=companies(), completion=full_company())
def test_decided_verdicts_survive_learning_the_unknown_facts(partial, completion):
    rules = default_rules()
    before = evaluate(partial, on="2020-06-01", rules=rules)
    after = evaluate({**completion, **partial}, on="2020-06-01", rules=rules)
    for b, a in zip(before.results, after.results):
        if b.status != "undetermined":
            assert a.status == b.status, (b.rule_id, b.status, a.status)
        if b.amount is not None and b.status == "eligible":
            assert a.amount == b.amount, (b.rule_id, b.amount, a.amount)


@SETTINGS
@given(company=full_company())
def test_a_fully_known_company_is_never_undetermined(company):
    report = evaluate(company, on="2020-06-01")
    undetermined = [r.rule_id for r in report.results if r.status == "undetermined"]
    assert not undetermined


@SETTINGS
@given(partial=companies())
def test_undetermined_rules_name_the_facts_that_would_decide_them(partial):
    report = evaluate(partial, on="2020-06-01")
    for r in report.results:
        if r.status == "undetermined":
            assert r.missing, r.rule_id
            assert not set(r.missing) & set(partial), (r.rule_id, r.missing)


@SETTINGS
@given(partial=companies(), extra=st.data())
def test_total_counts_each_benefit_once(partial, extra):
    rules = default_rules()
    report = evaluate(partial, on="2020-06-01", rules=rules)
    counted = {r.rule_id for r in report.results if r.counted_in_total}
    for group in rules.exclusion_groups:
        assert len(counted & group) <= 1, group
    assert report.total_amount == sum(r.amount for r in report.results if r.counted_in_total)


@SETTINGS
@given(partial=companies())
def test_the_verdict_without_the_trace_is_the_traced_verdict(partial):
    """evaluate() decides with conditions.decide (short-circuits, no tree) and builds each rule's trace
    only when asked for: the trace, built later, holds the same outcome and missing facts."""
    from eligibility.conditions import decide, evaluate_node
    from eligibility.derived import derive
    from eligibility.evaluate import to_company

    rules = default_rules()
    report = evaluate(partial, on="2020-06-01", rules=rules)
    values, needs, _ = derive(to_company(partial).known())
    for rule, r in zip(rules, report.results):
        eager = evaluate_node(rule.condition, values, needs)
        assert decide(rule.condition, values, needs) == (eager.outcome, eager.missing)
        assert r.trace == eager and r.missing == list(eager.missing)


@SETTINGS
@given(partial=companies())
def test_out_because_of_the_place_without_the_trace_is_read_from_the_trace(partial):
    """RuleResult.outside_jurisdiction (what the app hides as "not where you are") is decided from the
    place comparisons alone: the same as finding a jurisdiction leaf among the trace's deciding leaves."""
    from eligibility.conditions import Compare, deciding

    for r in evaluate(partial, on="2020-06-01", rules=default_rules()).results:
        fast = r.outside_jurisdiction
        traced = r.status == "ineligible" and any(
            isinstance(x.node, Compare) and x.node.origin == "jurisdiction" for x in deciding(r.trace))
        assert fast == traced, r.rule_id
