"""The Streamlit app driven as a person would use it, through streamlit.testing.v1.AppTest and widget keys.

The app runs with the bundled rules (ELIGIBILITY_RULES_DIR is cleared). Follow-up questions are only
answered once the app shows them: the helper clicks "more questions" like a person would, and opens
an answered one again through "change an answer".
"""

import datetime as dt
import html
import re
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from eligibility import default_rules  # noqa: E402
from eligibility.explain import money  # noqa: E402
from eligibility.owner import question_order  # noqa: E402

APP = Path(__file__).resolve().parent.parent / "ui" / "app.py"
RENT_ID = "sjz.rent_waiver.state_owned_crowded_sectors"  # 免收2月份房租，减半收取3月份、4月份房租
REFUND_ID = "sjz.ui_refund.sme_relaxed"  # 稳岗返还标准提高到上年度缴纳失业保险费的100%
UNKNOWN = "__unknown__"
MARCH = dt.date(2020, 3, 15)

BASICS = [("province", "河北省"), ("city", "石家庄市"), ("county", "长安区"), ("entity_type", "enterprise"),
          ("industry", "catering"), ("employees", "40"), ("revenue", "3000000")]
CATERER = [("rents_state_owned_premises", True), ("monthly_rent", "10,000"), ("insured_employees", "40"),
           ("unemployment_claimants", "2"), ("unemployment_insurance_paid", "24000")]


@pytest.fixture(autouse=True)
def _bundled_rules(monkeypatch):
    monkeypatch.delenv("ELIGIBILITY_RULES_DIR", raising=False)


def start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run(target) -> AppTest:
    """Run the app (target: the AppTest, or a widget just set) and check nothing broke."""
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at: AppTest, fact: str) -> bool:
    key = f"q_{fact}"
    return any(w.key == key for lst in (at.selectbox, at.radio, at.text_input, at.date_input) for w in lst)


def answer(at: AppTest, fact: str, value) -> AppTest:
    """Answer one question: ask for more questions until it is shown, or open it again to change it."""
    for _ in range(40):
        if shown(at, fact):
            break
        edit = [s for s in at.selectbox if s.key == "edit_fact"]
        if edit and default_rules().facts[fact].zh in edit[0].options:
            run(edit[0].set_value(fact))
            continue
        assert any(b.key == "more_questions" for b in at.button), f"{fact} never asked"
        run(at.button(key="more_questions").click())
    else:
        pytest.fail(f"the app never asked {fact}")
    spec = default_rules().facts[fact]
    key = f"q_{fact}"
    if spec.type == "enum":
        at.selectbox(key=key).set_value(value)
    elif spec.type == "bool":
        at.radio(key=key).set_value({True: "yes", False: "no"}.get(value, value))
    else:
        at.text_input(key=key).input(str(value))
    return run(at)


def fill(at: AppTest, answers) -> AppTest:
    for fact, value in answers:
        answer(at, fact, value)
    return at


def htmls(at: AppTest) -> list[str]:
    return [h.value for h in at.get("html")]


def results_html(at: AppTest) -> str:
    return "\n".join(h for h in htmls(at) if 'class="sec' in h or 'class="ben' in h)


def summary_html(at: AppTest) -> str:
    """The results column's answer (the phone copy above the form is the same)."""
    return next(h for h in htmls(at) if h.startswith('<div class="sum">'))


def text(fragment: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)))


def lines(at: AppTest) -> list[str]:
    """The summary line of every benefit shown (title, amount, window, agency)."""
    return [text(s) for s in re.findall(r'<details class="ben[^"]*"><summary>(.*?)</summary>', results_html(at))]


def page_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + htmls(at)
    parts += [x.value for x in at.error] + [x.value for x in at.info] + [x.value for x in at.warning]
    labels = [w.label for lst in (at.selectbox, at.radio, at.text_input, at.checkbox, at.button, at.date_input,
                                  at.toggle) for w in lst]
    return text("\n".join(str(p) for p in parts + labels))


def internal_names():
    rules = default_rules()
    names = [re.escape(r.id) for r in rules] + [re.escape(f) for f in rules.facts if "_" in f]
    return re.compile("|".join(sorted(names, key=len, reverse=True)) + r"|[（(]cite[）)]")


