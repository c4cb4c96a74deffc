"""Typed objects: the company (built from the fact dictionary), rule files, and results."""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal
from functools import cache
from typing import Any, Literal, Optional

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model, field_validator,
                      model_validator)

from .errors import CompanyValidationError, Issue, UnknownRuleError
from .facts import FactDictionary, FactValueError, default_facts

# How a result is said is not the engine's business (issue 15). The engine depends on an interface -
# `reasons(result, lang) -> list[str]` and `report_dict(report, lang) -> dict` - and the module that
# implements it is named here and resolved by name when words are first asked for, as pandas resolves its
# plotting backend: no engine module imports a wording module, evaluating never loads one, and another
# wording (a portal's own phrasing) plugs in by setting this name.
WORDS_BACKEND = "eligibility.explain"


def words_backend():
    """The module named by `WORDS_BACKEND` (imported on first use, then from sys.modules)."""
    return importlib.import_module(WORDS_BACKEND)

Status = Literal["eligible", "ineligible", "undetermined"]
Kind = Literal["money", "relief", "service"]
Strength = Literal["entitled", "discretionary", "encouraged"]
Window = Literal["open", "closed", "upcoming", "end_unknown"]
EndKind = Literal["stated", "derived", "event", "not_stated"]
AmountKind = Literal["exact", "up_to", "estimate"]

_PY_TYPES = {"bool": bool, "int": int, "money": Decimal, "percent": Decimal, "number": Decimal,
             "date": dt.date, "enum": str, "text": str}


class _CompanyBase(BaseModel):
    """Facts about one business. Every fact is optional: None means unknown, never 0 or false."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    def __init__(self, **data: Any) -> None:
        """Company(employees="abc") raises CompanyValidationError naming the field, as evaluate() does (and so
        does Company.model_validate: pydantic runs this __init__ for it)."""
        try:
            super().__init__(**data)
        except ValidationError as e:
            issues = []
            for err in e.errors():
                field = ".".join(str(p) for p in err["loc"]) or "(company)"
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    msg = "未知的事实项 / unknown fact" + default_facts().suggest(field)
                issues.append(Issue(field, msg))
            raise CompanyValidationError(issues) from None

    @model_validator(mode="before")
    @classmethod
    def _headers_to_names(cls, data: Any) -> Any:
        """Accept zh labels and aliases as keys, as company lists use them."""
        if not isinstance(data, dict):
            return data
        facts = default_facts()
        out: dict[str, Any] = {}
        for k, v in data.items():
            name = k if k in facts else (facts.column_for(str(k)) or k)
            if name in out and out[name] is not None and v is not None:
                raise ValueError(f"fact {name!r} given twice (as {k!r})")
            if v is not None or name not in out:
                out[name] = v
        return out

    def known(self) -> dict[str, Any]:
        """The facts that were given (unknown ones left out)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _make_validator(spec):
    def parse(cls, v: Any) -> Any:
        try:
            return spec.parse(v)
        except FactValueError as e:
            raise ValueError(str(e)) from None

    return field_validator(spec.name, mode="before")(classmethod(parse))


def build_company_model(facts: FactDictionary) -> type[_CompanyBase]:
    fields = {name: (Optional[_PY_TYPES[s.type]], Field(None, title=s.zh, description=s.help_en))
              for name, s in facts.items()}
    validators = {f"_parse_{name}": _make_validator(s) for name, s in facts.items()}
    return create_model("Company", __base__=_CompanyBase, __validators__=validators, **fields)  # type: ignore


@cache
def company_model() -> type[_CompanyBase]:
    """The Company model of the bundled fact dictionary, built on first use (~300 fields: 0.06 s that a
    batch run, which parses its own columns, never needs)."""
    return build_company_model(default_facts())


def __getattr__(name: str) -> Any:  # `from eligibility.models import Company` builds it then
    if name == "Company":
        return company_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- rule files (raw, validated shapes)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Text(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en


class DocumentInfo(_Strict):
    title: str
    number: str | None = None
    issuer: str | None = None
    date: dt.date | None = None
    part: int | None = None


class Period(_Strict):
    """When a measure applies and how it ends (validity.py): `end_kind` is required, one of
    stated | derived | event | not_stated; an event's end is computed from events.yaml."""

    start: dt.date
    end: dt.date | None = None
    end_kind: EndKind
    end_event: str | None = None
    end_after_days: int | None = None
    end_basis: str | None = None  # the document's words the end rests on (verbatim), for derived/event
    deadline: dt.date | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Period":
        if self.end and self.end < self.start:
            raise ValueError("end is before start")
        return self


class Jurisdiction(_Strict):
    province: str | None = None
    city: str | None = None
    region: str | None = None
    counties: list[str] | None = None


class AmountCase(_Strict):
    when: dict[str, Any]
    formula: str


class AmountSpec(_Strict):
    formula: str | None = None
    cases: list[AmountCase] | None = None
    params: dict[str, str | int | float] = Field(default_factory=dict)
    cap: str | int | float | None = None
    floor: str | int | float | None = None
    per: Literal["once", "month", "year"] = "once"
    kind: AmountKind  # exact: owed as computed; up_to: a cap (最高/不超过/上限); estimate: a reading of vague text
    text: Text | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "AmountSpec":
        if (self.formula is None) == (self.cases is None):
            raise ValueError("give exactly one of formula or cases")
        return self


class Expect(_Strict):
    status: Status
    amount: Decimal | None = None
    missing: list[str] | None = None


class Example(_Strict):
    name: str
    as_of: dt.date | None = None
    facts: dict[str, Any] = Field(default_factory=dict)
    expect: Expect


class RuleSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.]*$")
    title: Text
    document: str
    quote: str | list[str]
    jurisdiction: Jurisdiction
    agency: Text
    kind: Kind
    strength: Strength
    benefit: Text
    period: Period
    when: dict[str, Any]
    amount: AmountSpec | None = None
    excludes: list[str] = Field(default_factory=list)
    supersedes: list[str] = Field(default_factory=list)  # earlier measures this one narrows: it wins their group
    tops_up: str | None = None
    note: str | None = None
    examples: list[Example] = Field(min_length=1)

    @property
    def quotes(self) -> list[str]:
        return [self.quote] if isinstance(self.quote, str) else list(self.quote)


