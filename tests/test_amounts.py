"""The amount language: a small parser (no eval), exact decimals, rendering with numbers."""

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eligibility.amounts import compute, names, parse_formula, render, to_cents
from eligibility.columnar import MOST_FEN, first_big, to_fen
from eligibility.errors import FormulaError


def test_precedence_percent_and_functions():
    e = parse_formula("a + b * 50% - min(c, 10) / 2")
    assert compute(e, {"a": 1, "b": 4, "c": 30}) == Decimal("-2")
    assert names(e) == ["a", "b", "c"]


def test_parentheses_and_negation():
    e = parse_formula("-(a + b) * 3")
    assert compute(e, {"a": Decimal(1), "b": Decimal(2)}) == Decimal(-9)


def test_unknown_name_gives_none_not_zero():
    assert compute(parse_formula("a * 2"), {}) is None


def test_division_by_zero_gives_none():
    assert compute(parse_formula("a / b"), {"a": 1, "b": 0}) is None


def test_exact_decimals_and_half_up_cents():
    e = parse_formula("a * 33.333%")
    assert to_cents(compute(e, {"a": Decimal("100.05")})) == Decimal("33.35")
    assert to_cents(Decimal("0.005")) == Decimal("0.01")


@pytest.mark.parametrize("text,fragment", [
    ("a +", "ends early"), ("a $ b", "unexpected character"), ("__import__(os)", "unknown function"), ("a + 'x'", "unexpected character"),
    ("a b", "unexpected 'b'"), ("(a", "ends early"), ("", "non-empty"), ("max(a,", "ends early"),
])
def test_bad_formulas(text, fragment):
    with pytest.raises(FormulaError) as e:
        parse_formula(text)
    assert fragment in str(e.value)


def test_render_words_and_numbers():
    e = parse_formula("(x + y) * 5")
    assert render(e, lambda n: n.upper()) == "(X + Y) × 5"


@settings(max_examples=300, deadline=None)
@given(s=st.integers(0, 12), i=st.integers(0, 10**32))
def test_fen_overflow_threshold_matches_the_rounding(s, i):
    """The batch tests 'too many fen for Int64' on the unrounded fixed-point value (i·10^-s yuan): the
    threshold must be exactly where the half-up rounding to fen passes MOST_FEN."""
    f = first_big(s)
    assert to_fen(f, s) > MOST_FEN and to_fen(f - 1, s) <= MOST_FEN
    assert (to_fen(i, s) > MOST_FEN) == (i >= f)
    near = f + (i % 7) - 3  # around the threshold too
    assert (to_fen(near, s) > MOST_FEN) == (near >= f)
    with localcontext() as ctx:
        ctx.prec = 80
        assert Decimal(to_fen(i, s)).scaleb(-2) == to_cents(Decimal(i).scaleb(-s))