# ---------------------------------------------------------------- first screen


def test_first_screen_asks_the_date_question_and_the_basics_in_chinese():
    at = start()
    for fact in ("province", "city", "county", "entity_type", "industry", "employees", "revenue", "total_assets"):
        assert shown(at, fact), fact
    assert at.radio(key="lang").value == "zh"
    assert at.title[0].value == "企业扶持政策计算器"
    assert at.radio(key="when").value == "now"
    assert at.radio(key="when").options == ["现在还能申请什么", "政策有效期内我本可以享受什么"]
    assert at.date_input(key="on").value == dt.date.today()
    assert at.text_input(key="company_name").value == ""
    assert at.radio(key="page").value == "form"
    assert "请先选择所在省份" in page_text(at)


# ---------------------------------------------------------------- the catering SME in 石家庄市长安区


def test_caterer_in_march_2020_one_line_per_benefit_and_the_open_total():
    rules = default_rules()
    at = fill(start(), BASICS)
    assert not shown(at, "total_assets")  # catering is sized by staff and revenue only
    run(at.date_input(key="on").set_value(MARCH))
    fill(at, CATERER)
    report = at.session_state["report"]
    assert report.as_of == MARCH and report.derived["size"] == "small"
    rent, refund = report.get(RENT_ID), report.get(REFUND_ID)
    assert rent.status == "eligible" and rent.amount == Decimal("20000.00")  # 1 month free + 2 halved
    assert refund.status == "eligible" and refund.amount == Decimal("24000.00") and refund.window == "upcoming"
    shown_lines = lines(at)
    assert sum("20,000.00元" in x for x in shown_lines) == 1  # five rent measures, one line
    titles = [rules.by_id[i].spec.title.zh for g in rules.exclusion_groups for i in g]
    for g in rules.exclusion_groups:  # the same money never on two lines
        assert sum(any(x.startswith(rules.by_id[i].spec.title.zh + " ") for i in g) for x in shown_lines) <= 1
    assert len(set(shown_lines)) == len(shown_lines) and titles
    # the top says what can be applied for on that day: the engine's open total, counted once
    summary = summary_html(at)
    assert "现在可以申请" in summary and money(report.total_in_effect, "zh") in summary
    assert report.total_in_effect == Decimal("32000.00")  # the open 2020 refund (12,000) and rent (20,000)
    body = results_html(at)
    assert "现在可以申请 · " in body and "同一笔钱，只计一次" in body
    assert refund.title.zh in body  # folded under the open refund, starting in May
    assert not internal_names().search(page_text(at))


def test_caterer_period_view_counts_every_benefit_once_with_its_own_period():
    at = fill(start(), BASICS + CATERER)
    run(at.radio(key="when").set_value("period"))
    assert not any(d.key == "on" for d in at.date_input)  # the day matters only for "now"
    report = at.session_state["report"]
    summary = summary_html(at)
    assert "政策有效期内本可享受" in summary and money(report.total_amount, "zh") in summary
    assert report.total_amount == Decimal("44000.00")
    refund_line = next(x for x in lines(at) if "24,000.00元" in x)
    assert "执行期：2020-05-19 至 2020-12-31" in refund_line and "已于 2020-12-31 截止" in refund_line
    body = results_html(at)
    card = body[body.index(report.get(REFUND_ID).title.zh):]
    assert "上年度实际缴纳失业保险费 × 100%" in card and "24,000 × 100% = 24,000.00元" in card
    assert "石人社字〔2020〕39号" in card and '<mark class="key">' in card


def test_today_nothing_expired_is_called_open():
    at = fill(start(), BASICS + CATERER)
    report = at.session_state["report"]
    assert report.as_of == dt.date.today()
    assert all(r.window != "open" for r in report.results if r.rule_id.startswith("sjz."))  # 2020 measures
    page = page_text(at)
    assert "现在没有确定可以申请的资金" in page
    assert "现在可以申请 · " not in results_html(at) and "执行中（现在可申请）" not in page
    assert "请向受理部门确认" in page  # measures whose end is not stated: shown apart, to confirm
    assert "已截止" in summary_html(at) and "政策有效期内我本可以享受什么" in summary_html(at)
    for line in lines(at):
        assert "可申请" not in line, line


