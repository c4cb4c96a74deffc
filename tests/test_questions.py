"""The questionnaire's brain (eligibility.questions) and the result wording/downloads (eligibility.present).

Ranking is tested on a small hand-made catalogue (quotes unchecked), so the expected order can be
worked out by hand; the properties that must hold for any catalogue are tested on the bundled rules.
"""

import csv
import datetime as dt
import io
import json
import textwrap
from decimal import Decimal

import pytest

from eligibility import evaluate, load_rules
from eligibility import present as P
from eligibility.questions import (DERIVED_INPUTS, FIRST_QUESTIONS, first_questions, known_places,
                                   missing_for, next_questions, normalise_place)

TOY = textwrap.dedent("""
    seed: 003_d2efa32a57ff7dc0.txt
    documents:
      doc: {title: 测试文件, number: 测试〔2020〕1号, date: 2020-01-01}
    rules:
      - id: toy.money_a
        title: {zh: 甲, en: A}
        document: doc
        quote: 对受疫情影响较大的企业给予补贴
        jurisdiction: {province: 河北省}
        agency: {zh: 某局, en: Bureau}
        kind: money
        strength: entitled
        benefit: {zh: 补贴, en: subsidy}
        period: {start: 2020-01-01, end: 2030-12-31, end_kind: stated}
        when:
          all:
            - {fact: affected_by_epidemic, eq: true, cite: 受疫情影响较大}
            - {fact: has_bank_loan, eq: true}
        amount: {kind: exact, formula: monthly_rent * 2}
        examples:
          - {name: ok, facts: {province: 河北省, affected_by_epidemic: true, has_bank_loan: true}, expect: {status: eligible}}
      - id: toy.relief_b
        title: {zh: 乙, en: B}
        document: doc
        quote: 受疫情影响较大的企业可以缓缴
        jurisdiction: {province: 河北省}
        agency: {zh: 某局, en: Bureau}
        kind: relief
        strength: entitled
        benefit: {zh: 缓缴, en: deferral}
        period: {start: 2020-01-01, end: 2030-12-31, end_kind: stated}
        when: {fact: affected_by_epidemic, eq: true}
        examples:
          - {name: ok, facts: {province: 河北省, affected_by_epidemic: true}, expect: {status: eligible}}
      - id: toy.service_c
        title: {zh: 丙, en: C}
        document: doc
        quote: 外贸企业提供服务
        jurisdiction: {province: 河北省}
        agency: {zh: 某局, en: Bureau}
        kind: service
        strength: encouraged
        benefit: {zh: 服务, en: service}
        period: {start: 2020-01-01, end: 2030-12-31, end_kind: stated}
        when: {fact: foreign_trade, eq: true}
        examples:
          - {name: ok, facts: {province: 河北省, foreign_trade: true}, expect: {status: eligible}}
      - id: toy.refund_d
        title: {zh: 丁, en: D}
        document: doc
        quote: 中小微企业裁员率不高于5.5%的，返还失业保险费的100%
        jurisdiction: {province: 河北省}
        agency: {zh: 某局, en: Bureau}
        kind: money
        strength: entitled
        benefit: {zh: 返还, en: refund}
        period: {end_kind: stated, start: 2020-01-01, end: 2020-12-31}
        when:
          all:
            - {fact: size, in: [medium, small, micro], cite: 中小微企业}
            - {fact: layoff_rate, le: 5.5, cite: 裁员率不高于5.5%}
        amount: {kind: exact, formula: unemployment_insurance_paid * rate, params: {rate: 100%}}
        examples:
          - {name: ok, facts: {province: 河北省, size: small, layoff_rate: 1}, expect: {status: eligible}}
      - id: toy.other_province
        title: {zh: 戊, en: E}
        document: doc
        quote: 河南企业的补贴
        jurisdiction: {province: 河南省}
        agency: {zh: 某局, en: Bureau}
        kind: money
        strength: entitled
        benefit: {zh: 补贴, en: subsidy}
        period: {start: 2020-01-01, end: 2030-12-31, end_kind: stated}
        when: {fact: foreign_trade, eq: true}
        examples:
          - {name: ok, facts: {province: 河南省, foreign_trade: true}, expect: {status: eligible}}
""")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_rules")
    (folder / "toy.yaml").write_text(TOY, "utf-8")
    return load_rules(folder, check_quotes=False)


BASICS = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
          "industry": "catering", "employees": 40, "revenue": 3_000_000}


# ---------------------------------------------------------------- first questions


def test_first_questions_are_fixed_and_in_order():
    assert [q.fact for q in first_questions()] == list(FIRST_QUESTIONS)
    assert all(q.first for q in first_questions())


def test_total_assets_only_where_the_size_standard_uses_it():
    assert "total_assets" not in [q.fact for q in first_questions({"industry": "catering"})]
    assert "total_assets" in [q.fact for q in first_questions({"industry": "construction"})]
    assert "total_assets" in [q.fact for q in first_questions({})]  # industry unknown yet


# ---------------------------------------------------------------- ranking (hand-made catalogue)


