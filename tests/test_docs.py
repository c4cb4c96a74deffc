"""docs/rules.md is generated from the rule files and must be current; conditions read as Chinese."""


import pytest
from typer.testing import CliRunner

from eligibility.catalogue_docs import DEFAULT_OUT, amount_text, condition_text, render, rule_entry
from eligibility.cli import app
from eligibility.conditions import parse_condition
from eligibility.facts import default_facts


def _cond(raw):
    issues = []
    node = parse_condition(raw, default_facts(), "$", issues)
    assert not issues, issues
    return node


def test_docs_rules_md_is_current(rules):
    """Regenerate in memory and compare with the committed file (`eligibility rules docs` rewrites it)."""
    committed = DEFAULT_OUT.read_text("utf-8") if DEFAULT_OUT.is_file() else ""
    assert render(rules) == committed, "docs/rules.md is out of date: run `eligibility rules docs`"


def test_rendering_is_deterministic(rules):
    assert render(rules) == render(rules)


def test_every_rule_has_an_entry(rules):
    text = render(rules)
    for r in rules:
        assert f"`{r.id}`" in text


@pytest.mark.parametrize("raw, words", [
    ({"all": [{"fact": "entity_type", "eq": "enterprise"},
              {"fact": "size", "in": ["medium", "small", "micro"]},
              {"fact": "layoff_rate", "le": 5.5}]},
     "主体类型为企业；企业规模属于中型、小型、微型；裁员率不高于5.5%"),
    ({"any": [{"fact": "vat_small_scale_taxpayer", "eq": True}, {"fact": "entity_type", "eq": "individual_business"}]},
     "满足其一：增值税小规模纳税人；或主体类型为个体工商户"),
    ({"all": [{"fact": "entity_type", "ne": "public_institution"},
              {"not": {"all": [{"fact": "entity_type", "eq": "enterprise"}, {"fact": "size", "in": ["small"]}]}}]},
     "主体类型不为机关事业单位；不属于以下情形：（主体类型为企业，且企业规模属于小型）"),
    ({"not": {"fact": "serious_dishonesty", "eq": True}}, "列入严重失信名单：否"),
    ({"all": [{"fact": "loss_in_2019", "eq": False},
              {"any": [{"fact": "revenue_change_pct", "le": -50}, {"fact": "insured_employees", "ge": 100}]}]},
     "2019年度经营亏损：否；（营业收入同比变化不高于-50%，或上年度月均参保职工人数不低于100人）"),
    ({"fact": "revenue", "lt": 3000000}, "上年度营业收入低于3,000,000元"),
])
def test_condition_in_words(raw, words):
    assert condition_text(_cond(raw)) == words


def test_an_entry_names_who_what_how_much_when_where_and_source(rules):
    rule = rules.by_id["sjz.si_exemption.sme_2020"]
    text = "\n".join(rule_entry(rule))
    for words in ("**谁可以享受**：主体类型为企业；企业规模属于中型、小型、微型", "**金额**：", "× 5",
                  "**时间**：2020-02-01 起，至 2020-06-30", "**地区**：河北省 石家庄市", "**部门**：",
                  "**力度**：符合条件即可享受", "**依据**：", "汇编第18篇", "> 一、减免期间和范围"):
        assert words in text, words
    assert "单位每月养老保险缴费" in amount_text(rule)


def test_cli_docs_check(tmp_path, rules):
    out = tmp_path / "rules.md"
    runner = CliRunner()
    res = runner.invoke(app, ["rules", "docs", "--out", str(out), "--check"])
    assert res.exit_code == 1
    res = runner.invoke(app, ["rules", "docs", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text("utf-8") == render(rules)
    res = runner.invoke(app, ["rules", "docs", "--out", str(out), "--check"])
    assert res.exit_code == 0, res.output
    out.write_text(out.read_text("utf-8") + "hand edit\n", "utf-8")
    res = runner.invoke(app, ["rules", "docs", "--out", str(out), "--check"])
    assert res.exit_code == 1
    assert "not current" in res.output
