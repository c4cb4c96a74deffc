"""The public contract: typed reports with traces, three-valued verdicts, amounts counted once."""

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from eligibility import Company, CompanyValidationError, Report, evaluate, load_rules

ROOT = Path(__file__).resolve().parent.parent

# A catering SME in 长安区 renting state-owned premises, worked by hand against 石人社字〔2020〕39号:
# 40 insured staff, 2 drew unemployment benefit -> layoff rate 5% <= 5.5%, refund 100% of 24,000元.
CATERING_SME = {
    "province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
    "industry": "catering", "employees": 40, "revenue": 3_000_000, "insured_employees": 40,
    "unemployment_claimants": 2, "unemployment_insurance_paid": 24_000, "rents_state_owned_premises": True,
    "monthly_rent": 10_000, "affected_by_epidemic": True,
}


@pytest.fixture(scope="module")
def report(rules) -> Report:
    return evaluate(CATERING_SME, on=dt.date(2020, 6, 1), rules=rules)


def test_report_is_typed_and_reproducible(report, rules):
    assert isinstance(report, Report)
    assert report.rules_version == rules.version
    assert report.input["industry"] == "catering"
    assert report.derived["size"] == "small"
    assert report.derived["layoff_rate"] == Decimal(5)
    again = evaluate(report.input, on=report.as_of, rules=rules)
    assert again.model_dump() == report.model_dump()


def test_sme_refund_amount_and_trace(report):
    r = report.get("sjz.ui_refund.sme_relaxed")
    assert r.status == "eligible" and r.in_effect
    assert r.amount == Decimal("24000.00")
    assert r.amount_formula and "100%" in r.amount_formula
    leaves = [t for t in r.trace.walk() if not t.children]
    assert any(t.node.fact == "layoff_rate" and t.actual == Decimal(5) for t in leaves)
    assert "5.5%" in r.source.quote


def test_ineligible_reason_says_what_failed(rules):
    company = {**CATERING_SME, "unemployment_claimants": 3}  # 7.5%
    r = evaluate(company, on="2020-06-01", rules=rules).get("sjz.ui_refund.sme_relaxed")
    assert r.status == "ineligible"
    text = " ".join(r.reasons("zh"))
    assert "裁员率为7.5%，高于5.5%" in text
    assert "原文" in text


def test_unknown_fact_makes_undetermined_and_is_named(rules):
    company = {k: v for k, v in CATERING_SME.items() if k != "unemployment_claimants"}
    r = evaluate(company, on="2020-06-01", rules=rules).get("sjz.ui_refund.sme_relaxed")
    assert r.status == "undetermined"
    assert r.missing == ["unemployment_claimants"]
    assert "领取失业保险金人数" in r.reasons("zh")[0]


def test_overlapping_refunds_counted_once(report, rules):
    a = report.get("sjz.ui_refund.sme_relaxed")
    paying = [r for r in report.results if r.status == "eligible" and r.amount is not None]
    for group in rules.exclusion_groups:
        assert sum(1 for r in paying if r.rule_id in group and r.counted_in_total) <= 1
    assert a.counted_in_total or any(r.counted_in_total and a.rule_id in g and r.rule_id in g
                                     for g in rules.exclusion_groups for r in paying)
    assert report.total_amount == sum(r.amount for r in report.results if r.counted_in_total)


def test_windows_follow_the_evaluation_date(rules):
    before = evaluate(CATERING_SME, on="2020-01-01", rules=rules).get("sjz.ui_refund.sme_relaxed")
    during = evaluate(CATERING_SME, on="2020-12-31", rules=rules).get("sjz.ui_refund.sme_relaxed")
    after = evaluate(CATERING_SME, on="2021-01-01", rules=rules).get("sjz.ui_refund.sme_relaxed")
    assert (before.window, during.window, after.window) == ("upcoming", "open", "closed")
    assert after.status == "eligible"  # a closed window does not change the verdict, only in_effect
    assert not after.in_effect


def test_invalid_company_names_fields():
    with pytest.raises(CompanyValidationError) as e:
        evaluate({"employees": -3, "industry": "餐饮"})
    assert {i.where for i in e.value.issues} == {"employees", "industry"}


def test_company_object_and_mapping_agree(rules):
    a = evaluate(Company(**CATERING_SME), on="2020-06-01", rules=rules)
    b = evaluate(CATERING_SME, on="2020-06-01", rules=rules)
    assert a.model_dump() == b.model_dump()