def test_ranking_counts_rules_and_money(toy):
    report = evaluate({"province": "河北省"}, on="2020-06-01", rules=toy)
    qs = next_questions(report, toy, include_first=True)
    order = [q.fact for q in qs]
    # affected_by_epidemic waits in two rules (money A shared with has_bank_loan, relief B alone):
    # 3*2/2 + 1*2/1 = 5 > has_bank_loan 3 > foreign_trade (service, 0.5*2 = 1)
    assert order.index("affected_by_epidemic") < order.index("has_bank_loan") < order.index("foreign_trade")
    q = next(q for q in qs if q.fact == "affected_by_epidemic")
    assert set(q.rules) == {"toy.money_a", "toy.relief_b"}
    assert q.score == pytest.approx(5.0)
    # the other province's rule is settled already: nothing is asked for it
    assert not any("toy.other_province" in q.rules for q in qs)


def test_derived_facts_are_asked_through_their_inputs(toy):
    report = evaluate({"province": "河北省", "size": "small"}, on="2020-06-01", rules=toy)
    facts = [q.fact for q in next_questions(report, toy)]
    assert "layoff_rate" not in facts and "size" not in facts
    assert {"insured_employees", "unemployment_claimants"} <= set(facts)


def test_amount_of_an_eligible_rule_is_scored_as_half_a_verdict(toy):
    values = {"province": "河北省", "affected_by_epidemic": True, "has_bank_loan": True}
    report = evaluate(values, on="2020-06-01", rules=toy)
    assert report.get("toy.money_a").status == "eligible"
    qs = next_questions(report, toy)
    rent = next(q for q in qs if q.fact == "monthly_rent")
    assert rent.amount_rules == ("toy.money_a",)
    # money 3 × open 2 × amount share ½, alone in its formula: 3 (scoring.py, the batch's score too)
    assert rent.score == pytest.approx(3.0)


def test_questionnaire_and_batch_rank_facts_alike(rules):
    """One score (scoring.py): the app's next questions are the batch's facts_to_collect, in order."""
    from eligibility.batch import collect_facts

    for company in ({**BASICS}, {"province": "河南省", "city": "郑州市", "entity_type": "enterprise", "industry": "retail"},
                    {"province": "四川省", "city": "广元市", "entity_type": "individual_business"}):
        report = evaluate(company, on="2020-06-01", rules=rules)
        qs = next_questions(report, rules, include_first=True)
        assert [q.fact for q in qs][:5] == collect_facts(report, rules.facts, 5)


def test_known_skipped_and_first_facts_are_never_next(toy):
    values = {"province": "河北省", "affected_by_epidemic": True}
    report = evaluate(values, on="2020-06-01", rules=toy)
    facts = [q.fact for q in next_questions(report, toy, exclude={"has_bank_loan"})]
    assert "affected_by_epidemic" not in facts and "has_bank_loan" not in facts
    assert not set(facts) & set(FIRST_QUESTIONS)


def test_a_mapping_is_evaluated_first(toy):
    qs = next_questions({"province": "河北省"}, toy, on=dt.date(2020, 6, 1), limit=2)
    assert len(qs) == 2 and qs[0].fact == "affected_by_epidemic"


def test_missing_for_names_the_waiting_rules(toy):
    report = evaluate({"province": "河北省"}, on="2020-06-01", rules=toy)
    assert {r.rule_id for r in missing_for(report, "affected_by_epidemic")} == {"toy.money_a", "toy.relief_b"}


# ---------------------------------------------------------------- properties on the bundled catalogue


def test_bundled_catalogue_never_asks_known_or_derived(rules):
    report = evaluate(BASICS, on=dt.date(2020, 6, 1), rules=rules)
    qs = next_questions(report, rules)
    assert qs, "a catering firm in Shijiazhuang leaves open questions"
    names = [q.fact for q in qs]
    assert len(names) == len(set(names))
    for q in qs:
        assert q.fact not in BASICS and q.fact not in FIRST_QUESTIONS
        assert not rules.facts[q.fact].derived
        assert q.rules or q.amount_rules
    scores = [q.score for q in qs]
    assert scores == sorted(scores, reverse=True)
    # every fact an undetermined result waits on (via inputs for derived ones) is offered
    offered = set(names)
    for r in report.results:
        if r.status == "undetermined":
            for m in r.missing:
                need = DERIVED_INPUTS.get(m, (m,)) if rules.facts[m].derived else (m,)
                assert any(n in offered or n in BASICS for n in need), (r.rule_id, m)


def test_answering_everything_asked_empties_the_list(rules):
    values = dict(BASICS)
    for _ in range(400):
        report = evaluate(values, on=dt.date(2020, 6, 1), rules=rules)
        qs = next_questions(report, rules, limit=1)
        if not qs:
            break
        spec = qs[0].spec
        if spec.type == "enum":
            values[spec.name] = next(iter(spec.values))
        else:
            values[spec.name] = {"bool": False, "text": "x", "date": dt.date(2020, 1, 1)}.get(spec.type, 1)
    else:
        pytest.fail("questions never ran out")
    assert all(r.status != "undetermined" for r in report.results)