def test_a_monthly_amount_is_its_own_line_and_not_in_the_total():
    at = fill(start(), BASICS)
    run(at.radio(key="when").set_value("period"))
    before = at.session_state["report"].total_amount
    fill(at, [("graduate_interns", "4"), ("intern_retention_rate_pct", "60"), ("local_minimum_wage_monthly", "1900")])
    assert any("5,320.00元/月" in x for x in lines(at))
    assert at.session_state["report"].total_amount == before
    assert "按月、按年计发的" in summary_html(at)


# ---------------------------------------------------------------- the questions


def test_maybes_are_grouped_by_the_deciding_question_in_the_forms_order():
    at = fill(start(), BASICS)
    facts = default_rules().facts
    body = results_html(at)
    heads = [text(h) for h in re.findall(r'<div class="mq-head">(.*?)</div>', body)]
    assert heads, "undetermined money measures are grouped by question"
    asked = [w.key[2:] for lst in (at.radio, at.text_input, at.selectbox) for w in lst
             if w.key and w.key.startswith("q_") and w.key[2:] not in dict(BASICS)]
    form_order = [facts[f].zh for f in sorted(asked, key=lambda f: _position(at, f))]
    named = [next(lbl for lbl in form_order if h.startswith(f"“{lbl}”")) for h in heads
             if any(h.startswith(f"“{lbl}”") for lbl in form_order)]
    assert named == [x for x in form_order if x in named]  # the order the form asks in
    maybe = body[body.index('class="sec maybe"'):]
    assert not re.search(r"(?<![\d,])0\.00元", text(maybe))  # never "可能还有 0.00元"
    assert not re.search(r"(?<![\d,])0\.00元", summary_html(at))


def _position(at: AppTest, fact: str) -> int:
    return _walk_keys(at).index(f"q_{fact}")


def _walk_keys(at: AppTest):
    def walk(node):
        for child in getattr(node, "children", {}).values():
            if getattr(child, "key", None):
                yield child.key
            yield from walk(child)
    return list(walk(at._tree))


def test_an_answer_leaves_the_other_questions_where_they_are():
    """Answering a follow-up question moves no other one on the page (the browser then redraws only
    what changed), and the questions still read in the order the form ranks them."""
    at = fill(start(), BASICS)
    before = _paths(at)
    nexts = [k for k in before if k.startswith("q_") and k[2:] not in dict(BASICS)]
    top = default_rules().facts[nexts[0][2:]]
    answer(at, top.name, {"bool": True, "enum": top.values[0] if top.values else None}.get(top.type, "1"))
    after = _paths(at)
    assert top.name in [n for n in at.session_state["asked"]] and f"q_{top.name}" not in after
    facts = default_rules().facts
    shown_now = [k[2:] for k in after if k.startswith("q_") and k[2:] not in dict(BASICS)]
    first_new = next((i for i, f in enumerate(shown_now) if f"q_{f}" not in before), len(shown_now))
    above = [f"q_{f}" for f in shown_now[:first_new]]  # those ranked above any question newly shown
    assert above and all(after[k] == before[k] for k in above)
    ranked = [q.fact for q in question_order(at.session_state["report"], default_rules(),
                                             exclude=at.session_state["asked"]) if q.fact in facts]
    assert shown_now == [f for f in ranked if f in shown_now]


def _paths(at: AppTest) -> dict[str, tuple[int, ...]]:
    """Each keyed widget's place in the page: its index in each enclosing block."""
    out = {}

    def walk(node, path):
        for i, child in getattr(node, "children", {}).items():
            if getattr(child, "key", None):
                out[child.key] = (*path, i)
            walk(child, (*path, i))
    walk(at._tree, ())
    return out