def test_advisers_can_pass_their_own_rules_folder(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "mine.yaml").write_bytes((ROOT / "tests/broken_rules/_valid.yaml.txt").read_bytes())
    own = load_rules(folder, seeds_dir=ROOT / "seeds")
    rep = evaluate({"province": "河北省", "layoff_rate": 3, "unemployment_insurance_paid": 1000}, on="2020-06-01",
                   rules=own)
    assert [r.rule_id for r in rep.results] == ["test.rule"]
    assert rep.results[0].amount == Decimal("1000.00")


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "eligibility.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_cli_check_json_contract(tmp_path):
    path = tmp_path / "company.json"
    path.write_text(json.dumps(CATERING_SME, ensure_ascii=False), "utf-8")
    out = _cli("check", str(path), "--on", "2020-03-15", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["as_of"] == "2020-03-15"
    assert isinstance(data["derived"], dict)
    keys = {"rule_id", "title", "status", "in_effect", "amount", "amount_formula", "period", "source", "missing",
            "reasons"}
    for r in data["results"]:
        assert keys <= set(r)
        assert r["status"] in ("eligible", "ineligible", "undetermined")
        assert isinstance(r["in_effect"], bool)
        assert set(r["period"]) >= {"start", "end"} and set(r["source"]) >= {"seed", "document", "quote"}
        assert r["amount"] is None or isinstance(r["amount"], (int, float))
    sme = next(r for r in data["results"] if r["rule_id"] == "sjz.ui_refund.sme_relaxed")
    assert sme["amount"] == 24000 and sme["in_effect"] is False  # 2020-03-15 is before the notice


def test_cli_text_is_chinese():
    out = _cli("check", "-", "--on", "2020-06-01", stdin=json.dumps(CATERING_SME, ensure_ascii=False))
    assert out.returncode == 0, out.stderr
    assert "符合" in out.stdout and "元" in out.stdout


def test_cli_invalid_input_exit_2_one_line_per_field():
    out = _cli("check", "-", stdin=json.dumps({"employees": "many", "revenue": "-1", "provnce": "河北省"}))
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 3
    assert {line.split(":")[0] for line in lines} == {"employees", "revenue", "provnce"}


def test_cli_bad_json_and_missing_file():
    assert _cli("check", "-", stdin="{not json").returncode == 2
    assert _cli("check", "/no/such/file.json").returncode == 2


def test_stored_report_replays_identically(tmp_path):
    path = tmp_path / "company.json"
    path.write_text(json.dumps(CATERING_SME, ensure_ascii=False), "utf-8")
    out = _cli("check", str(path), "--on", "2020-06-01", "--format", "json")
    stored = tmp_path / "report.json"
    stored.write_text(out.stdout, "utf-8")
    data = json.loads(out.stdout)
    assert data["tool_version"] and data["rules_version"] and data["input"]["industry"] == "catering"
    ok = _cli("replay", str(stored))
    assert ok.returncode == 0 and "identical" in ok.stdout, ok.stderr
    data["results"][0]["status"] = "tampered"
    stored.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    bad = _cli("replay", str(stored))
    assert bad.returncode == 1 and "results" in bad.stderr


def test_same_input_gives_byte_identical_json(tmp_path):
    path = tmp_path / "company.json"
    path.write_text(json.dumps(CATERING_SME, ensure_ascii=False), "utf-8")
    a = _cli("check", str(path), "--on", "2020-06-01", "--format", "json").stdout
    b = _cli("check", str(path), "--on", "2020-06-01", "--format", "json").stdout
    assert a == b and a


def test_total_in_effect_counts_the_best_benefit_open_on_the_date(rules):
    # On 2020-03-01 the 100% SME refund (from 2020-05-19) is not yet open, but the 50% refund of
    # 2020-02-05 is: the money open that day includes 24,000 × 50% = 12,000元 for the refund group.
    with_refund = evaluate(CATERING_SME, on="2020-03-01", rules=rules)
    without = evaluate({k: v for k, v in CATERING_SME.items() if k != "unemployment_insurance_paid"},
                       on="2020-03-01", rules=rules)
    assert with_refund.get("sjz.ui_refund.sme_relaxed").counted_in_total
    assert with_refund.total_in_effect - without.total_in_effect == Decimal(12_000)
    assert with_refund.total_amount - without.total_amount == Decimal(24_000)


def test_equality_reason_does_not_repeat_itself(rules):
    # (without the city and county: 石家庄市 in 河南省 is refused as a contradiction)
    henan = {**CATERING_SME, "province": "河南省", "city": None, "county": None}
    r = evaluate(henan, on="2020-06-01", rules=rules).get("sjz.ui_refund.sme_relaxed")
    assert r.status == "ineligible"
    assert "所在省份为河南省（要求为河北省）" in " ".join(r.reasons("zh"))