def test_place_names_as_people_type_them(rules):
    places = known_places(rules)
    assert normalise_place("city", "石家庄", places) == "石家庄市"
    assert normalise_place("county", "长安", places) == "长安区"
    assert normalise_place("city", "石家庄市", places) == "石家庄市"
    assert normalise_place("city", "不存在的地方", places) == "不存在的地方"


# ---------------------------------------------------------------- wording and downloads


def test_why_not_says_the_failed_condition_and_what_would_change_it(toy):
    values = {"province": "河北省", "size": "small", "insured_employees": 40, "unemployment_claimants": 3}
    r = evaluate(values, on="2020-06-01", rules=toy).get("toy.refund_d")
    assert r.status == "ineligible"
    items = P.why_not(r, "zh")
    assert len(items) == 1
    assert "裁员率为7.5%" in items[0]["said"] and "高于5.5%" in items[0]["said"]
    assert items[0]["cite"] == "裁员率不高于5.5%"
    assert items[0]["change"] == "需裁员率不高于5.5%"
    en = P.why_not(r, "en")[0]
    assert "7.5%" in en["said"] and en["change"].startswith("needs")


def test_other_province_is_not_here(toy):
    report = evaluate({"province": "河北省"}, on="2020-06-01", rules=toy)
    assert P.not_here(report.get("toy.other_province"))
    groups = P.by_window(report)
    assert all(r.rule_id != "toy.other_province" for g in groups.values() for r in g)


def test_quote_highlights_cites_and_numbers_and_escapes():
    out = P.highlight_html("中小微企业裁员率不高于5.5%的<b>", [("裁员率不高于5.5%", "key"), ("5.5", "num")])
    assert '<mark class="key">裁员率不高于5.5%</mark>' in out
    assert "&lt;b&gt;" in out and "<b>" not in out
    out = P.highlight_html("返还失业保险费的100%，最高 100 万", [("100%", "num")])
    assert out.count("<mark") == 1 and '<mark class="num">100%</mark>' in out
    assert P.highlight_html("裁员率不高于\n5.5%", [("裁员率不高于5.5%", "cite")]).startswith('<mark class="cite">')


def test_window_grouping_and_default_view(toy):
    report = evaluate({"province": "河北省", "size": "small"}, on="2021-06-01", rules=toy)
    groups = P.by_window(report)
    assert [r.rule_id for r in groups["closed"]] == ["toy.refund_d"]
    assert "closed" in P.window_note(groups["closed"][0], "zh") or "截止" in P.window_note(groups["closed"][0], "zh")
    only_closed = {"open": [], "closed": groups["closed"], "upcoming": []}
    assert P.default_window(only_closed) == "closed"


def _scenario_report(toy):
    values = {"province": "河北省", "size": "small", "insured_employees": 40, "unemployment_claimants": 2,
              "unemployment_insurance_paid": 24000, "affected_by_epidemic": True, "has_bank_loan": True,
              "monthly_rent": 5000}
    return evaluate(values, on="2020-06-01", rules=toy)


def test_html_report_is_self_contained_and_complete(toy):
    report = _scenario_report(toy)
    raw = {"province": "河北省", "unemployment_insurance_paid": "24,000", "monthly_rent": "5000"}
    page = P.report_html(report, toy, "zh", raw)
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "Noto Sans CJK SC" in page and "@media print" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    for needed in (report.rules_version, report.tool_version, "2020-06-01", "24,000", "测试〔2020〕1号",
                   "24,000.00元", "上年度实际缴纳失业保险费 × 100%", "34,000.00元"):
        assert needed in page, needed
    assert "Support-policy eligibility report" in P.report_html(report, toy, "en", raw)


def test_csv_and_json_downloads(toy):
    report = _scenario_report(toy)
    data = P.report_csv(report, "zh")
    assert data.startswith("\ufeff".encode("utf-8"))
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["rule_id"] for r in rows if r["status"] == "eligible"] == ["toy.money_a", "toy.relief_b", "toy.refund_d"] \
        or {r["rule_id"] for r in rows if r["status"] == "eligible"} == {"toy.money_a", "toy.relief_b", "toy.refund_d"}
    refund = next(r for r in rows if r["rule_id"] == "toy.refund_d")
    assert refund["amount"] == "24000.00" and refund["number"] == "测试〔2020〕1号"
    doc = json.loads(P.report_json(report, "zh", {"monthly_rent": "5000"}))
    assert doc["input_as_received"] == {"monthly_rent": "5000"}
    assert doc["rules_version"] == toy.version and doc["as_of"] == "2020-06-01"
    assert Decimal(str(doc["total_amount"])) == Decimal("34000")


def test_possible_money_counts_overlaps_once(rules):
    report = evaluate(BASICS, on=dt.date(2020, 6, 1), rules=rules)
    total = P.possible_money(report, rules)
    naive = P.possible_money(report)
    assert total <= naive
