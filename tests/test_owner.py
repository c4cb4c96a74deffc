"""The owner's view (eligibility/owner.py) and its words (present.py): one line per benefit, the date
framing against the engine's totals, maybes by the deciding question, the printable report and the
CSV without internal names; and values as people type them (facts.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest

from eligibility import evaluate
from eligibility import present as P
from eligibility.facts import FactValueError, default_facts, scale_words
from eligibility.owner import MODES, askable, benefit_groups, build_view, question_order
from eligibility.words import APP, CSV_HEADERS, REPORT, VIEW

CATERER = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
           "industry": "catering", "employees": 40, "revenue": 3_000_000, "rents_state_owned_premises": True,
           "monthly_rent": 10_000, "insured_employees": 40, "unemployment_claimants": 2,
           "unemployment_insurance_paid": 24_000}
HENAN = {"province": "河南省", "city": "郑州市", "county": "金水区", "entity_type": "enterprise", "industry": "retail",
         "employees": 12, "revenue": 3_000_000, "rents_state_owned_premises": True, "monthly_rent": 8_000}
GUANGYUAN = {"province": "四川省", "city": "广元市", "county": "利州区", "entity_type": "individual_business",
             "industry": "retail", "employees": 3, "revenue": 500_000}
TODAY = dt.date(2026, 12, 3)
DATES = (dt.date(2020, 3, 15), dt.date(2020, 6, 1), TODAY)


def internal_names(rules) -> re.Pattern:
    """Rule ids and snake_case fact names: never in what a person reads."""
    names = [re.escape(r.id) for r in rules] + [re.escape(f) for f in rules.facts if "_" in f]
    return re.compile("|".join(sorted(names, key=len, reverse=True)) + r"|[（(]cite[）)]")


def visible_text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("on", DATES)
@pytest.mark.parametrize("company", [CATERER, HENAN, GUANGYUAN])
def test_totals_are_the_engines_and_nothing_expired_is_open(rules, company, on):
    report = evaluate(company, on=on, rules=rules)
    now, period = build_view(report, rules, "now"), build_view(report, rules, "period")
    assert period.definite == report.total_amount and period.up_to == report.total_up_to
    assert now.definite == report.total_in_effect  # the engine's "open on the date", counted once
    for section, lines in now.sections:
        assert section in ("open", "end_unknown", "upcoming")
        for ln in lines:
            assert ln.head.window == section and ln.head.status == "eligible"
            assert all(r.window == "open" for r in ln.counted)  # only open money makes the "now" total
    assert all(ln.head.window == "closed" for ln in now.closed)
    for g in now.maybe:
        assert all(ln.head.window != "closed" for ln in g.lines)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("on", DATES)
def test_one_line_per_benefit(rules, mode, on):
    report = evaluate(CATERER, on=on, rules=rules)
    view = build_view(report, rules, mode)
    line_of, _ = benefit_groups(rules)
    lines = view.lines + view.services + view.closed + [ln for g in view.maybe for ln in g.lines]
    seen: dict[int, str] = {}
    for ln in lines:
        groups = {line_of[r.rule_id] for r in ln.members}
        assert len(groups) == 1, "a line holds one benefit"
        g = groups.pop()
        assert g not in seen, f"{ln.head.rule_id} and {seen.get(g)} are the same money on two lines"
        seen[g] = ln.head.rule_id
        assert len(ln.counted) <= 1 or all(r.tops_up or any(o.tops_up for o in ln.counted) for r in ln.counted)
    for group in rules.exclusion_groups:  # excludes and supersedes: one line at most
        assert len({line_of[i] for i in group}) == 1
    ids = [r.rule_id for ln in lines for r in ln.members]
    assert len(ids) == len(set(ids))


def _old_benefit_groups(rules):
    """owner.benefit_groups before the grouping became RuleSet.benefit_groups (kept to compare)."""
    engine = {i: n for n, g in enumerate(rules.exclusion_groups) for i in g}
    parent = {r.id: r.id for r in rules}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for g in rules.exclusion_groups:
        first = sorted(g)[0]
        for i in g:
            parent[find(i)] = find(first)
    for r in rules:
        if r.spec.tops_up and r.spec.tops_up in parent:
            parent[find(r.id)] = find(r.spec.tops_up)
    roots: dict[str, int] = {}
    line = {r.id: roots.setdefault(find(r.id), len(roots)) for r in rules}
    n = len(rules.exclusion_groups)
    for r in rules:
        if r.id not in engine:
            engine[r.id] = n
            n += 1
    return line, engine


@pytest.mark.parametrize("only", [None, "sjz.*", "*rent*"])
def test_benefit_groups_are_the_rule_sets_one_grouping(rules, only):
    chosen = rules if only is None else rules.select(only)
    groups = chosen.benefit_groups
    assert groups is chosen.benefit_groups  # built once
    assert (groups.line, groups.counted_once) == _old_benefit_groups(chosen) == benefit_groups(chosen)
    assert any(r.spec.tops_up for r in chosen) or only is not None  # the catalogue has top-ups to join


def test_the_rent_waivers_are_one_line_with_the_alternatives_folded(rules):
    report = evaluate(CATERER, on=dt.date(2020, 3, 15), rules=rules)
    view = build_view(report, rules, "now")
    rent = [ln for ln in view.lines if "房租" in ln.head.title.zh]
    assert len(rent) == 1 and rent[0].amount == Decimal("20000.00") and len(rent[0].others) >= 3
    page = P.view_html(view, rules, "zh")
    summaries = [visible_text(x) for x in re.findall(r'<details class="ben[^"]*"><summary>(.*?)</summary>', page)]
    assert len(summaries) == len(view.lines)
    assert sum("20,000.00元" in x for x in summaries) == 1  # the money once, as one line
    for other in rent[0].others:  # the alternatives are folded under it, not lines of their own
        assert not any(x.startswith(other.title.zh + " ") for x in summaries)
        assert other.title.zh in page
    assert "同一笔钱，只计一次" in page


def test_amounts_per_month_are_lines_of_their_own_not_in_the_totals(rules):
    values = {**CATERER, "graduate_interns": 4, "intern_retention_rate_pct": 60, "local_minimum_wage_monthly": 1900}
    report = evaluate(values, on=dt.date(2020, 6, 1), rules=rules)
    view = build_view(report, rules, "period")
    monthly = [ln for ln in view.lines if ln.per == "month" and ln.amount]
    assert monthly and not any(ln.counted for ln in monthly)
    assert view.definite == report.total_amount == build_view(evaluate(CATERER, on=dt.date(2020, 6, 1), rules=rules),
                                                              rules, "period").definite
    assert "5,320.00元/月" in P.view_html(view, rules, "zh")
    assert "按月、按年计发的" in P.summary_html(view, "zh")


def test_maybes_are_grouped_by_the_question_in_the_forms_order_and_never_zero(rules):
    values = {k: v for k, v in CATERER.items() if k not in ("insured_employees", "unemployment_claimants")}
    report = evaluate(values, on=dt.date(2020, 3, 15), rules=rules)
    view = build_view(report, rules, "now")
    order = [q.fact for q in view.questions]
    asked = [g.fact for g in view.maybe if g.fact is not None and g.fact in order]
    assert asked == sorted(asked, key=order.index)  # the order the form asks them in
    for g in view.maybe:
        for ln in g.lines:
            missing = {m for r in ln.members for m in r.missing}
            if g.fact is not None:
                assert g.fact in askable(missing, rules.facts, set(report.input))
    page = P.view_html(view, rules, "zh") + P.summary_html(view, "zh")
    maybe_part = page[page.index('class="sec maybe"'):] if 'class="sec maybe"' in page else ""
    assert not re.search(r"(?<![\d,])0\.00元", visible_text(maybe_part))
    summary = P.summary_html(build_view(evaluate(GUANGYUAN, on=TODAY, rules=rules), rules, "now"), "zh")
    assert "0.00元" not in summary and "可能还有：" not in summary


def test_derived_facts_are_never_asked(rules):
    report = evaluate({k: v for k, v in CATERER.items() if k not in ("monthly_rent", "rents_state_owned_premises")},
                      on=dt.date(2020, 3, 15), rules=rules)
    asked = [q.fact for q in question_order(report, rules)]
    assert "rents_business_premises" not in asked and "monthly_rent" in asked  # the rent decides it
    assert not any(rules.facts[f].derived for f in asked)
    big = evaluate({**CATERER, "employees": 400}, on=dt.date(2020, 3, 15), rules=rules)
    assert "small_low_profit_enterprise" not in [q.fact for q in question_order(big, rules)]
    assert big.derived.get("small_low_profit_enterprise") is False


def test_guangyuan_today_says_what_closed_and_where_to_look(rules):
    view = build_view(evaluate(GUANGYUAN, on=TODAY, rules=rules), rules, "now")
    assert not view.lines and view.closed_maybe
    summary = P.summary_html(view, "zh")
    assert "已截止" in summary and "政策有效期内我本可以享受什么" in summary
    period = build_view(evaluate(GUANGYUAN, on=TODAY, rules=rules), rules, "period")
    assert period.maybe and all(ln.head.window == "closed" for g in period.maybe for ln in g.lines)


# ---------------------------------------------------------------- report and CSV


def _report(rules, lang="zh", mode="period", on=TODAY):
    report = evaluate(CATERER, on=on, rules=rules)
    raw = {"revenue": "300万", "monthly_rent": "1万"}
    return report, P.report_html(report, rules, lang, raw, company="石家庄某某餐饮有限公司", mode=mode)


def test_printable_report_has_the_company_how_to_apply_a_print_button_and_an_appendix(rules):
    report, page = _report(rules)
    head = page[:page.index('class="appendix"')]
    for needed in ("石家庄某某餐饮有限公司", TODAY.isoformat(), "政策有效期内我本可以享受什么", "44,000.00元",
                   "向谁申请", "依据", "石人社字〔2020〕39号", "24,000.00元", "20,000.00元"):
        assert needed in head, needed
    assert 'onclick="window.print()"' in page and "@media print" in page and ".no-print" in page
    assert "@page" in page and "break-before: page" in page
    appendix = page[page.index('class="appendix"'):]
    assert "<blockquote" in appendix and "上年度实际缴纳失业保险费 × 100%" in appendix and "300万" in appendix
    assert not internal_names(rules).search(visible_text(page))
    assert "http://" not in page and "https://" not in page
    _, now = _report(rules, mode="now")
    assert "现在还能申请什么" in now and "44,000.00元" not in now[:now.index("appendix")]


def test_english_report_is_english_but_for_marked_chinese_sources(rules):
    _, page = _report(rules, "en")
    text = re.sub(r'<(span|blockquote) lang="zh-CN">.*?</\1>', " ", page, flags=re.S)
    text = visible_text(re.sub(r"<style>.*?</style>", "", text, flags=re.S))
    text = text.replace("石家庄某某餐饮有限公司", "").replace("300万", "").replace("1万", "")
    assert not re.search(r"[\u4e00-\u9fff]", text), re.findall(r".{20}[\u4e00-\u9fff]+.{20}", text)[:5]
    assert "Unemployment insurance paid last year × 100%" in page or "× 100%" in page
    assert "Print / save as PDF" in page


def test_owner_csv_has_words_not_internal_names(rules):
    report = evaluate(CATERER, on=dt.date(2020, 3, 15), rules=rules)
    view = build_view(report, rules, "now")
    data = P.benefits_csv(view, "zh", rules=rules)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert list(rows[0]) == list(CSV_HEADERS["zh"].values())
    assert not internal_names(rules).search(data.decode("utf-8-sig"))
    eligible = [r for r in rows if r["结论"] == "符合"]
    assert len({r["政策"] for r in eligible}) == len(eligible)  # one row per benefit
    rent = next(r for r in eligible if "房租" in r["政策"])
    assert rent["金额（元）"] == "20000.00" and rent["同一笔钱的其他政策"]


def test_english_formula_uses_english_labels(rules):
    report = evaluate(CATERER, on=dt.date(2020, 6, 1), rules=rules)
    refund = report.get("sjz.ui_refund.sme_relaxed")
    en = P.formula_words(refund, rules.by_id[refund.rule_id], "en", rules.facts)
    assert en and not re.search(r"[\u4e00-\u9fff]", en) and "100%" in en


# ---------------------------------------------------------------- values as people type them


@pytest.mark.parametrize("typed,value", [("300万", "3000000"), ("3,000,000", "3000000"), ("30万元", "300000"),
                                         ("1.5亿", "150000000"), ("１.５亿元", "150000000"), ("2.5千", "2500"),
                                         ("300万元", "3000000")])
def test_amounts_as_people_type_them(typed, value):
    assert default_facts()["revenue"].parse(typed) == Decimal(value)


def test_scale_words_are_exact_and_leave_other_text_alone():
    assert scale_words("0.0001万") == "1.0000"
    assert scale_words("万") == "万" and scale_words("abc万") == "abc万" and scale_words("12") == "12"
    assert default_facts()["employees"].parse("1万") == 10000
    with pytest.raises(FactValueError):
        default_facts()["revenue"].parse("万元")
    with pytest.raises(FactValueError):
        default_facts()["employees"].parse("1.5万5")


@pytest.mark.parametrize("fact,typed,key", [("industry", "工业", "manufacturing"), ("industry", "旅游业", "tourism"),
                                            ("industry", "餐饮业", "catering"), ("industry", "制造业", "manufacturing"),
                                            ("industry", "农业", "agriculture"), ("industry", "酒店", "accommodation"),
                                            ("entity_type", "个体户", "individual_business"),
                                            ("province", "河北", "河北省"), ("industry", "Catering", "catering")])
def test_chinese_option_labels(fact, typed, key):
    assert default_facts()[fact].parse(typed) == key


def test_an_unknown_label_gets_a_chinese_suggestion():
    with pytest.raises(FactValueError) as e:
        default_facts()["industry"].parse("饮食业")
    zh, en = str(e.value).split(" / ", 1)
    assert "是否为“餐饮业”" in zh and "餐饮业" in zh and "catering" not in zh
    assert "Catering" in en


def test_the_batch_reads_chinese_labels_and_amounts(rules):
    from eligibility.batch import evaluate_frame, read_table

    data = ("企业名称,所在省份,所在城市,主体类型,所属行业,从业人员,上年度营业收入\n"
            "甲厂,河北省,石家庄市,企业,工业,40,300万\n乙社,河北省,石家庄市,企业,旅游业,8,1.5亿\n"
            "丙馆,河北省,石家庄市,个体户,餐饮业,5,30万元\n丁店,河北省,石家庄市,企业,饮食业,5,30万\n").encode()
    summary = evaluate_frame(read_table(data, "list.csv"), on="2020-06-01", rules=rules)
    errors = summary["errors"].to_list()
    assert errors[:3] == [None, None, None]
    assert "是否为“餐饮业”" in errors[3]


def test_words_have_both_languages():
    for table in (APP, VIEW, REPORT, CSV_HEADERS):
        assert set(table["zh"]) == set(table["en"])
        for k, v in table["zh"].items():
            if isinstance(v, dict):
                assert set(v) == set(table["en"][k]), k
