"""The Streamlit app driven as a person would use it, through streamlit.testing.v1.AppTest and widget keys.

The app runs with the bundled rules (ELIGIBILITY_RULES_DIR is cleared). Follow-up questions are only
answered once the app shows them: the helper clicks "more questions" like a person would.
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

APP = Path(__file__).resolve().parent.parent / "ui" / "app.py"
RENT_ID = "sjz.rent_waiver.state_owned_crowded_sectors"  # 免收2月份房租，减半收取3月份、4月份房租
REFUND_ID = "sjz.ui_refund.sme_relaxed"  # 稳岗返还标准提高到上年度缴纳失业保险费的100%
UNKNOWN = "__unknown__"

BASICS = [("province", "河北省"), ("city", "石家庄市"), ("county", "长安区"), ("entity_type", "enterprise"),
          ("industry", "catering"), ("employees", "40"), ("revenue", "3000000")]


@pytest.fixture(autouse=True)
def _bundled_rules(monkeypatch):
    monkeypatch.delenv("ELIGIBILITY_RULES_DIR", raising=False)


def start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at: AppTest, fact: str) -> bool:
    key = f"q_{fact}"
    return any(w.key == key for lst in (at.selectbox, at.radio, at.text_input) for w in lst)


def answer(at: AppTest, fact: str, value) -> AppTest:
    """Answer one question, clicking 'more questions' until the app asks it."""
    for _ in range(40):
        if shown(at, fact):
            break
        assert any(b.key == "more_questions" for b in at.button), f"{fact} never asked"
        at.button(key="more_questions").click().run()
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
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def fill_basics(at: AppTest) -> AppTest:
    for fact, value in BASICS:
        answer(at, fact, value)
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.label for e in at.expander]
    parts += [x.value for x in at.error] + [x.value for x in at.info] + [x.value for x in at.warning]
    return "\n".join(str(p) for p in parts)


RESULT = re.compile(r'<details class="res (\w+)"><summary>(.*?)</summary>(.*?)</details>', re.S)


def results(at: AppTest) -> list[tuple[str, str, str]]:
    """(status, summary line, card html) of every result shown."""
    out = []
    for m in at.markdown:
        out += [(st_, html.unescape(re.sub(r"<[^>]+>", "", summ)), card) for st_, summ, card in RESULT.findall(m.value)]
    return out


def summary_for(at: AppTest, title: str) -> str:
    for _, summ, _ in results(at):
        if summ.startswith(title):
            return summ
    raise AssertionError(f"no result line for {title}")


def card_for(at: AppTest, title: str) -> str:
    for _, summ, card in results(at):
        if summ.startswith(title):
            return card
    raise AssertionError(f"no result card for {title}")


# ---------------------------------------------------------------- first screen


def test_first_screen_asks_the_basics_in_chinese():
    at = start()
    for fact in ("province", "city", "county", "entity_type", "industry", "employees", "revenue", "total_assets"):
        assert shown(at, fact), fact
    assert at.radio(key="lang").value == "zh"
    assert at.title[0].value == "企业扶持政策计算器"
    assert at.date_input(key="on").value == dt.date.today()
    assert at.radio(key="page").value == "form"
    assert "请先在左侧选择所在省份" in texts(at)


# ---------------------------------------------------------------- the catering SME in 石家庄市长安区


def test_catering_sme_renting_state_premises_gets_rent_waiver_and_refund():
    rules = default_rules()
    assert RENT_ID in rules.by_id and REFUND_ID in rules.by_id
    at = fill_basics(start())
    assert not shown(at, "total_assets")  # catering is sized by staff and revenue only
    answer(at, "rents_state_owned_premises", True)
    answer(at, "monthly_rent", "10,000")
    answer(at, "insured_employees", "40")
    answer(at, "unemployment_claimants", "2")  # layoff rate 5% ≤ 5.5%
    answer(at, "unemployment_insurance_paid", "24000")

    report = at.session_state["report"]
    assert report.derived["size"] == "small"
    rent, refund = report.get(RENT_ID), report.get(REFUND_ID)
    assert rent.status == "eligible" and rent.amount == Decimal("20000.00")  # 1 month free + 2 halved
    assert refund.status == "eligible" and refund.amount == Decimal("24000.00")  # 100% of 24,000
    # default date is today: both windows closed, still shown (back-claims) with the window
    for r, amount in ((rent, "20,000.00元"), (refund, "24,000.00元")):
        line = summary_for(at, r.title.zh)
        assert amount in line and line.endswith("— 符合"), line
    card = card_for(at, refund.title.zh)
    assert "上年度实际缴纳失业保险费 × 100%" in card and "24,000 × 100% = 24,000.00元" in card
    assert "石人社字〔2020〕39号" in card and '<mark class="key">' in card
    assert "符合条件即可享受" in card and "2020-12-31" in card
    rent_card = card_for(at, rent.title.zh)
    assert "10,000" in rent_card and "= 20,000.00元" in rent_card
    # the total counts overlapping benefits once, and the app shows the engine's figure
    counted = [r for r in report.results if r.counted_in_total]
    assert report.total_amount == sum(r.amount for r in counted)
    for group in rules.exclusion_groups:
        assert sum(1 for r in counted if r.rule_id in group) <= 1
    assert refund.counted_in_total
    assert at.metric[0].value == money(report.total_amount, "zh")
    assert report.total_amount >= Decimal("44000")
    # downloads are offered
    assert {b.key for b in at.get("download_button")} >= {"dl_html", "dl_csv", "dl_json"}


def test_evaluation_date_moves_a_measure_into_open_now():
    at = fill_basics(start())
    answer(at, "rents_state_owned_premises", True)
    answer(at, "monthly_rent", "10000")
    at.date_input(key="on").set_value(dt.date(2020, 3, 15)).run()
    assert not at.exception
    report = at.session_state["report"]
    assert report.as_of == dt.date(2020, 3, 15)
    rent = report.get(RENT_ID)
    assert rent.window == "open" and rent.status == "eligible"
    assert report.total_in_effect >= rent.amount
    assert at.metric[1].value == money(report.total_in_effect, "zh")


def test_default_view_is_not_empty_when_everything_closed():
    at = fill_basics(start())
    at.date_input(key="on").set_value(dt.date(2035, 12, 31)).run()
    assert not at.exception
    report = at.session_state["report"]
    from eligibility import present as P

    groups = P.by_window(report)
    if not any(r.status != "ineligible" for r in groups["open"]):
        assert "在评估日期没有仍在执行期内" in texts(at)
    assert any(status in ("eligible", "undetermined") for status, _, _ in results(at))  # results are listed


# ---------------------------------------------------------------- skipping and errors


def test_skipping_a_question_gives_undetermined_results_that_name_it():
    at = fill_basics(start())
    answer(at, "rents_state_owned_premises", UNKNOWN)
    report = at.session_state["report"]
    rent = report.get(RENT_ID)
    assert rent.status == "undetermined" and "rents_state_owned_premises" in rent.missing
    # the question stays on screen answered 不清楚 and is not asked again below
    assert at.radio(key="q_rents_state_owned_premises").value == UNKNOWN
    assert sum(1 for w in at.radio if w.key == "q_rents_state_owned_premises") == 1
    at.checkbox(key="all_closed").check().run() if any(c.key == "all_closed" for c in at.checkbox) else None
    label = "承租国有资产类经营用房"
    assert "可能符合，还需：" in summary_for(at, rent.title.zh) and label in summary_for(at, rent.title.zh)
    card = card_for(at, rent.title.zh)
    assert "还需补充" in card and label in card


def test_skipping_a_number_with_the_checkbox():
    at = fill_basics(start())
    answer(at, "rents_state_owned_premises", True)
    for _ in range(40):
        if any(c.key == "skip_monthly_rent" for c in at.checkbox):
            break
        at.button(key="more_questions").click().run()
    at.checkbox(key="skip_monthly_rent").check().run()
    assert not at.exception
    rent = at.session_state["report"].get(RENT_ID)
    assert rent.status == "eligible" and rent.amount is None and "monthly_rent" in rent.amount_missing
    assert at.text_input(key="q_monthly_rent").disabled


def test_why_not_names_the_failed_condition_and_what_would_change_it():
    at = fill_basics(start())
    answer(at, "insured_employees", "40")
    answer(at, "unemployment_claimants", "3")  # layoff rate 7.5% > 5.5%
    refund = at.session_state["report"].get(REFUND_ID)
    assert refund.status == "ineligible"
    key = f"inel_{refund.window}"
    assert not any("高于5.5%" in m.value for m in at.markdown)  # the why-not list is shown on request
    at.checkbox(key=key).check().run()
    assert not at.exception
    page = "\n".join(m.value for m in at.markdown)
    i = page.index(refund.title.zh)
    item = page[i:page.index("</ul>", i)]
    assert "裁员率为7.5%，高于5.5%" in item
    assert "中小微企业裁员率不高于2019年度全国城镇调查失业率控制目标5.5%" in item  # the document's words
    assert "需裁员率不高于5.5%" in item


@pytest.mark.parametrize("fact,value,words", [
    ("employees", "abc", "应为整数"),
    ("employees", "-3", "不能小于0"),
    ("revenue", "300万", "不要用“万”"),
    ("employees", "12.5", "应为整数"),
])
def test_invalid_numbers_show_an_error_next_to_the_field(fact, value, words):
    at = start()
    answer(at, "province", "河北省")
    at.text_input(key=f"q_{fact}").input(value).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(words in e for e in errors), errors
    assert fact not in at.session_state["values"]  # treated as unknown meanwhile
    assert "有 1 项填写有误" in texts(at)
    assert at.metric, "results are still shown"
    # fixing it clears the error
    at.text_input(key=f"q_{fact}").input("12").run()
    assert not any(words in e.value for e in at.error)
    assert at.session_state["values"][fact] == 12


def test_place_names_without_suffix_are_understood():
    at = start()
    answer(at, "province", "河北省")
    answer(at, "city", "石家庄")
    assert at.session_state["values"]["city"] == "石家庄市"
    assert "已理解为：石家庄市" in texts(at)


# ---------------------------------------------------------------- English


def test_english_switch_keeps_the_answers():
    at = fill_basics(start())
    answer(at, "rents_state_owned_premises", True)
    at.radio(key="lang").set_value("en").run()
    assert not at.exception
    assert at.title[0].value == "Business support-policy calculator"
    assert at.selectbox(key="q_province").label == "Province"
    assert at.selectbox(key="q_province").value == "河北省"
    assert at.session_state["values"]["rents_state_owned_premises"] is True
    all_text = texts(at)
    assert "Expected money in total" in [m.label for m in at.metric][0]
    assert "— eligible" in all_text and "an entitlement once the conditions are met" in all_text
    assert "可能符合，还需" not in all_text and "执行中（现在可申请）" not in all_text
    at.radio(key="lang").set_value("zh").run()
    assert at.selectbox(key="q_province").label == "所在省份"


# ---------------------------------------------------------------- other pages


def test_rule_browser_filters_and_shows_a_rule():
    at = start()
    at.radio(key="page").set_value("browse").run()
    assert not at.exception
    total = len(default_rules())
    assert f"（目录共 {total} 项）" in texts(at)
    at.text_input(key="rb_q").input("稳岗返还").run()
    at.selectbox(key="rb_province").set_value("河北省").run()
    assert not at.exception
    ids = at.selectbox(key="rb_rule").options
    assert ids and len(ids) < total
    if REFUND_ID in default_rules().by_id:
        at.selectbox(key="rb_rule").set_value(REFUND_ID).run()
        page = texts(at)
        assert "裁员率不高于5.5%" in page and "石人社字〔2020〕39号" in page
        assert "上年度实际缴纳失业保险费 × 100%" in page
    at.selectbox(key="rb_province").set_value("四川省").run()
    at.text_input(key="rb_q").input("").run()
    at.multiselect(key="rb_kind").set_value(["money"]).run()
    assert not at.exception


def test_answers_survive_a_visit_to_another_page():
    at = fill_basics(start())
    at.radio(key="page").set_value("browse").run()
    at.radio(key="page").set_value("form").run()
    assert not at.exception
    assert at.selectbox(key="q_industry").value == "catering"
    assert at.text_input(key="q_employees").value == "40"
    assert at.session_state["values"]["employees"] == 40


def test_batch_page():
    at = start()
    at.radio(key="page").set_value("batch").run()
    assert not at.exception
    csv = ("企业名称,所在省份,所在城市,主体类型,所属行业,从业人员,上年度营业收入,承租国有资产类经营用房,月租金\n"
           "甲餐馆,河北省,石家庄市,企业,餐饮业,40,3000000,是,10000\n"
           "乙商店,河北省,石家庄市,企业,零售业,abc,3000000,,\n"
           "丙公司,河南省,郑州市,企业,软件和信息技术服务业,12,800000,否,\n").encode("utf-8")
    at.file_uploader(key="batch_file").upload("companies.csv", csv, "text/csv").run()
    assert not at.exception, [e.value for e in at.exception]
    at.date_input(key="batch_on").set_value(dt.date(2020, 3, 15)).run()
    at.button(key="batch_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("已完成 3 家企业" in s.value for s in at.success)
    frames = [d.value for d in at.dataframe]
    summary = frames[0]
    assert list(summary["企业"]) == ["甲餐馆", "丙公司"]
    first = summary.iloc[0]
    assert first["预计金额（元）"] >= 20000  # the rent waiver at least
    bad = frames[1]
    assert list(bad["企业"]) == ["乙商店"] and "从业人员" in bad["errors"].iloc[0]
    per_rule = frames[2]
    assert RENT_ID in set(per_rule["rule_id"]) and (per_rule["符合的企业数"] >= 1).all()
    assert {b.key for b in at.get("download_button")} >= {"batch_download", "batch_download_long"}


def test_batch_page_refuses_oversized_lists():
    at = start()
    at.radio(key="page").set_value("batch").run()
    rows = "\n".join("河北省,石家庄市,企业,餐饮业,40,3000000" for _ in range(2100))
    csv = ("所在省份,所在城市,主体类型,所属行业,从业人员,上年度营业收入\n" + rows + "\n").encode("utf-8")
    at.file_uploader(key="batch_file").upload("big.csv", csv, "text/csv").run()
    assert not at.exception
    assert any("命令行" in e.value for e in at.error)


def test_rules_that_do_not_load_are_reported_not_crashed(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("seed: x\ndocuments: {}\nrules: [{id: BAD}]\n", "utf-8")
    monkeypatch.setenv("ELIGIBILITY_RULES_DIR", str(tmp_path))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert any("规则文件加载失败" in e.value for e in at.error)
