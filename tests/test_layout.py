"""The import graph of the `eligibility` package: no cycle, and the engine never imports the words.

Every module is parsed with `ast` (nothing is imported); an import anywhere in a module, at its top or
inside a function, is an edge, relative imports resolved against the module's package. A cycle makes
the order of imports matter and the modules one unit in all but name; an engine module importing a
wording module (or the app) would make the engine's results depend on how they are said.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "eligibility"

# the modules that decide (a result, an amount, a window, the owner's view as data, a batch's rows) ...
ENGINE = {"evaluate", "columnar", "conditions", "amounts", "validity", "money", "scoring", "derived", "models",
          "loading", "facts", "questions", "incremental", "owner", "distributed", "batch"}
# ... and those that say it in zh/en (cli prints it)
WORDING = {"words", "present", "explain", "catalogue_docs", "cli"}

# RuleResult.reasons() and Report.as_dict() (the README's public API) word a result through the words
# backend named in models.WORDS_BACKEND, resolved by name (tests/test_words_layering.py): no edge is allowed.
KNOWN_WORDING_EDGES: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules `name` imports (in this package or not)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:  # `from . import amounts`: the submodule, not the package
                sub = f"{target}.{a.name}"
                out.add(sub if sub in known else target)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def owner_of(module: str, names: set[str]) -> str | None:
    """The top-level name of an eligibility module (eligibility.batch.read -> batch)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "eligibility" and len(parts) > 1 and parts[1] in names else None


def find_cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more modules (or a module importing itself), as one cycle
    through it: Tarjan's algorithm, then a path around the group."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v] & g.keys()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or v in g[v]:
                groups.append(group)

    for v in sorted(g):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:
        start = min(group)
        path, seen = [start], {start}
        while True:  # walk inside the group until the path closes
            nxt = sorted(w for w in g[path[-1]] & group)
            w = next((x for x in nxt if x == start and len(path) > 1), None) or \
                next((x for x in nxt if x not in seen), None) or nxt[0]
            if w in seen:
                path = path[path.index(w):] + [w]
                break
            path.append(w)
            seen.add(w)
        cycles.append(path)
    return cycles


def test_the_graph_is_read():
    g = graph()
    assert "eligibility.batch.run" in g and "eligibility.evaluate" in g
    assert "eligibility.batch.chunk" in g["eligibility.batch.run"]  # relative, module level
    assert "eligibility.evaluate" in g["eligibility.batch.chunk"]  # relative, inside a function
    assert "eligibility.amounts" in g["eligibility.evaluate"]  # `from . import amounts`: the module


def test_no_import_cycle():
    cycles = find_cycles(graph())
    assert not cycles, "import cycles in eligibility/: " + "; ".join(" -> ".join(c) for c in cycles)


def wording_edges() -> set[tuple[str, str]]:
    g = graph()
    top = {m.split(".")[1] for m in g if "." in m}
    bad = set()
    for src, targets in g.items():
        if owner_of(src, top) not in ENGINE:
            continue
        for t in targets:
            if owner_of(t, top) in WORDING or t == "ui" or t.startswith("ui."):
                bad.add((src, t))
    return bad


def test_the_engine_imports_no_wording_and_no_ui():
    new = sorted(wording_edges() - KNOWN_WORDING_EDGES)  # none allowed
    assert not new, "engine modules import wording or UI modules: " + ", ".join(f"{a} -> {b}" for a, b in new)


def test_the_lists_name_real_modules():
    top = {m.split(".")[1] for m in graph() if "." in m}
    assert ENGINE - top == set() and WORDING - top == set()


def test_the_checks_catch_what_they_are_for():
    """A cycle through a function-level import, and an engine module importing the words, are found."""
    g = {"eligibility.a": {"eligibility.b"}, "eligibility.b": {"eligibility.c"}, "eligibility.c": {"eligibility.a"},
         "eligibility.d": {"eligibility.d"}, "eligibility.e": {"eligibility.a"}}
    assert sorted(sorted(c) for c in find_cycles(g)) == [
        ["eligibility.a", "eligibility.a", "eligibility.b", "eligibility.c"], ["eligibility.d", "eligibility.d"]]
    assert find_cycles({"eligibility.a": {"eligibility.b"}, "eligibility.b": set()}) == []
