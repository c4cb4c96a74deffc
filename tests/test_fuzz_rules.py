"""The rule loader trusts nothing (rules come from advisers' folders too): every hostile rule folder ends in
a RuleLoadError naming the file and path, in bounded time, and reads nothing outside its folders."""

from __future__ import annotations

import os
import signal
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility import RuleLoadError, load_rules
from eligibility.amounts import FormulaError, compute, parse_formula, render

HERE = Path(__file__).parent
VALID = (HERE / "broken_rules" / "_valid.yaml.txt").read_text("utf-8")
SEEDS = HERE.parent / "seeds"
QUOTE = "quote: 中小微企业裁员率不高于2019年度全国城镇调查失业率控制目标5.5%"
FORMULA = "unemployment_insurance_paid * 100%"


def _variant(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


CASES = {
    "nan_in_condition": (_variant("le: 5.5", "le: .nan"), "$.rules[0].when.le", "finite"),
    "inf_in_condition": (_variant("le: 5.5", "le: .inf"), "$.rules[0].when.le", "finite"),
    "below_the_fact_range": (_variant("le: 5.5", "le: -5"), "$.rules[0].when.le", "outside the range"),
    "nan_param": (_variant(f"amount: {{kind: exact, formula: {FORMULA}}}",
                           "amount: {kind: exact, formula: unemployment_insurance_paid * r, params: {r: .nan}}"),
                  "params.r", "finite"),
    "huge_param": (_variant(f"amount: {{kind: exact, formula: {FORMULA}}}",
                            "amount: {kind: exact, formula: unemployment_insurance_paid * r, params: {r: '1e400%'}}"),
                   "params.r", "finite"),
    "divide_by_zero": (_variant(FORMULA, "unemployment_insurance_paid / 0"), "amount.formula", "can be 0"),
    "divide_by_a_zero_constant": (_variant(FORMULA, "unemployment_insurance_paid / (2 - 2)"), "amount.formula",
                                  "can be 0"),
    "divide_by_a_fact_that_can_be_0": (_variant(FORMULA, "unemployment_insurance_paid / employees"),
                                       "amount.formula", "can be 0"),
    "number_beyond_range": (_variant(FORMULA, "unemployment_insurance_paid * 99999999999999999999"),
                            "amount.formula", "over 1e15"),
    "nested_unary_minus": (_variant(FORMULA, "-" * 1900 + "unemployment_insurance_paid"), "amount.formula",
                           "nested too deeply"),
    "long_chain": (_variant(FORMULA, "+".join(["1"] * 900)), "amount.formula", "nested too deeply"),
    "empty_quote_list": (_variant(QUOTE, "quote: []"), "$.rules[0].quote", "non-empty quote"),
    "blank_quote": (_variant(QUOTE, "quote: ['  ']"), "$.rules[0].quote", "non-empty quote"),
    "seed_path_traversal": (_variant("seed: 003_d2efa32a57ff7dc0.txt", "seed: ../../etc/passwd"), "$.seed",
                            "name of a file in the seeds folder"),
    "seed_absolute_path": (_variant("seed: 003_d2efa32a57ff7dc0.txt", "seed: /etc/passwd"), "$.seed",
                           "name of a file in the seeds folder"),
    "city_not_of_the_province": (_variant("jurisdiction: {province: 河北省}",
                                          "jurisdiction: {province: 河北省, city: 郑州市}"),
                                 "jurisdiction.city", "not a city of 河北省"),
    "county_not_of_the_city": (_variant("jurisdiction: {province: 河北省}",
                                        "jurisdiction: {province: 河北省, city: 石家庄市, counties: [长按区]}"),
                               "jurisdiction.counties", "not a county of 石家庄市"),
    "nan_expected_amount": (_variant("expect: {status: eligible}", "expect: {status: eligible, amount: .nan}"),
                            "expect.amount", "finite"),
}


class _Timeout(Exception):
    pass


def _load(folder: Path, seeds: Path = SEEDS, seconds: int = 20):
    """load_rules with an alarm: a FIFO or /dev/zero must be refused, not waited on."""
    def ring(*_):
        raise _Timeout

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        return load_rules(folder, seeds_dir=seeds)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_rule_is_refused_naming_the_path(tmp_path, case):
    text, where, words = CASES[case]
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yaml").write_text(text, "utf-8")
    with pytest.raises(RuleLoadError) as e:
        _load(tmp_path / "rules")
    hits = [i for i in e.value.issues if where in i.where and words in i.message]
    assert hits and all("a.yaml" in i.where for i in hits), [str(i) for i in e.value.issues]


def test_the_valid_template_still_loads(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yaml").write_text(VALID, "utf-8")
    assert len(_load(tmp_path / "rules")) == 1


def _seeded(tmp_path: Path, make) -> tuple[Path, Path]:
    rules, seeds = tmp_path / "rules", tmp_path / "seeds"
    rules.mkdir()
    seeds.mkdir()
    (rules / "a.yaml").write_text(_variant("seed: 003_d2efa32a57ff7dc0.txt", "seed: s.txt"), "utf-8")
    make(seeds / "s.txt")
    return rules, seeds


@pytest.mark.parametrize("kind,words", [
    ("devzero", "outside the seeds folder"),
    ("fifo", "not a regular file"),
    ("link_out", "outside the seeds folder"),
    ("folder", "not a regular file"),
    ("loop", "not found"),
    ("huge", "the limit is"),
])
def test_seeds_are_regular_files_in_the_seeds_folder(tmp_path, kind, words):
    def make(path: Path):
        if kind == "devzero":
            os.symlink("/dev/zero", path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "link_out":
            (tmp_path / "secret.txt").write_text("中小微企业裁员率不高于2019年度全国城镇调查失业率控制目标5.5%", "utf-8")
            os.symlink(tmp_path / "secret.txt", path)
        elif kind == "folder":
            path.mkdir()
        elif kind == "loop":
            os.symlink(path, path)
        else:
            with open(path, "wb") as f:
                f.truncate(30_000_000)  # sparse: no disk used

    rules, seeds = _seeded(tmp_path, make)
    with pytest.raises(RuleLoadError) as e:
        _load(rules, seeds)
    assert words in str(e.value) and "$.seed" in str(e.value), str(e.value)


@pytest.mark.parametrize("kind,words", [
    ("fifo", "not a regular file"),
    ("devzero", "outside the rules folder"),
    ("link_out", "outside the rules folder"),
    ("loop", "symlink loop"),
    ("folder", "not a regular file"),
])
def test_rule_files_are_regular_files_in_the_rules_folder(tmp_path, kind, words):
    rules = tmp_path / "rules"
    rules.mkdir()
    path = rules / "x.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "devzero":
        os.symlink("/dev/zero", path)
    elif kind == "link_out":
        (tmp_path / "elsewhere.yaml").write_text(VALID, "utf-8")
        os.symlink(tmp_path / "elsewhere.yaml", path)
    elif kind == "loop":
        os.symlink(path, path)
    else:
        path.mkdir()
    with pytest.raises(RuleLoadError) as e:
        _load(rules)
    assert words in str(e.value), str(e.value)


def test_lint_and_coverage_do_not_wait_on_a_fifo_seed(tmp_path):
    from eligibility.coverage import build_catalogue

    rules, seeds = _seeded(tmp_path, lambda p: os.mkfifo(p))
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(_Timeout()))
    signal.alarm(20)
    try:
        cat = build_catalogue(rules, seeds)
    finally:
        signal.alarm(0)
    assert any("not a regular file" in str(i) for i in cat.notes), cat.notes


def test_load_rules_with_a_wrong_argument_type():
    with pytest.raises(RuleLoadError, match="rules_dir"):
        load_rules(123)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the formula language


formula_text = st.lists(st.sampled_from(list("0123456789.%+-*/(), ") + ["a", "employees", "min", "max", "revenue",
                                                                         "x_1", "9" * 30]),
                        max_size=40).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formula_text)
def test_any_formula_parses_or_names_the_problem(text):
    try:
        expr = parse_formula(text)
    except FormulaError as e:
        assert str(e)
        return
    env = {"a": Decimal(2), "employees": Decimal(3), "revenue": Decimal(0), "x_1": Decimal("0.5")}
    value = compute(expr, env)  # never raises: an unknown name or a division by zero is None
    assert value is None or isinstance(value, Decimal)
    assert render(expr, str)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3000), st.sampled_from(["-", "(", "min(", "- ("]))
def test_deep_formulas_are_refused_not_recursed(n, piece):
    text = piece * n + "1" + {"-": "", "(": ")", "min(": ")", "- (": ")"}[piece] * n
    if len(text) > 2000:
        with pytest.raises(FormulaError, match="too long"):
            parse_formula(text)
        return
    try:
        parse_formula(text)
    except FormulaError as e:
        levels = n * (2 if piece == "- (" else 1)  # "- (" nests a minus and a bracket
        assert "nested too deeply" in str(e) and levels > 40