def test_derived_facts_are_never_asked_and_amounts_are_read_as_typed():
    at = fill(start(), BASICS[:5] + [("employees", "400"), ("revenue", "300万")])
    assert at.session_state["values"]["revenue"] == Decimal("3000000")
    for _ in range(8):
        if any(b.key == "more_questions" for b in at.button):
            run(at.button(key="more_questions").click())
    keys = set(_walk_keys(at))
    for derived in ("q_rents_business_premises", "q_small_low_profit_enterprise", "q_size", "q_layoff_rate"):
        assert derived not in keys
    for typed, value in (("1.5亿", Decimal("150000000")), ("30万元", Decimal("300000")), ("3,000,000", 3000000)):
        run(at.text_input(key="q_revenue").input(typed))
        assert at.session_state["values"]["revenue"] == value
        assert not at.error


@pytest.mark.parametrize("fact,value,words", [
    ("employees", "abc", "应为整数"),
    ("employees", "-3", "不能小于0"),
    ("revenue", "三百万", "应为数字"),
    ("employees", "12.5", "应为整数"),
])
def test_invalid_numbers_show_an_error_next_to_the_field(fact, value, words):
    at = answer(start(), "province", "河北省")
    run(at.text_input(key=f"q_{fact}").input(value))
    errors = [e.value for e in at.error]
    assert any(words in e for e in errors), errors
    assert fact not in at.session_state["values"]  # treated as unknown meanwhile
    assert "有 1 项填写有误" in page_text(at)
    assert summary_html(at), "results are still shown"
    run(at.text_input(key=f"q_{fact}").input("12"))
    assert not any(words in e.value for e in at.error)
    assert at.session_state["values"][fact] == 12


def test_skipping_a_question_lists_it_as_answered_and_names_it_in_the_results():
    at = fill(start(), BASICS)
    answer(at, "rents_state_owned_premises", UNKNOWN)
    rent = at.session_state["report"].get(RENT_ID)
    assert rent.status == "undetermined" and "rents_state_owned_premises" in rent.missing
    assert not shown(at, "rents_state_owned_premises")  # moved to the answered list, asked no more
    assert "承租国有资产类经营用房：<b>不清楚</b>" in next(h for h in htmls(at) if 'class="answered"' in h)
    assert "edit_fact" in _walk_keys(at)


def test_skipping_a_number_with_the_checkbox():
    at = fill(start(), BASICS)
    answer(at, "rents_state_owned_premises", True)
    for _ in range(40):
        if any(c.key == "skip_monthly_rent" for c in at.checkbox):
            break
        run(at.button(key="more_questions").click())
    run(at.checkbox(key="skip_monthly_rent").check())
    rent = at.session_state["report"].get(RENT_ID)
    assert rent.status == "eligible" and rent.amount is None and "monthly_rent" in rent.amount_missing


def test_changing_an_answer():
    at = fill(start(), BASICS + [("rents_state_owned_premises", True), ("monthly_rent", "10000")])
    assert at.session_state["report"].get(RENT_ID).amount == Decimal("20000.00")
    answer(at, "monthly_rent", "1.2万")  # opened again through "change an answer"
    assert at.session_state["report"].get(RENT_ID).amount == Decimal("24000.00")


def test_why_not_is_shown_on_request():
    at = fill(start(), BASICS)
    run(at.radio(key="when").set_value("period"))
    fill(at, [("insured_employees", "40"), ("unemployment_claimants", "3")])  # layoff rate 7.5% > 5.5%
    refund = at.session_state["report"].get(REFUND_ID)
    assert refund.status == "ineligible"
    assert "高于5.5%" not in "".join(htmls(at))
    run(at.checkbox(key="show_ineligible").check())
    page = "\n".join(htmls(at))
    i = page.index(refund.title.zh)
    item = page[i:page.index("</li>", i)]
    assert "裁员率为7.5%，高于5.5%" in item
    assert "中小微企业裁员率不高于2019年度全国城镇调查失业率控制目标5.5%" in item  # the document's words
    assert "需裁员率不高于5.5%" in item


def test_place_names_without_suffix_are_understood():
    at = fill(start(), [("province", "河北省"), ("city", "石家庄")])
    assert at.session_state["values"]["city"] == "石家庄市"
    assert "已理解为：石家庄市" in page_text(at)


