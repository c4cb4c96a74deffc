"""The fact dictionary parses what people type, and derives what the documents define."""

import datetime as dt
from decimal import Decimal

import pytest

from eligibility import Company, CompanyValidationError, default_facts
from eligibility.conditions import Possible
from eligibility.derived import derive
from eligibility.evaluate import to_company
from eligibility.facts import FactValueError


@pytest.fixture(scope="module")
def facts():
    return default_facts()


@pytest.mark.parametrize("raw,expected", [("是", True), ("否", False), ("yes", True), ("0", False), (True, True),
                                          ("不清楚", None), ("", None)])
def test_bool_words(facts, raw, expected):
    assert facts["affected_by_epidemic"].parse(raw) == expected


@pytest.mark.parametrize("raw,expected", [("1,234.5", Decimal("1234.5")), ("１２３", Decimal(123)),
                                          (" 800元 ", Decimal(800)), (1500, Decimal(1500))])
def test_money_forms(facts, raw, expected):
    assert facts["revenue"].parse(raw) == expected


def test_percent_accepts_sign_and_percent(facts):
    assert facts["revenue_change_pct"].parse("-60%") == Decimal(-60)
    assert facts["revenue_change_pct"].parse("12") == Decimal(12)


@pytest.mark.parametrize("raw", ["abc", "万", "万元", "12万5", "nan", "inf", float("inf"), True, "-5", "1e20"])
def test_bad_money_is_rejected_with_message(facts, raw):
    with pytest.raises(FactValueError) as e:
        facts["revenue"].parse(raw)
    assert "/" in str(e.value)  # zh / en message


def test_int_rejects_fractions(facts):
    with pytest.raises(FactValueError):
        facts["employees"].parse("12.5")


def test_enum_accepts_key_zh_label_and_suggests(facts):
    spec = facts["industry"]
    assert spec.parse("餐饮业") == "catering"
    assert spec.parse("catering") == "catering"
    with pytest.raises(FactValueError) as e:
        spec.parse("caterng")
    assert "catering" in str(e.value)


def test_date_forms():
    from eligibility.facts import FactSpec

    spec = FactSpec(name="d", type="date", zh="日期", en="date", group="status")
    assert spec.parse("2020年3月5日") == dt.date(2020, 3, 5)
    assert spec.parse("2020-03-05") == dt.date(2020, 3, 5)
    with pytest.raises(FactValueError):
        spec.parse("2020-02-30")


def test_company_accepts_chinese_headers_and_keeps_unknown_as_none():
    c = Company.model_validate({"所属行业": "零售业", "从业人员": "12"})
    assert c.industry == "retail" and c.employees == 12
    assert c.revenue is None
    assert c.known() == {"industry": "retail", "employees": 12}


def test_company_errors_name_each_field():
    with pytest.raises(CompanyValidationError) as e:
        to_company({"employees": "many", "revenu": 5, "province": "火星"})
    fields = {i.where for i in e.value.issues}
    assert fields == {"employees", "revenu", "province"}
    assert "revenue" in next(i.message for i in e.value.issues if i.where == "revenu")


# 工信部联企业〔2011〕300号, worked by hand from the standard's text
@pytest.mark.parametrize("facts_, size", [
    ({"industry": "manufacturing", "employees": 1000, "revenue": 400_000_000}, "large"),
    ({"industry": "manufacturing", "employees": 999, "revenue": 500_000_000}, "medium"),  # 或: either below
    ({"industry": "manufacturing", "employees": 300, "revenue": 20_000_000}, "medium"),
    ({"industry": "manufacturing", "employees": 300, "revenue": 19_999_999}, "small"),
    ({"industry": "manufacturing", "employees": 19, "revenue": 50_000_000}, "micro"),
    ({"industry": "retail", "employees": 9, "revenue": 5_000_000}, "micro"),
    ({"industry": "retail", "employees": 50, "revenue": 5_000_000}, "medium"),
    ({"industry": "catering", "employees": 10, "revenue": 1_000_000}, "small"),
    ({"industry": "construction", "revenue": 60_000_000, "total_assets": 50_000_000}, "medium"),
    ({"industry": "real_estate_development", "revenue": 5_000_000, "total_assets": 10_000_000}, "micro"),
    ({"industry": "leasing_business_services", "employees": 150, "total_assets": 90_000_000}, "medium"),
    ({"industry": "elderly_care", "employees": 9}, "micro"),
    ({"industry": "elderly_care", "employees": 300}, "large"),
    ({"industry": "wholesale", "employees": 4}, "micro"),  # 5人以下 decides alone
])
def test_size_per_2011_standard(facts_, size):
    values, needs, how = derive(facts_)
    assert values["size"] == size
    assert "工信部联企业〔2011〕300号" in how["size"]


def test_size_partially_known_is_a_set_naming_the_missing_input():
    values, needs, _ = derive({"industry": "catering", "employees": 50})
    assert values["size"] == Possible(frozenset({"small", "micro"}))
    assert needs["size"] == ("revenue",)


def test_declared_size_wins():
    values, _, how = derive({"industry": "manufacturing", "employees": 5000, "revenue": 10**10, "size": "small"})
    assert values["size"] == "small"


def test_layoff_rate_is_claimants_over_insured():
    values, _, how = derive({"unemployment_claimants": 3, "insured_employees": 40})
    assert values["layoff_rate"] == Decimal("7.5")
    assert "领取失业保险金人数" in how["layoff_rate"]


def test_layoff_rate_unknown_names_its_inputs():
    _, needs, _ = derive({"insured_employees": 40})
    assert needs["layoff_rate"] == ("unemployment_claimants",)


def test_insured_decline():
    values, _, _ = derive({"insured_employees": 300, "insured_employees_at_application": 140})
    assert values["insured_decline_pct"] > 50


def test_enum_labels_match_with_full_width_brackets(facts):
    assert facts["industry"].parse("住宿业（宾馆、酒店）") == "accommodation"
    assert facts["entity_type"].parse("社会服务机构（民办非企业单位）") == "social_service_agency"


def test_an_unquoted_comma_in_an_option_label_fails_at_load(tmp_path):
    """YAML reads {zh: 工业, en: Industry (mining, manufacturing)} as three keys: the dictionary refuses it."""
    from eligibility.errors import RuleLoadError
    from eligibility.facts import load_fact_dictionary

    path = tmp_path / "facts.yaml"
    path.write_text("industry:\n  type: enum\n  zh: 行业\n  en: Industry\n  group: basics\n"
                    "  values:\n    manufacturing: {zh: 工业, en: Industry (mining, manufacturing)}\n", "utf-8")
    with pytest.raises(RuleLoadError) as e:
        load_fact_dictionary(path)
    assert "industry.values.manufacturing" in str(e.value) and "quote" in str(e.value)


def test_every_bundled_option_has_its_whole_english_label(facts):
    assert facts["industry"].value_label("manufacturing", "en") == "Industry (mining, manufacturing, utilities)"
