"""Business-eligibility calculator for Chinese government support policies.

Public API:
    from eligibility import Company, evaluate, load_rules
    report = evaluate({"province": "河北省", ...}, on="2020-03-15")
"""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    BatchInputError,
    CompanyValidationError,
    EligibilityError,
    RuleLoadError,
)
from .evaluate import default_rules, evaluate  # noqa: E402
from .facts import default_facts  # noqa: E402
from .loading import RuleSet, load_rules  # noqa: E402
from .models import Company, Report, RuleResult  # noqa: E402

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
