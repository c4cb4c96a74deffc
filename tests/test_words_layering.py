"""Words in one place (issue 15): the wording modules take the fact dictionary they are given (a rule
set's, or the one a result was judged with) instead of fetching the global one."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "eligibility"
# that the engine imports no wording module is tests/test_layout.py's (the whole import graph, batch package too)


def test_the_wording_modules_do_not_fetch_the_global_fact_dictionary():
    for module in ("explain", "present"):
        assert "default_facts" not in (PACKAGE / f"{module}.py").read_text("utf-8"), module
    # catalogue_docs: once, for its public functions called without a rule set (render passes its facts)
    assert (PACKAGE / "catalogue_docs.py").read_text("utf-8").count("default_facts()") == 1


def test_a_report_words_itself_with_the_fact_dictionary_it_was_made_with():
    import dataclasses

    from eligibility import evaluate, load_rules
    from eligibility.explain import summary_text

    rules = load_rules()
    mine = type(rules.facts)(rules.facts)
    mine["employees"] = dataclasses.replace(mine["employees"], zh="职工总数（自定义）")
    custom = type(rules)(rules.rules, mine, rules.version, rules.files, rules.seeds)
    report = evaluate({"province": "河北省", "city": "石家庄市", "entity_type": "enterprise", "industry": "catering"},
                      on="2020-03-15", rules=custom)
    assert report.facts is mine and all(r.facts is mine for r in report.results)
    assert "职工总数（自定义）" in " ".join(x for r in report.results for x in r.reasons("zh"))
    assert "职工总数（自定义）" in summary_text(report, "zh")
