"""The one error hierarchy: every failure a user can cause names the file, path, field or row.

Every error a caller can cause is an EligibilityError; most of those about values are also ValueErrors
(and an unknown rule id a KeyError), so code written against the built-in exceptions keeps working.
CompanyValidationError is not a ValueError: pydantic would wrap it (Company raises it from __init__)."""

from __future__ import annotations

from dataclasses import dataclass


class EligibilityError(Exception):
    """Base of all errors this package raises on purpose."""


@dataclass(frozen=True)
class Issue:
    """One problem at one place: `where` is `rules/x.yaml: $.rules[3].when` or a field name."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class IssuesError(EligibilityError):
    """An error made of several located issues, reported together rather than one at a time."""

    headline = "invalid input"

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        super().__init__(self.headline + ":\n" + "\n".join(f"  {i}" for i in self.issues))


class RuleLoadError(IssuesError):
    """Rule files that do not load: schema, unknown facts, quotes not verbatim, unsafe YAML."""

    headline = "rule files do not load"


class CompanyValidationError(IssuesError):
    """Company facts that do not fit the fact dictionary; each issue names the field."""

    headline = "invalid company facts"


class FormulaError(EligibilityError, ValueError):
    """An amount formula that does not parse; raised at load with the formula's position."""


class BatchInputError(EligibilityError, ValueError):
    """A company list that cannot be read at all (encoding, format, empty file, over a limit)."""


class InputLimitError(BatchInputError):
    """A company list over a limit of the reader that takes it (file size, rows, columns, cells, the
    decompressed size of a workbook); checked before it is parsed."""


class ArgumentError(IssuesError, ValueError):
    """A bad argument to a library call or a command (a date, a language, a path); each issue names it."""

    headline = "invalid argument"


class FactValueError(EligibilityError, ValueError):
    """A value that does not fit its fact; the message is zh first, en second (facts.py raises it)."""


class UnknownRuleError(EligibilityError, KeyError):
    """A rule id that is not in the catalogue."""
