"""Words in one place: the engine imports no wording module (issue 15)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "eligibility"
WORDING = {"explain", "present", "words", "catalogue_docs", "cli"}
ENGINE = ("amounts", "conditions", "derived", "evaluate", "columnar", "questions", "incremental", "loading",
          "money", "scoring", "validity", "facts", "owner", "models")
# RuleResult.reasons() and Report.as_dict() (the README's public API) word a result through explain,
# imported inside the two methods only: evaluating never loads it.
ALLOWED = {("models", "explain")}


def imports(module: str) -> set[str]:
    """The package modules `module` imports, at the top or inside a function."""
    out: set[str] = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return out


@pytest.mark.parametrize("module", ENGINE)
def test_the_engine_imports_no_wording_module(module):
    assert {m for m in imports(module) & WORDING if (module, m) not in ALLOWED} == set()

