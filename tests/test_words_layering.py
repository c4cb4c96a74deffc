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


def test_evaluating_loads_no_wording_module_and_words_come_from_the_named_backend(tmp_path):
    """The engine reaches its words only through models.WORDS_BACKEND: evaluating loads no wording module,
    asking for reasons loads the default one, and a module named in its place says them instead."""
    import subprocess
    import sys
    import textwrap

    (tmp_path / "plain_words.py").write_text(textwrap.dedent("""
        def reasons(result, lang="zh"):
            return [f"{lang}:{result.status}"]

        def report_dict(report, lang="zh"):
            return {"n": len(report.results), "lang": lang}
    """), "utf-8")
    script = textwrap.dedent("""
        import sys
        from eligibility import evaluate, models
        report = evaluate({"province": "河北省", "city": "石家庄市", "industry": "catering"}, on="2020-03-15")
        wording = {"eligibility.explain", "eligibility.present", "eligibility.words"}
        print(sorted(wording & set(sys.modules)))
        first = report.results[0]
        print(first.reasons("zh")[0] != "zh:" + first.status, "eligibility.explain" in sys.modules)
        models.WORDS_BACKEND = "plain_words"
        print(first.reasons("en"), report.as_dict("en") == {"n": len(report.results), "lang": "en"})
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)}, check=True).stdout.split("\n")
    assert out[0] == "[]", out  # nothing of the words loaded by evaluate()
    assert out[1] == "True True", out  # the default backend says them, loaded on first use
    assert out[2].startswith("['en:") and out[2].endswith("True"), out
