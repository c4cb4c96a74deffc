"""Which fact to ask next: the one score the questionnaire, the batch's `facts_to_collect` (one report
and whole columns) all use, so the app's stated order and the batch's never disagree.

A rule still waiting on facts gives each of them weight / (number of facts it waits on):
weight = kind (money 3, relief 1, service ½) × 2 when the measure is open on the date. Facts an
amount waits on get half that share (the verdict matters more than the figure). Ties go by the fact
dictionary's order. Exact fractions: ties are ties.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

KIND_WEIGHT = {"money": Fraction(3), "relief": Fraction(1), "service": Fraction(1, 2)}
OPEN_FACTOR = Fraction(2)
AMOUNT_SHARE = Fraction(1, 2)
SCALE = 4  # SCALE × weight × AMOUNT_SHARE is an integer for every kind and window (columnar integers)
MAX_SCALED = int(SCALE * max(KIND_WEIGHT.values()) * OPEN_FACTOR)


def rule_weight(kind: str, window: str) -> Fraction:
    return KIND_WEIGHT.get(kind, Fraction(1)) * (OPEN_FACTOR if window == "open" else 1)


@lru_cache(maxsize=None)
def scaled(kind: str, window: str, for_amount: bool) -> int:
    """SCALE × the share weight, an exact integer (the columnar scores are integers; a few kinds ×
    windows: worked out once each)."""
    w = rule_weight(kind, window) * (AMOUNT_SHARE if for_amount else 1) * SCALE
    assert w.denominator == 1
    return int(w)
