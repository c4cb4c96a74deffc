"""Time, money kinds and derived facts: the semantics both engines share (validity.py, scoring of totals
in evaluate._count_once and columnar.Program, derivations.yaml).

A small hand-made catalogue (quotes unchecked) makes every expected value workable by hand; the
bundled catalogue is checked for what must hold of it on a date.
"""

import datetime as dt
import textwrap
from decimal import Decimal

import polars as pl
import pytest

from eligibility import evaluate, load_rules
from eligibility.batch import evaluate_frame
from eligibility.errors import ArgumentError, RuleLoadError
from eligibility.validity import as_date, events, window

HEAD = """
seed: 003_d2efa32a57ff7dc0.txt
documents:
  doc: {title: 测试文件, number: 测试〔2020〕1号, date: 2020-01-01}
rules:
"""


def rule(rid: str, period: str, amount: str = "", extra: str = "", kind: str = "money", when: str = "{fact: foreign_trade, eq: true}") -> str:
    return textwrap.indent(textwrap.dedent(f"""
        - id: {rid}
          title: {{zh: 标题{rid[-1]}, en: Title {rid[-1]}}}
          document: doc
          quote: 对外贸企业给予支持措施
          jurisdiction: {{province: 河北省}}
          agency: {{zh: 某局, en: Bureau}}
          kind: {kind}
          strength: entitled
          benefit: {{zh: 支持, en: support}}
          period: {period}
          when: {when}
          {amount}
          {extra}
          examples:
            - {{name: ok, facts: {{province: 河北省, foreign_trade: true}}, expect: {{status: eligible}}}}
        """), "  ")


def load(tmp_path, *rules_yaml: str):
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "toy.yaml").write_text(HEAD + "".join(rules_yaml), "utf-8")
    return load_rules(folder, check_quotes=False)


ON_2026 = dt.date(2026, 12, 2)


# ---------------------------------------------------------------- windows


def test_each_end_kind_gives_its_window(tmp_path):
    rules = load(
        tmp_path,
        rule("t.stated", "{start: 2020-02-01, end: 2020-06-30, end_kind: stated}"),
        rule("t.derived", "{start: 2020-03-08, end: 2020-05-31, end_kind: derived, end_basis: 3月初至5月底}"),
        rule("t.event", "{start: 2020-02-01, end_kind: event, end_event: hebei_level1_lowered, end_after_days: 60, "
                        "end_basis: 一级响应解除后60日内}"),
        rule("t.unknown", "{start: 2020-02-01, end_kind: not_stated}"),
        rule("t.deadline", "{start: 2020-05-19, end: 2020-06-30, deadline: 2020-12-31, end_kind: stated}"),
    )
    by = {r.id: r for r in rules}
    # the event's end is computed at load from events.yaml: 2020-04-30 + 60 days = 2020-06-29
    assert by["t.event"].spec.period.end == dt.date(2020, 6, 29)
    assert window(by["t.event"], dt.date(2020, 6, 29)) == ("open", True)
    assert window(by["t.event"], dt.date(2020, 6, 30)) == ("closed", False)
    assert window(by["t.derived"], dt.date(2020, 5, 31))[0] == "open"
    assert window(by["t.derived"], dt.date(2020, 6, 1))[0] == "closed"
    assert window(by["t.stated"], dt.date(2020, 1, 31))[0] == "upcoming"
    # no end stated: never "open", whatever the date after the start
    assert window(by["t.unknown"], dt.date(2020, 2, 1)) == ("end_unknown", False)
    assert window(by["t.unknown"], ON_2026) == ("end_unknown", False)
    # a refund whose benefit period ended may still be claimed until its application deadline
    assert window(by["t.deadline"], dt.date(2020, 9, 1)) == ("open", True)
    assert window(by["t.deadline"], dt.date(2021, 1, 1))[0] == "closed"
    for r in rules:
        assert window(r, ON_2026)[0] in ("closed", "end_unknown")


def test_an_estimated_event_end_says_so(tmp_path):
    rules = load(tmp_path, rule("t.lifted", "{start: 2020-02-01, end_kind: event, end_event: national_class_b_management, "
                                            "end_basis: 至疫情解除终止}"))
    report = evaluate({"province": "河北省", "foreign_trade": True}, on="2022-06-01", rules=rules)
    r = report.get("t.lifted")
    assert r.period.end == dt.date(2023, 1, 8) and r.period.end_estimate and r.window == "open"
    assert events()["national_class_b_management"].certainty == "estimate"


@pytest.mark.parametrize("period, where, words", [
    ("{start: 2020-02-01}", "period.end_kind", "Field required"),
    ("{start: 2020-02-01, end_kind: stated}", "period.end", "needs an end date"),
    ("{start: 2020-02-01, end_kind: event, end_event: hebei_level1_lowerd, end_basis: 疫情防控期间}", "period.end_event",
     "did you mean 'hebei_level1_lowered'"),
    ("{start: 2020-02-01, end: 2020-05-01, end_kind: derived}", "period.end_basis", "needs end_basis"),
    ("{start: 2020-02-01, end: 2020-05-01, end_kind: not_stated}", "period.end_kind", "takes no end"),
    ("{start: 2020-02-01, end_kind: event, end_event: hebei_level1_lowered, end: 2020-05-01, end_basis: 疫情防控期间}",
     "period.end", "computed from events.yaml"),
])
def test_a_rule_without_a_clear_end_fails_at_load(tmp_path, period, where, words):
    with pytest.raises(RuleLoadError) as e:
        load(tmp_path, rule("t.bad", period))
    text = str(e.value)
    assert "toy.yaml: $.rules[0]." + where in text and words in text


