"""The condition language: parsing errors at a path, and three-valued (Kleene) evaluation."""

from decimal import Decimal

import pytest

from eligibility import default_facts
from eligibility.conditions import OPERATORS, Possible, evaluate_node, parse_condition


def parse(raw):
    issues = []
    node = parse_condition(raw, default_facts(), "$.when", issues)
    return node, issues


def ev(raw, values, needs=None):
    node, issues = parse(raw)
    assert not issues, issues
    return evaluate_node(node, values, needs or {})


def test_comparison_true_false_unknown():
    cond = {"fact": "employees", "lt": 10}
    assert ev(cond, {"employees": 5}).outcome is True
    assert ev(cond, {"employees": 10}).outcome is False
    t = ev(cond, {})
    assert t.outcome is None and t.missing == ("employees",)


def test_all_is_false_when_one_child_is_false_even_with_unknowns():
    cond = {"all": [{"fact": "employees", "lt": 10}, {"fact": "affected_by_epidemic", "eq": True}]}
    t = ev(cond, {"employees": 50})
    assert t.outcome is False and t.missing == ()
    t = ev(cond, {"employees": 5})
    assert t.outcome is None and t.missing == ("affected_by_epidemic",)


def test_any_is_true_when_one_child_is_true_even_with_unknowns():
    cond = {"any": [{"fact": "employees", "lt": 10}, {"fact": "affected_by_epidemic", "eq": True}]}
    assert ev(cond, {"affected_by_epidemic": True}).outcome is True
    assert ev(cond, {"employees": 50}).outcome is None


def test_not_keeps_unknown():
    cond = {"not": {"fact": "zombie_enterprise", "eq": True}}
    assert ev(cond, {"zombie_enterprise": False}).outcome is True
    assert ev(cond, {}).outcome is None


def test_possible_values_decide_when_all_agree():
    cond = {"fact": "size", "in": ["small", "micro"]}
    assert ev(cond, {"size": Possible(frozenset({"small", "micro"}))}).outcome is True
    t = ev(cond, {"size": Possible(frozenset({"small", "medium"}))}, {"size": ("revenue",)})
    assert t.outcome is None and t.missing == ("revenue",)


def test_derived_unknown_reports_its_inputs():
    t = ev({"fact": "layoff_rate", "le": 5.5}, {}, {"layoff_rate": ("unemployment_claimants",)})
    assert t.missing == ("unemployment_claimants",)


@pytest.mark.parametrize("raw,fragment", [
    ({"fact": "layof_rate", "le": 5}, "did you mean 'layoff_rate'"),
    ({"fact": "layoff_rate", "lte": 5}, "did you mean 'le'"),
    ({"fact": "industry", "eq": "caterin"}, "did you mean 'catering'"),
    ({"fact": "employees", "eq": "ten"}, "does not fit fact 'employees'"),
    ({"fact": "industry", "lt": "retail"}, "needs a number or date"),
    ({"all": []}, "non-empty list"),
    ({"al": [{"fact": "employees", "lt": 3}]}, "did you mean 'all'"),
    ({"fact": "industry", "eq": ["retail"]}, "use 'in'"),
])
def test_parse_errors_name_the_path_and_suggest(raw, fragment):
    node, issues = parse(raw)
    assert issues
    assert any(fragment in i.message for i in issues), issues
    assert all(i.where.startswith("$.when") for i in issues)


def test_operator_table_is_the_only_definition():
    assert set(OPERATORS) == {"eq", "ne", "lt", "le", "gt", "ge", "in", "not_in"}
    assert OPERATORS["le"].test(Decimal("5.5"), Decimal("5.5"))
    assert not OPERATORS["not_in"].test("a", ("a", "b"))