def test_downloads_are_offered_on_request():
    at = fill(start(), BASICS)
    assert not at.get("download_button")
    run(at.toggle(key="show_downloads").set_value(True))
    assert {b.key for b in at.get("download_button")} >= {"dl_html", "dl_csv"}


# ---------------------------------------------------------------- reset


def test_reset_clears_everything():
    at = fill(start(), BASICS + [("rents_state_owned_premises", True)])
    run(at.text_input(key="company_name").input("某某餐饮"))
    run(at.radio(key="when").set_value("period"))
    run(at.button(key="reset").click())
    for fact in ("province", "entity_type", "industry"):
        assert at.selectbox(key=f"q_{fact}").value is None
    for fact in ("city", "county", "employees", "revenue"):
        assert at.text_input(key=f"q_{fact}").value == ""
    assert at.text_input(key="company_name").value == ""
    assert at.radio(key="when").value == "now" and at.date_input(key="on").value == dt.date.today()
    assert at.session_state["values"] == {}
    kept = {k: v for k, v in at.session_state["answers"].items() if v not in (None, "", False)}
    assert set(kept) <= {"on", "when"} and kept.get("when", "now") == "now"
    assert not any('class="answered"' in h for h in htmls(at))
    assert "请先选择所在省份" in page_text(at)
    assert at.radio(key="lang").value == "zh"


# ---------------------------------------------------------------- English


def test_english_is_english_and_keeps_the_answers():
    at = fill(start(), BASICS + [("rents_state_owned_premises", True), ("monthly_rent", "10000"),
                                 ("insured_employees", "40"), ("unemployment_claimants", "2"),
                                 ("unemployment_insurance_paid", "24000")])
    run(at.radio(key="when").set_value("period"))
    run(at.radio(key="lang").set_value("en"))
    assert at.title[0].value == "Business support-policy calculator"
    assert at.selectbox(key="q_province").label == "Province"
    assert at.selectbox(key="q_province").value == "河北省"
    assert at.session_state["values"]["rents_state_owned_premises"] is True
    assert at.radio(key="when").options[1] == "What could I have had while each measure ran"
    page = page_text(at)
    assert "You could have had, while each measure ran" in page and "44,000.00 yuan" in page
    assert "Unemployment insurance paid last year × 100%" in "".join(htmls(at))
    marked = re.sub(r'<(span|blockquote) lang="zh-CN">.*?</\1>', " ", "\n".join(htmls(at)), flags=re.S)
    marked = re.sub(r"<style>.*?</style>", " ", marked, flags=re.S)
    cjk = re.findall(r".{15}[\u4e00-\u9fff]+.{15}", text(marked))
    assert not cjk, cjk[:5]
    run(at.radio(key="lang").set_value("zh"))
    assert at.selectbox(key="q_province").label == "所在省份"


# ---------------------------------------------------------------- other pages


def test_rule_browser_filters_and_shows_a_rule_without_internal_names():
    at = start()
    run(at.radio(key="page").set_value("browse"))
    total = len(default_rules())
    assert f"（目录共 {total} 项）" in page_text(at)
    run(at.text_input(key="rb_q").input("稳岗返还"))
    run(at.selectbox(key="rb_province").set_value("河北省"))
    ids = at.selectbox(key="rb_rule").options
    assert ids and len(ids) < total
    assert not internal_names().search(" ".join(ids))  # titles, not ids
    run(at.selectbox(key="rb_rule").set_value(REFUND_ID))
    page = page_text(at)
    assert "裁员率不高于5.5%" in page and "石人社字〔2020〕39号" in page
    assert "上年度实际缴纳失业保险费 × 100%" in page
    assert not internal_names().search(page)
    assert "rule_id" not in at.dataframe[0].value.columns and "编号" not in at.dataframe[0].value.columns
    run(at.selectbox(key="rb_province").set_value("四川省"))
    run(at.text_input(key="rb_q").input(""))
    run(at.multiselect(key="rb_kind").set_value(["money"]))


def test_answers_survive_a_visit_to_another_page():
    at = fill(start(), BASICS)
    run(at.text_input(key="company_name").input("某某餐饮"))
    run(at.radio(key="page").set_value("browse"))
    run(at.radio(key="page").set_value("form"))
    assert at.selectbox(key="q_industry").value == "catering"
    assert at.text_input(key="q_employees").value == "40"
    assert at.text_input(key="company_name").value == "某某餐饮"
    assert at.session_state["values"]["employees"] == 40


