"""Time in every answer: how a measure ends, and its window on a date.

One place for both engines (evaluate.py and columnar.py call `window`). A rule's period says how it
ends, as one of four kinds:

- stated:     the document states the last day (or the application deadline);
- derived:    a date worked out from the document's words (a stage's end, "N个月" from the start);
- event:      the document ties the end to a dated public event (events.yaml), optionally N days after;
- not_stated: the document gives no end and none can be derived.

Windows on a date: `upcoming` (before the start), `open` (a known end or application deadline not
passed), `closed`, and `end_unknown` (started, no end known: never presented as "can still apply").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import Issue, RuleLoadError

HERE = Path(__file__).parent
END_KINDS = ("stated", "derived", "event", "not_stated")
WINDOWS = ("open", "end_unknown", "upcoming", "closed")
MIN_AFTER_DAYS, MAX_AFTER_DAYS = -31, 3660


@dataclass(frozen=True)
class Event:
    key: str
    zh: str
    en: str
    date: dt.date
    certainty: str  # official | estimate
    source: str

    @property
    def estimate(self) -> bool:
        return self.certainty == "estimate"


@cache
def events() -> dict[str, Event]:
    """The named events table (events.yaml), validated once."""
    from .safe_yaml import read_yaml

    path = HERE / "events.yaml"
    raw = read_yaml(path)
    out: dict[str, Event] = {}
    issues: list[Issue] = []
    for key, e in (raw.get("events") or {}).items():
        loc = f"{path.name}: $.events.{key}"
        if not isinstance(e, dict) or set(e) != {"zh", "en", "date", "certainty", "source"}:
            issues.append(Issue(loc, "an event has exactly: zh, en, date, certainty, source"))
            continue
        if not isinstance(e["date"], dt.date) or e["certainty"] not in ("official", "estimate"):
            issues.append(Issue(loc, "date must be a date and certainty official or estimate"))
            continue
        out[key] = Event(key, str(e["zh"]), str(e["en"]), e["date"], e["certainty"], str(e["source"]))
    if issues:
        raise RuleLoadError(issues)
    return out


def resolve_end(period: Any, where: str, issues: list[Issue]) -> dt.date | None:
    """The period's last day as the loader fixes it: stated/derived give it, event computes it."""
    kind = period.end_kind
    if kind in ("stated", "derived"):
        if period.end is None:
            issues.append(Issue(f"{where}.end", f"end_kind {kind} needs an end date"))
        if period.end_event is not None:
            issues.append(Issue(f"{where}.end_event", f"end_event is only for end_kind event, not {kind}"))
        return period.end
    if kind == "event":
        if period.end is not None:
            issues.append(Issue(f"{where}.end", "an event's end is computed from events.yaml; do not give end"))
        ev = events().get(period.end_event or "")
        if ev is None:
            import difflib

            close = difflib.get_close_matches(period.end_event or "", list(events()), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; known: {sorted(events())}"
            issues.append(Issue(f"{where}.end_event", f"unknown event {period.end_event!r}{hint}"))
            return None
        days = period.end_after_days or 0
        if not MIN_AFTER_DAYS <= days <= MAX_AFTER_DAYS:
            issues.append(Issue(f"{where}.end_after_days", f"{days} is out of range [{MIN_AFTER_DAYS}, {MAX_AFTER_DAYS}]"))
            return None
        return ev.date + dt.timedelta(days=days)
    # not_stated
    if period.end is not None or period.end_event is not None:
        issues.append(Issue(f"{where}.end_kind", "end_kind not_stated takes no end or end_event"))
    return None


def end_is_estimate(period: Any) -> bool:
    return period.end_kind == "event" and events()[period.end_event].estimate


def last_day(period: Any) -> dt.date | None:
    """The last day one can still claim: the application deadline when the document sets one (a 2020
    refund may be claimable after its benefit period), else the end of the period."""
    return period.deadline or period.end


def window_of(period: Any, on: dt.date) -> str:
    if on < period.start:
        return "upcoming"
    last = last_day(period)
    if last is None:
        return "end_unknown"
    return "open" if on <= last else "closed"


def window(rule: Any, on: dt.date) -> tuple[str, bool]:
    """(window, in_effect) of a compiled rule on a date; in effect only when `open`."""
    w = window_of(rule.spec.period, on)
    return w, w == "open"


def in_period_date(period: Any) -> dt.date:
    """A date inside the measure's own period (its start), for "what could I have had" questions."""
    return period.start


def as_date(on: Any, field: str = "on") -> dt.date:
    """The evaluation date from a date, datetime, ISO text or None (today): one parser for all callers;
    anything else is an ArgumentError naming the argument."""
    if on is None:
        return dt.date.today()
    if isinstance(on, dt.datetime):
        return on.date()
    if isinstance(on, dt.date):
        return on
    if isinstance(on, str):
        try:
            return dt.date.fromisoformat(on.strip())
        except ValueError:
            pass
    from .errors import ArgumentError
    from .facts import show

    raise ArgumentError([Issue(field, f"日期格式应为 YYYY-MM-DD / expected a date like 2020-03-15, got {show(on)}")])
