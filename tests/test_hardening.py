"""Any mapping a user or a file can produce either evaluates or is rejected naming the field."""

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility import CompanyValidationError, Report, default_facts, evaluate

FACT_NAMES = sorted(default_facts())
HEADERS = FACT_NAMES + [s.zh for s in default_facts().values()][:20]

weird_text = st.sampled_from(["", " ", "不清楚", "１２３", "1,234.5", "12%", "0.12", "-5", "1e400", "NaN", "inf",
                              "是", "否", "yes", "2020-02-30", "餐饮业", "河北省", "１２．５％", "12万", "—", "\x00"])
values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True), weird_text, st.text(max_size=8),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
keys = st.one_of(st.sampled_from(HEADERS), st.text(max_size=12))

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.dictionaries(keys, values, max_size=8))
def test_arbitrary_mappings_evaluate_or_name_the_field(mapping):
    try:
        report = evaluate(mapping, on="2020-06-01")
    except CompanyValidationError as e:
        assert e.issues
        given = set(mapping) | set(FACT_NAMES)
        for issue in e.issues:
            assert issue.where in given or issue.where == "(company)", issue
            assert issue.message
        return
    assert isinstance(report, Report)
    json.dumps(report.as_dict())  # the report is always serialisable


@SETTINGS
@given(st.sampled_from([n for n, s in default_facts().items() if s.type in ("money", "int", "number")]),
       st.one_of(st.just(float("nan")), st.just(float("inf")), st.just(-1), st.just(10**30), st.just("1e999")))
def test_impossible_numbers_are_rejected_by_name(name, raw):
    if isinstance(raw, float) and math.isnan(raw):
        # an empty spreadsheet cell arrives as NaN: it is unknown, not an error
        assert evaluate({name: raw}, on="2020-06-01").input == {}
        return
    try:
        evaluate({name: raw}, on="2020-06-01")
    except CompanyValidationError as e:
        assert [i.where for i in e.issues] == [name]
    else:
        assert raw == -1 and default_facts()[name].min is None  # only a fact with no lower bound takes -1


def test_suspicious_but_possible_values_are_flagged():
    report = evaluate({"employees": 10, "insured_employees": 12, "revenue_change_pct": "-0.6"}, on="2020-06-01")
    assert any(w.startswith("insured_employees:") for w in report.warnings)
    assert any(w.startswith("revenue_change_pct:") for w in report.warnings)


def test_impossible_combination_is_rejected():
    try:
        evaluate({"insured_employees": 10, "unemployment_claimants": 11})
    except CompanyValidationError as e:
        assert [i.where for i in e.issues] == ["unemployment_claimants"]
    else:
        raise AssertionError("claimants above insured staff must be rejected")


def test_revenue_change_below_minus_100_is_rejected():
    try:
        evaluate({"revenue_change_pct": -120})
    except CompanyValidationError as e:
        assert [i.where for i in e.issues] == ["revenue_change_pct"]
    else:
        raise AssertionError


def test_astronomical_figures_are_rejected_not_crashed():
    company = {"province": "河北省", "city": "石家庄市", "entity_type": "enterprise", "industry": "manufacturing",
               "insured_employees": 10**15 - 1, "unemployment_claimants": 0,
               "city_avg_monthly_unemployment_benefit": 10**15 - 1, "unemployment_insurance_paid": 10**15 - 1}
    import pytest

    with pytest.raises(CompanyValidationError) as e:
        evaluate(company, on="2020-06-01")
    assert "too large" in e.value.issues[0].message


# ---------------------------------------------------------------- the xlsx pre-check's widest column


_REF_PIECES = st.sampled_from([b'r="', b'<c ', b'">', b"A", b"Z", b"AB", b"XFD", b"ZZZZZZZZZ", b"QQ", b"1", b"42",
                               b"r", b"=", b'"', b" ", b"<v>7</v></c>", b"</row>", b"'", b"a"])


@SETTINGS
@given(st.lists(_REF_PIECES, max_size=40).map(b"".join))
def test_widest_reference_is_the_regex_maximum(work):
    """The numpy scan of the quick pass gives the widest column the regexes would (r="XX..9", 2+ letters)."""
    import re

    from eligibility.xlsx_guard import col_number, widest_reference

    refs = re.findall(rb'r="([A-Z]{2,})\d', work)
    want = 0
    if refs:
        top = max(refs, key=lambda b: (len(b), b))
        want = col_number(top) if len(top) <= 8 else 26 ** 8 + len(top)
    assert widest_reference(work) == want