def test_batch_page_reads_chinese_labels_and_speaks_words():
    at = start()
    run(at.radio(key="page").set_value("batch"))
    csv = ("企业名称,所在省份,所在城市,主体类型,所属行业,从业人员,上年度营业收入,承租国有资产类经营用房,月租金\n"
           "甲餐馆,河北省,石家庄市,企业,餐饮业,40,300万,是,1万\n"
           "乙工厂,河北省,石家庄市,企业,工业,120,1.5亿,,\n"
           "丙旅行社,河北省,石家庄市,企业,旅游业,12,800000,否,\n"
           "丁饭店,河北省,石家庄市,企业,饮食业,12,800000,否,\n"
           "戊商店,河北省,石家庄市,企业,零售业,abc,3000000,,\n").encode("utf-8")
    run(at.file_uploader(key="batch_file").upload("companies.csv", csv, "text/csv"))
    run(at.date_input(key="batch_on").set_value(dt.date(2020, 3, 15)))
    run(at.button(key="batch_run").click())
    assert any("已完成 5 家企业" in s.value for s in at.success)
    frames = {_frame_name(d.value): d.value for d in at.dataframe}
    summary = frames["batch_summary"]
    assert list(summary["企业"]) == ["甲餐馆", "乙工厂", "丙旅行社"]  # 工业, 旅游业, 300万, 1.5亿 read
    assert summary.iloc[0]["确定金额（元）"] >= 20000  # the rent waiver at least
    bad = frames["batch_bad"]
    assert list(bad["企业"]) == ["丁饭店", "戊商店"]
    assert "是否为“餐饮业”" in bad["填写问题"].iloc[0] and "/" not in bad["填写问题"].iloc[0]
    assert "从业人员" in bad["填写问题"].iloc[1] and "应为整数" in bad["填写问题"].iloc[1]
    per_rule = frames["batch_per_rule"]
    assert list(per_rule.columns) == ["政策", "符合的企业数", "金额合计（元）"]
    everything = " ".join(str(v) for f in frames.values() for v in f.astype(str).values.ravel())
    everything += " " + " ".join(str(c) for f in frames.values() for c in f.columns)
    assert not internal_names().search(everything)
    assert {b.key for b in at.get("download_button")} >= {"batch_download", "batch_download_long", "batch_template"}


def _frame_name(frame) -> str:
    """Which table this is (AppTest does not give a dataframe's key)."""
    cols = set(frame.columns)
    return ("batch_columns" if "列名" in cols else "batch_bad" if "填写问题" in cols else
            "batch_per_rule" if "符合的企业数" in cols else "batch_summary" if "确定金额（元）" in cols else "other")


def test_batch_page_lists_the_columns():
    at = start()
    run(at.radio(key="page").set_value("batch"))
    columns = next(d.value for d in at.dataframe if _frame_name(d.value) == "batch_columns")
    assert "所属行业" in list(columns["列名"])
    industry = columns[columns["列名"] == "所属行业"].iloc[0]
    assert "餐饮业" in industry["可选值"] and "catering" not in industry["可选值"]


def test_batch_page_refuses_oversized_lists():
    at = start()
    run(at.radio(key="page").set_value("batch"))
    rows = "\n".join("河北省,石家庄市,企业,餐饮业,40,3000000" for _ in range(2100))
    data = ("所在省份,所在城市,主体类型,所属行业,从业人员,上年度营业收入\n" + rows + "\n").encode("utf-8")
    run(at.file_uploader(key="batch_file").upload("big.csv", data, "text/csv"))
    assert any("命令行" in e.value for e in at.error)


def test_rules_that_do_not_load_are_reported_not_crashed(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("seed: x\ndocuments: {}\nrules: [{id: BAD}]\n", "utf-8")
    monkeypatch.setenv("ELIGIBILITY_RULES_DIR", str(tmp_path))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert any("规则文件加载失败" in e.value for e in at.error)
