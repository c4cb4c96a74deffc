"""Business-eligibility calculator for Chinese government support policies.

Public API:
    from eligibility import Company, evaluate, load_rules
    report = evaluate({"province": "河北省", ...}, on="2020-03-15")

The names below are imported on first use (PEP 562): `eligibility batch` starts reading its input
before the rule models (pydantic, ~0.3 s) are built, and `import eligibility.cli` stays cheap.
"""

import importlib as _importlib
import sys as _sys
import types as _types

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    BatchInputError,
    CompanyValidationError,
    EligibilityError,
    RuleLoadError,
)

_LAZY = {
    "evaluate": "evaluate",
    "default_rules": "evaluate",
    "default_facts": "facts",
    "RuleSet": "loading",
    "load_rules": "loading",
    "Company": "models",
    "Report": "models",
    "RuleResult": "models",
}

__all__ = [
    "Company",
    "Report",
    "RuleResult",
    "RuleSet",
    "evaluate",
    "load_rules",
    "default_rules",
    "default_facts",
    "EligibilityError",
    "RuleLoadError",
    "CompanyValidationError",
    "BatchInputError",
    "__version__",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({n for n in globals() if not n.startswith("_") or n == "__version__"} | set(_LAZY))


class _Package(_types.ModuleType):
    """`eligibility.evaluate` is the function, as it always was, even once the submodule of that name is
    imported (the import system would otherwise bind the module over it)."""

    def __setattr__(self, name: str, value) -> None:
        if name == "evaluate" and isinstance(value, _types.ModuleType):
            value = value.evaluate
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