def test_end_basis_must_be_verbatim_in_the_seed(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "toy.yaml").write_text(HEAD + rule(
        "t.bad", "{start: 2020-02-01, end: 2020-05-31, end_kind: derived, end_basis: 这句话不在原文里面}"), "utf-8")
    with pytest.raises(RuleLoadError) as e:
        load_rules(folder)  # quotes checked: the rule's own quote is not in the seed either
    assert "$.rules[0].period.end_basis: not found verbatim" in str(e.value)


def test_nothing_in_the_bundled_catalogue_is_open_on_2026_12_02(rules):
    """Every seed's measures ended by 2025 or state no end: none may be presented as open."""
    opened = [r.id for r in rules if window(r, ON_2026)[0] == "open"]
    assert opened == []
    for r in rules:
        if r.spec.period.end_kind == "not_stated" and r.spec.period.deadline is None:
            assert window(r, ON_2026)[0] == "end_unknown", r.id


def test_bundled_catalogue_has_open_measures_inside_their_periods(rules):
    # 石人社字〔2020〕39号: 政策受理截止期限为2020年12月31日
    r = rules.by_id["sjz.ui_refund.sme_relaxed"]
    assert window(r, dt.date(2020, 12, 31))[0] == "open"
    assert window(r, dt.date(2021, 1, 1))[0] == "closed"


def test_rules_validity_command_counts_windows(rules):
    from typer.testing import CliRunner

    from eligibility.cli import app

    out = CliRunner().invoke(app, ["rules", "validity", "--on", "2026-12-02"])
    assert out.exit_code == 0, out.output
    counts = {}
    for line in out.output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("open", "end_unknown", "upcoming", "closed"):
            counts[parts[1]] = int(parts[2])
    assert counts["open"] == 0 and sum(counts.values()) == len(rules)
    bad = CliRunner().invoke(app, ["rules", "validity", "--on", "2026-12-02", "--show", "openn"])
    assert bad.exit_code == 2


# ---------------------------------------------------------------- dates


def test_one_date_parser_for_every_caller():
    assert as_date(dt.datetime(2020, 6, 1, 15, 30)) == dt.date(2020, 6, 1)
    assert as_date(" 2020-06-01 ") == dt.date(2020, 6, 1)
    with pytest.raises(ArgumentError) as e:
        as_date("2020-13-01")
    assert e.value.issues[0].where == "on"


def test_evaluate_accepts_a_datetime(rules):
    a = evaluate({"province": "河北省"}, on=dt.datetime(2020, 6, 1, 9, 0))
    b = evaluate({"province": "河北省"}, on="2020-06-01")
    assert a.as_of == b.as_of == dt.date(2020, 6, 1)


# ---------------------------------------------------------------- money: kinds, units, precedence


MONEY = [
    rule("t.exact", "{start: 2020-01-01, end: 2020-12-31, end_kind: stated}",
         "amount: {kind: exact, formula: monthly_rent * 2}"),
    rule("t.capped", "{start: 2020-01-01, end: 2020-12-31, end_kind: stated}",
         "amount: {kind: up_to, formula: unemployment_insurance_paid * rate, params: {rate: 50%}}"),
    rule("t.monthly", "{start: 2020-01-01, end: 2020-12-31, end_kind: stated}",
         "amount: {kind: exact, formula: monthly_rent, per: month}"),
]


def test_definite_and_up_to_totals_apart_and_monthly_never_added(tmp_path):
    rules = load(tmp_path, *MONEY)
    company = {"province": "河北省", "foreign_trade": True, "monthly_rent": 10_000, "unemployment_insurance_paid": 30_000}
    report = evaluate(company, on="2020-06-01", rules=rules)
    # exact: 10,000 × 2 = 20,000; up to: 30,000 × 50% = 15,000; 10,000元/月 is a line of its own
    assert report.total_amount == Decimal(20_000)
    assert report.total_up_to == Decimal(15_000)
    assert report.get("t.monthly").amount == Decimal(10_000) and not report.get("t.monthly").counted_in_total
    assert report.get("t.capped").amount_kind == "up_to"
    # the batch gives the same totals
    summary = evaluate_frame(pl.DataFrame({k: [str(v)] for k, v in company.items()}), on="2020-06-01", rules=rules)[0]
    assert Decimal(str(summary["total_amount"][0])) == Decimal(20_000)
    assert Decimal(str(summary["total_up_to"][0])) == Decimal(15_000)