class RuleFileSpec(_Strict):
    seed: str
    documents: dict[str, DocumentInfo]
    rules: list[dict[str, Any]]


# ---------------------------------------------------------------- results


class SourceRef(BaseModel):
    model_config = ConfigDict(defer_build=True)
    seed: str
    document: str
    number: str | None = None
    issuer: str | None = None
    date: dt.date | None = None
    quote: str


class PeriodOut(BaseModel):
    model_config = ConfigDict(defer_build=True)
    start: dt.date
    end: dt.date | None = None
    end_kind: EndKind = "not_stated"
    end_event: str | None = None
    end_estimate: bool = False
    end_basis: str | None = None
    deadline: dt.date | None = None
    text: str | None = None


class RuleResult(BaseModel):
    """One rule's verdict for one company; `trace` holds the evaluated condition tree."""
    model_config = ConfigDict(defer_build=True)

    rule_id: str
    title: Text
    status: Status
    in_effect: bool
    window: Window
    kind: Kind
    strength: Strength
    benefit: Text
    agency: Text
    jurisdiction: str
    amount: Decimal | None = None
    amount_kind: AmountKind | None = None
    amount_formula: str | None = None
    amount_filled: str | None = None
    amount_missing: list[str] = Field(default_factory=list)
    per: str = "once"
    counted_in_total: bool = False
    period: PeriodOut
    source: SourceRef
    missing: list[str] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)
    supersedes: list[str] = Field(default_factory=list)
    superseded_by: list[str] = Field(default_factory=list)
    tops_up: str | None = None
    note: str | None = None
    _trace: Any = PrivateAttr(default=None)
    _amount_trace: Any = PrivateAttr(default=None)
    _amount_expr: Any = PrivateAttr(default=None)  # the formula (amounts.Expr) `amount_formula` words
    _facts: Any = PrivateAttr(default=None)  # the rule set's fact dictionary, set by evaluate_rule
    _place: Any = PrivateAttr(default=None)  # () -> bool: a jurisdiction comparison fails (evaluate_rule)

    @property
    def outside_jurisdiction(self) -> bool:
        """Ineligible because of where the business is: one of the rule's place comparisons fails. Decided
        without building the trace when evaluate() left the means to (the app asks it of every rule)."""
        if self.status != "ineligible":
            return False
        if callable(self._place):
            return self._place()
        from .conditions import Compare, deciding

        if self.trace is None:
            return False
        return any(isinstance(x.node, Compare) and x.node.origin == "jurisdiction" for x in deciding(self.trace))

    @property
    def amount_expr(self):
        """The formula the amount was computed with (the case that applied), as structure: the words of
        `amount_formula` in another language are rendered from it, never parsed back from the text."""
        return self._amount_expr

    @property
    def facts(self) -> FactDictionary:
        """The fact dictionary this result was judged with (its rule set's), for its words; the bundled
        one for a result made by hand."""
        return self._facts if self._facts is not None else default_facts()

    @property
    def trace(self):
        if callable(self._trace):  # evaluate() decides without the tree: it is built when first asked for
            self._trace = self._trace()
        return self._trace

    def reasons(self, lang: str = "zh") -> list[str]:
        """Why (or why not), in the document's words: said by the words backend (see `WORDS_BACKEND`)."""
        return words_backend().reasons(self, lang)


class Report(BaseModel):
    """All results for one company on one date, with what is needed to reproduce them."""
    model_config = ConfigDict(defer_build=True)

    as_of: dt.date
    derived: dict[str, Any]
    results: list[RuleResult]
    total_amount: Decimal  # definite money (exact amounts, one-off 元), each benefit counted once
    total_in_effect: Decimal  # the same, over measures open on the date
    total_up_to: Decimal = Decimal(0)  # "up to" money (caps, estimates), one-off 元, counted once; never added to the above
    rules_version: str
    tool_version: str
    input: dict[str, Any]
    warnings: list[str] = Field(default_factory=list)
    _facts: Any = PrivateAttr(default=None)  # the rule set's fact dictionary, set by assemble_report

    @property
    def facts(self) -> FactDictionary:
        """The fact dictionary of the rule set that made this report, for its words; the bundled one
        for a report made by hand."""
        return self._facts if self._facts is not None else default_facts()

    def by_status(self, status: Status) -> list[RuleResult]:
        return [r for r in self.results if r.status == status]

    def get(self, rule_id: str) -> RuleResult:
        for r in self.results:
            if r.rule_id == rule_id:
                return r
        raise UnknownRuleError(rule_id)

    def as_dict(self, lang: str = "zh") -> dict[str, Any]:
        """The JSON contract of `eligibility check --format json` (numbers as numbers), with its words
        from the words backend (see `WORDS_BACKEND`)."""
        return words_backend().report_dict(self, lang)
