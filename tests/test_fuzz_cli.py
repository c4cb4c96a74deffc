"""Every bad input to the command line exits 2 with one line per problem, never a traceback; and every
error a library caller can cause is an EligibilityError naming the argument or field."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from eligibility import Company, EligibilityError, evaluate, load_rules
from eligibility.cli import app

ROOT = Path(__file__).resolve().parent.parent
ON = "2020-06-01"
OK = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise", "industry": "catering"}


def _run(args: list[str]):
    return CliRunner().invoke(app, args)


def _bad(res, *words: str) -> None:
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    for w in words:
        assert w in res.output, res.output


@pytest.mark.parametrize("text,words", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"employees": ' + "9" * 5000 + "}", "4300 digits"),
    ("{bad json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"employees": "abc", "revenue": "1,5"}', "employees:"),
    ('{"city": "石家桩市", "province": "河北省"}', "did you mean '石家庄市'"),
    ('{"city": "\\udc80"}', "invalid character"),
])
def test_check_refuses_bad_json_and_bad_facts(tmp_path, text, words):
    src = tmp_path / "c.json"
    src.write_text(text, "utf-8")
    _bad(_run(["check", str(src), "--on", ON]), words)


def test_check_names_every_bad_field_on_its_own_line(tmp_path):
    src = tmp_path / "c.json"
    src.write_text('{"employees": "abc", "revenue": "1,5", "province": "火星"}', "utf-8")
    res = _run(["check", str(src), "--on", ON])
    _bad(res)
    assert sorted(line.split(":")[0] for line in res.output.strip().splitlines()) == ["employees", "province", "revenue"]


@pytest.mark.parametrize("args,words", [
    (["--lang", "fr"], "--lang"),
    (["--on", "2020-13-01"], "--on"),
    (["--format", "xml"], "--format"),
])
def test_check_options(tmp_path, args, words):
    src = tmp_path / "c.json"
    src.write_text(json.dumps(OK), "utf-8")
    _bad(_run(["check", str(src), *args]), words)


@pytest.mark.parametrize("stored,words", [
    ({"input": OK, "as_of": "not-a-date"}, "as_of"),
    ({"input": [1], "as_of": ON}, "expected a mapping"),
    ({"input": {"employees": "abc"}, "as_of": ON}, "employees"),
    ({"input": OK, "as_of": ON, "lang": "fr"}, "lang"),
    ([1, 2], "not a stored report"),
    ({"as_of": ON}, "not a stored report"),
])
def test_replay_refuses_a_bad_report(tmp_path, stored, words):
    src = tmp_path / "r.json"
    src.write_text(json.dumps(stored), "utf-8")
    _bad(_run(["replay", str(src)]), words)


def test_replay_of_a_good_report_is_identical(tmp_path):
    src = tmp_path / "c.json"
    src.write_text(json.dumps(OK), "utf-8")
    res = _run(["check", str(src), "--on", ON, "--format", "json"])
    assert res.exit_code == 0
    (tmp_path / "r.json").write_text(res.stdout, "utf-8")
    assert _run(["replay", str(tmp_path / "r.json")]).exit_code == 0


@pytest.mark.parametrize("cmd", [["rules", "list", "--lang", "fr"], ["facts", "--lang", "xx"]])
def test_lang_is_checked_everywhere(cmd):
    _bad(_run(cmd), "--lang")


def test_batch_refuses_to_overwrite_its_input(tmp_path):
    src = tmp_path / "list.csv"
    src.write_text("所在省份\n河北省\n", "utf-8")
    _bad(_run(["batch", str(src), "-o", str(src), "--on", ON]), "overwrite")
    assert src.read_text("utf-8") == "所在省份\n河北省\n"


def test_main_prints_one_line_per_problem_and_exits_2(tmp_path):
    """Through the installed entry point (main()): no traceback, whatever escapes the commands."""
    src = tmp_path / "r.json"
    src.write_text(json.dumps({"input": {"employees": "abc", "revenue": "x"}, "as_of": ON}), "utf-8")
    res = subprocess.run([sys.executable, "-c", "from eligibility.cli import main; main()", "replay", str(src)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if not ln.startswith("注意")]
    assert len(lines) == 2 and "employees" in lines[0] and "revenue" in lines[1], res.stderr


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=6),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["employees", "revenue", "city", "county", "province", "industry", "lang",
                                        "从业人员", "affected_by_epidemic", "x"]), json_values, max_size=5))
def test_any_json_object_gives_an_answer_or_exit_2(tmp_path, data):
    src = tmp_path / "c.json"
    src.write_text(json.dumps(data), "utf-8")
    res = _run(["check", str(src), "--on", ON, "--format", "json"])
    assert res.exit_code in (0, 2), (res.exit_code, res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if res.exit_code == 0:
        json.loads(res.stdout)


# ---------------------------------------------------------------- the library


garbage = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=8), st.binary(max_size=8),
                    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                    st.just(object()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(company=garbage | st.just(OK), on=garbage | st.just(ON) | st.just(dt.date(2020, 6, 1)),
       rules=st.none() | garbage)
def test_evaluate_raises_only_eligibility_errors(company, on, rules):
    try:
        evaluate(company, on=on, rules=rules)
    except EligibilityError as e:
        assert str(e)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["employees", "revenue", "city", "nope", "所在省份"]), garbage, max_size=3))
def test_company_raises_only_eligibility_errors_naming_the_field(kwargs):
    try:
        Company(**kwargs)
    except EligibilityError as e:
        assert all(i.where for i in e.issues)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=garbage, on=garbage)
def test_batch_functions_raise_only_eligibility_errors(tmp_path_factory, source, on):
    from eligibility.batch import read_table, run_batch

    out = tmp_path_factory.mktemp("o") / "o.csv"
    for call in (lambda: read_table(source), lambda: run_batch(b"a\n1\n", out, on=on),
                 lambda: load_rules(source if not isinstance(source, (str, bytes)) else 5)):
        try:
            call()
        except EligibilityError as e:
            assert str(e)


def test_unknown_rule_id_is_an_eligibility_error_and_a_key_error():
    report = evaluate(OK, on=ON)
    for kind in (EligibilityError, KeyError):
        with pytest.raises(kind):
            report.get("no.such.rule")


def test_the_invisible_characters_are_every_format_character():
    from eligibility.facts import INVISIBLE

    fmt = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert not [f"U+{ord(c):04X}" for c in fmt if not INVISIBLE.match(c)]


def test_invisible_characters_and_place_typos(rules):
    base = {**OK, "employees": 40, "revenue": 3_000_000}
    clean = evaluate(base, on=ON, rules=rules)
    for city, county in (("石家庄市\u200b", "长安区"), ("\u202e石家庄市", "长安区\u2066"), ("石家庄", "长安"),
                         ("石 家 庄 市", "\ufeff长安区")):
        got = evaluate({**base, "city": city, "county": county}, on=ON, rules=rules)
        assert [r.status for r in got.results] == [r.status for r in clean.results], (city, county)
    assert len(clean.by_status("eligible")) > 2
    from eligibility import CompanyValidationError

    for bad, field, hint in (({"city": "石家桩市"}, "city", "石家庄市"), ({"county": "长按区"}, "county", "长安区"),
                             ({"province": "河南省"}, "city", "河北省")):
        with pytest.raises(CompanyValidationError) as e:
            evaluate({**base, **bad}, on=ON, rules=rules)
        assert [i.where for i in e.value.issues] == [field] and hint in e.value.issues[0].message


def test_batch_agrees_with_the_library_on_places(rules):
    from eligibility.batch import evaluate_frame

    rows = {"province": ["河北省", "河北省", "河北省", "其他"], "city": ["石家庄市\u200b", "石家桩市", "郑州市", "石家庄市"],
            "county": ["长安", "长安区", None, None]}
    out = evaluate_frame(pl.DataFrame(rows), on=ON, rules=rules)
    errs = out["errors"].to_list()
    assert errs[0] is None and "石家庄市" in errs[1] and "河南省" in errs[2] and "河北省" in errs[3]