def test_a_later_document_that_narrows_an_earlier_one_wins(tmp_path):
    # the earlier measure pays 6 months (up to), the later one sets 2 months: the later one is counted
    rules = load(
        tmp_path,
        rule("t.earlier", "{start: 2020-01-01, end: 2020-12-31, end_kind: stated}",
             "amount: {kind: up_to, formula: monthly_rent * 6}", "excludes: [t.later]"),
        rule("t.later", "{start: 2020-03-01, end: 2020-12-31, end_kind: stated}",
             "amount: {kind: exact, formula: monthly_rent * 2}", "supersedes: [t.earlier]"),
    )
    company = {"province": "河北省", "foreign_trade": True, "monthly_rent": 1_000}
    report = evaluate(company, on="2020-06-01", rules=rules)
    assert report.get("t.later").counted_in_total and not report.get("t.earlier").counted_in_total
    assert report.get("t.earlier").superseded_by == ["t.later"]
    assert report.total_amount == Decimal(2_000) and report.total_up_to == 0
    summary = evaluate_frame(pl.DataFrame({k: [str(v)] for k, v in company.items()}), on="2020-06-01", rules=rules)[0]
    assert Decimal(str(summary["total_amount"][0])) == Decimal(2_000)
    assert Decimal(str(summary["total_up_to"][0])) == 0


def test_supersedes_an_unknown_rule_fails_at_load(tmp_path):
    with pytest.raises(RuleLoadError) as e:
        load(tmp_path, rule("t.later", "{start: 2020-03-01, end: 2020-12-31, end_kind: stated}",
                            extra="supersedes: [t.earlierr]"))
    assert "supersedes[0]: unknown rule id 't.earlierr'" in str(e.value)


def test_amount_kind_is_required(tmp_path):
    with pytest.raises(RuleLoadError) as e:
        load(tmp_path, rule("t.x", "{start: 2020-03-01, end: 2020-12-31, end_kind: stated}",
                            "amount: {formula: monthly_rent * 2}"))
    assert "$.rules[0].amount.kind: Field required" in str(e.value)


# ---------------------------------------------------------------- derived, not asked


@pytest.mark.parametrize("facts, expected", [
    ({"monthly_rent": 8000}, True),          # a rent is paid: the premises are rented
    ({"monthly_rent": 0}, False),
    ({"monthly_rent": 0, "rents_business_premises": True}, True),  # an answer given always wins
    ({}, None),
])
def test_renting_premises_is_derived_from_the_rent(tmp_path, facts, expected):
    rules = load(tmp_path, rule("t.rent", "{start: 2020-01-01, end: 2020-12-31, end_kind: stated}",
                                when="{fact: rents_business_premises, eq: true}"))
    company = {"province": "河北省", **facts}
    r = evaluate(company, on="2020-06-01", rules=rules).get("t.rent")
    assert r.status == {True: "eligible", False: "ineligible", None: "undetermined"}[expected]
    if expected is None:
        assert r.missing == ["rents_business_premises"]
    summary = evaluate_frame(pl.DataFrame({k: [str(v)] for k, v in company.items()}), on="2020-06-01", rules=rules)[0]
    assert summary["n_eligible"][0] == (1 if expected else 0)
    assert summary["n_undetermined"][0] == (1 if expected is None else 0)


@pytest.mark.parametrize("facts, decided", [
    ({"employees": 301}, False),               # 从业人数不超过300人: 301 rules it out
    ({"total_assets": 50_000_001}, False),     # 资产总额不超过5000万元
    ({"annual_taxable_income": 3_000_001}, False),
    ({"employees": 300, "total_assets": 50_000_000, "annual_taxable_income": 3_000_000}, None),  # inside: still asked
])
def test_small_low_profit_is_ruled_out_by_the_data(tmp_path, facts, decided):
    rules = load(tmp_path, rule("t.slp", "{start: 2020-01-01, end: 2020-12-31, end_kind: stated}",
                                when="{fact: small_low_profit_enterprise, eq: true}"))
    report = evaluate({"province": "河北省", **facts}, on="2020-06-01", rules=rules)
    r = report.get("t.slp")
    if decided is False:
        assert r.status == "ineligible" and report.derived["small_low_profit_enterprise"] is False
    else:
        assert r.status == "undetermined" and r.missing == ["small_low_profit_enterprise"]


def test_vat_sales_above_five_million_rule_out_small_scale(tmp_path):
    rules = load(tmp_path, rule("t.vat", "{start: 2020-01-01, end: 2020-12-31, end_kind: stated}",
                                when="{fact: vat_small_scale_taxpayer, eq: true}"))
    assert evaluate({"province": "河北省", "annual_vat_sales": 5_000_001}, on="2020-06-01",
                    rules=rules).get("t.vat").status == "ineligible"
    assert evaluate({"province": "河北省", "annual_vat_sales": 5_000_000}, on="2020-06-01",
                    rules=rules).get("t.vat").status == "undetermined"


def test_small_micro_is_not_an_alias_of_small_low_profit(rules):
    # 小微企业 means size small or micro elsewhere: a list column headed 小微企业 must not be read as 小型微利企业
    assert rules.facts.column_for("小微企业") != "small_low_profit_enterprise"
