"""Counting money once: which results add up, and which member of a counted-once group is counted.

One place for both engines (evaluate._count_once for one company, columnar.Program.counted for
columns). Kept free of heavy imports so the batch can load it before the rules.
"""

from __future__ import annotations

KIND_ORDER = {"exact": 0, "estimate": 1, "up_to": 2}


def tie_key(amount_kind: str | None, rule_id: str) -> tuple[int, str]:
    """Between equal amounts of one benefit, the definite one is counted (then the smaller id)."""
    return KIND_ORDER.get(amount_kind or "exact", 0), rule_id


def counts_toward_total(r) -> bool:
    """Money that can be added up: an eligible money measure with a one-off amount in 元 (元/月 and
    元/年 figures are never added to 元; they stay lines of their own)."""
    return r.status == "eligible" and r.amount is not None and r.kind == "money" and r.per == "once"


def counted_member(members: list, superseded_by: dict[str, list[str]]):
    """The member of a counted-once group whose money is added up: a member that a paying later
    member supersedes is out (the later document narrowed it); of the rest, the largest amount, then
    exact before up_to, then the smaller id. `members` are results that count toward a total."""
    ids = {r.rule_id for r in members}
    left = [r for r in members if not any(s in ids for s in superseded_by.get(r.rule_id, ()))]
    return min(left, key=lambda r: (-r.amount, tie_key(r.amount_kind, r.rule_id))) if left else None
