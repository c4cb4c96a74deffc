"""Safe YAML -> validated rule set. Everything that can be wrong with a rule fails here, at load.

The YAML reader refuses tags beyond plain data, anchors/aliases, duplicate keys, deep nesting,
files over MAX_FILE_BYTES and text that is not UTF-8. Rule files are then checked against the
schema (pydantic), the fact dictionary, the regions, the formula grammar, the seeds (quotes must be
verbatim) and each other (ids, excludes, tops_up). All problems are collected and reported together,
each as `rules/x.yaml: $.rules[3].when.all[1].fact: unknown fact 'layof_rate' (did you mean ...)`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import amounts
from .conditions import Group, Node, node_from_jurisdiction, parse_condition
from .errors import CompanyValidationError, EligibilityError, FormulaError, Issue, RuleLoadError
from .facts import MAX_ABS, FactDictionary, default_facts
from .models import AmountSpec, DocumentInfo, RuleFileSpec, RuleSpec, company_model
from .safe_yaml import PROJECT, display as _display, parse_yaml, read_file, read_seed, read_yaml
from .validity import resolve_end

PACKAGE = Path(__file__).parent
DEFAULT_RULES = PROJECT / "rules"
DEFAULT_SEEDS = PROJECT / "seeds"


# ---------------------------------------------------------------- compiled rules


@dataclass(frozen=True)
class CompiledAmount:
    spec: AmountSpec
    cases: tuple[tuple[Node | None, amounts.Expr], ...]  # (None, expr) for a plain formula
    params: dict[str, Decimal]
    param_text: dict[str, str]  # as the document writes them: "100%", "5"
    cap: amounts.Expr | None
    floor: amounts.Expr | None

    @property
    def names(self) -> list[str]:
        out: list[str] = []
        for _, e in self.cases:
            out += [n for n in amounts.names(e) if n not in out]
        for e in (self.cap, self.floor):
            if e is not None:
                out += [n for n in amounts.names(e) if n not in out]
        return out


@dataclass(frozen=True)
class CompiledRule:
    spec: RuleSpec
    file: str
    seed: str
    document: DocumentInfo
    condition: Node  # jurisdiction comparisons + the rule's own `when`
    amount: CompiledAmount | None
    jurisdiction_text: str

    @property
    def id(self) -> str:
        return self.spec.id

    @cached_property
    def facts(self) -> set[str]:
        out = set(self.condition.facts())
        if self.amount:
            out |= {n for n in self.amount.names if n not in self.amount.params}
            for cond, _ in self.amount.cases:
                if cond is not None:
                    out |= cond.facts()
        return out


@dataclass
class RuleSet:
    rules: list[CompiledRule]
    facts: FactDictionary
    version: str
    files: list[str]
    seeds: dict[str, str] = field(default_factory=dict)
    only: tuple[str, ...] = ()  # the --only patterns this set was selected by (select()); () is the whole set

    def __iter__(self):
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    @cached_property
    def by_id(self) -> dict[str, CompiledRule]:
        return {r.id: r for r in self.rules}

    def select(self, patterns: str | list[str] | tuple[str, ...]) -> "RuleSet":
        """The rules whose id matches any of the glob patterns (`sjz.ui_refund.*`), in catalogue order, as
        a rule set of their own: same facts and version, `excludes` groups kept among the chosen rules.
        A pattern that matches no rule is an error (a typo would otherwise evaluate nothing)."""
        import fnmatch

        pats = (patterns,) if isinstance(patterns, str) else tuple(patterns)
        unmatched = [p for p in pats if not any(fnmatch.fnmatchcase(r.id, p) for r in self.rules)]
        if unmatched:
            raise EligibilityError("; ".join(f"--only: 没有匹配的规则 / no rule id matches {p!r}{_suggest_id(p, self.by_id)}"
                                             for p in unmatched))
        chosen = [r for r in self.rules if any(fnmatch.fnmatchcase(r.id, p) for p in pats)]
        ids = {r.id for r in chosen}
        sub = RuleSet(chosen, self.facts, self.version, self.files, self.seeds, tuple(dict.fromkeys((*self.only, *pats))))
        sub.__dict__["exclusion_groups"] = [g & ids for g in self.exclusion_groups if len(g & ids) > 1]
        return sub

    @cached_property
    def exclusion_groups(self) -> list[set[str]]:
        """Rules linked by `excludes` or `supersedes` (either direction) pay the same money: counted once."""
        links = [(r.id, other) for r in self.rules for other in (*r.spec.excludes, *r.spec.supersedes)]
        return [g for g in _components([r.id for r in self.rules], links) if len(g) > 1]

    @cached_property
    def benefit_groups(self) -> "BenefitGroups":
        """How the rules group into benefits, the one grouping every view uses: `counted_once` numbers
        the engine's counted-once groups (`exclusion_groups`, in their order, then each other rule on its
        own); `line` numbers the benefits a person reads as one line: those groups joined by `tops_up`
        links (a top-up and its base are one benefit). Numbers follow the catalogue's order."""
        ids = [r.id for r in self.rules]
        counted_once = {i: n for n, g in enumerate(self.exclusion_groups) for i in g}
        n = len(self.exclusion_groups)
        for i in ids:
            if i not in counted_once:
                counted_once[i], n = n, n + 1
        links = [(i, min(g)) for g in self.exclusion_groups for i in g]
        links += [(r.id, r.spec.tops_up) for r in self.rules if r.spec.tops_up]
        line = {i: k for k, g in enumerate(_components(ids, links)) for i in g}
        return BenefitGroups(line, counted_once)

    @cached_property
    def superseded_by(self) -> dict[str, list[str]]:
        """Rule id -> the later rules that narrow it: while one of them pays, it is not counted."""
        out: dict[str, list[str]] = {}
        for r in self.rules:
            for other in r.spec.supersedes:
                out.setdefault(other, []).append(r.id)
        return out


@dataclass(frozen=True)
class BenefitGroups:
    """RuleSet.benefit_groups: rule id -> benefit line number, rule id -> counted-once group number."""

    line: dict[str, int]
    counted_once: dict[str, int]


def _components(ids: list[str], links: list[tuple[str, str]]) -> list[set[str]]:
    """The connected groups of `ids` under `links` (pairs naming an id outside `ids` are ignored), each
    group once, in the order of its first member in `ids`."""
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    groups: dict[str, set[str]] = {}
    for i in ids:
        groups.setdefault(find(i), set()).add(i)
    return list(groups.values())


def _suggest_id(pattern: str, ids) -> str:
    import difflib

    close = difflib.get_close_matches(pattern, list(ids), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _normalise(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _parse_param(v: Any) -> Decimal:
    if isinstance(v, str):
        t = v.strip()
        if t.endswith("%"):
            return Decimal(t[:-1]) / 100
        return Decimal(t)
    return Decimal(str(v))


def _pyd_issues(e: ValidationError, where: str, base: str) -> list[Issue]:
    out = []
    for err in e.errors():
        loc = base + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {err['loc'][-1]!r}"
        out.append(Issue(f"{where}: {loc}", msg))
    return out


def _compile_amount(spec: AmountSpec, facts: FactDictionary, where: str, loc: str,
                    issues: list[Issue]) -> CompiledAmount | None:
    params: dict[str, Decimal] = {}
    for k, v in spec.params.items():
        try:
            params[k] = _parse_param(v)
        except Exception:
            issues.append(Issue(f"{where}: {loc}.params.{k}", f"not a number or percentage: {v!r}"))
        else:
            if not params[k].is_finite() or params[k].copy_abs() > MAX_ABS:  # nan, inf, 1e400
                issues.append(Issue(f"{where}: {loc}.params.{k}", f"应为不超过1e15的有限数 / must be a finite number "
                                                                 f"of at most 1e15 in size, got {v!r}"))
                del params[k]
        if k in facts:
            issues.append(Issue(f"{where}: {loc}.params.{k}", f"parameter {k!r} shadows a fact of that name"))

    def formula(text: Any, floc: str) -> amounts.Expr | None:
        try:
            expr = amounts.parse_formula(str(text))
        except FormulaError as e:
            issues.append(Issue(f"{where}: {floc}", f"formula {text!r}: {e}"))
            return None
        for n in amounts.names(expr):
            if n not in params and n not in facts:
                hint = facts.suggest(n)
                issues.append(Issue(f"{where}: {floc}", f"unknown name {n!r} in formula{hint}"))
            elif n in facts and facts[n].type not in ("int", "money", "percent", "number"):
                issues.append(Issue(f"{where}: {floc}", f"fact {n!r} is {facts[n].type}, not a number"))
        for node in amounts.nodes(expr):
            if isinstance(node, amounts.Num) and node.value > MAX_ABS:
                issues.append(Issue(f"{where}: {floc}", f"数值过大 / number {node.text[:30]!r} is over 1e15"))
            if isinstance(node, amounts.Bin) and node.op == "/" and not _nonzero(node.right, params, facts):
                shown = amounts.render(node.right, str)
                issues.append(Issue(f"{where}: {floc}", f"除数“{shown}”可能为0 / divides by {shown!r}, which can be "
                                                       f"0: divide by a non-zero constant or parameter, or by a "
                                                       f"fact whose declared minimum is above 0"))
        return expr

    cases: list[tuple[Node | None, amounts.Expr]] = []
    if spec.formula is not None:
        e = formula(spec.formula, f"{loc}.formula")
        if e is not None:
            cases.append((None, e))
    for i, case in enumerate(spec.cases or ()):
        cond = parse_condition(case.when, facts, f"{loc}.cases[{i}].when", sub := [])
        issues += [Issue(f"{where}: {x.where}", x.message) for x in sub]
        e = formula(case.formula, f"{loc}.cases[{i}].formula")
        if cond is not None and e is not None:
            cases.append((cond, e))
    cap = formula(spec.cap, f"{loc}.cap") if spec.cap is not None else None
    floor = formula(spec.floor, f"{loc}.floor") if spec.floor is not None else None
    texts = {k: str(v).strip() for k, v in spec.params.items()}
    return CompiledAmount(spec, tuple(cases), params, texts, cap, floor)


def _nonzero(e: amounts.Expr, params: dict[str, Decimal], facts: FactDictionary) -> bool:
    """Can this divisor never be 0? A constant (numbers and parameters) that is not 0, or a fact whose
    declared minimum is above 0; anything else may be 0 for some company."""
    names = amounts.names(e)
    if all(n in params for n in names):
        try:
            value = amounts.compute(e, params)
        except ArithmeticError:
            return False
        return value is not None and value != 0
    if isinstance(e, amounts.Ref) and e.name in facts:
        low = facts[e.name].min
        return low is not None and low > 0
    return False


def _check_cites(node: Node, seed_norm: str, where: str, issues: list[Issue]) -> None:
    if node.cite and _normalise(node.cite) not in seed_norm:
        issues.append(Issue(f"{where}: {node.path}.cite", f"cite not found verbatim in the seed: {node.cite[:40]!r}"))
    if isinstance(node, Group):
        for c in node.children:
            _check_cites(c, seed_norm, where, issues)


def _compile_rule(raw: Any, idx: int, file_spec: RuleFileSpec, where: str, facts: FactDictionary,
                  regions: dict[str, Any], seed_norm: str | None, issues: list[Issue]) -> CompiledRule | None:
    base = f"$.rules[{idx}]"
    try:
        spec = RuleSpec.model_validate(raw)
    except ValidationError as e:
        issues.extend(_pyd_issues(e, where, base))
        return None
    before = len(issues)
    doc = file_spec.documents.get(spec.document)
    if doc is None:
        import difflib

        close = difflib.get_close_matches(spec.document, list(file_spec.documents), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        issues.append(Issue(f"{where}: {base}.document", f"unknown document {spec.document!r}{hint}"))
    jur = spec.jurisdiction
    if jur.province and jur.province not in facts["province"].values:
        issues.append(Issue(f"{where}: {base}.jurisdiction.province", f"unknown province {jur.province!r}"))
    if jur.region and jur.region not in regions:
        issues.append(Issue(f"{where}: {base}.jurisdiction.region",
                            f"unknown region {jur.region!r}; known: {sorted(regions)}"))
    if not (jur.province or jur.city or jur.region or jur.counties):
        issues.append(Issue(f"{where}: {base}.jurisdiction", "name at least a province"))
    sub: list[Issue] = []
    when = parse_condition(spec.when, facts, f"{base}.when", sub)
    issues.extend(Issue(f"{where}: {x.where}", x.message) for x in sub)
    amount = _compile_amount(spec.amount, facts, where, f"{base}.amount", issues) if spec.amount else None
    if spec.kind == "money" and spec.amount is None:
        pass  # money with no figure in the text (e.g. 给予适当补助): allowed, the result says so
    if not spec.quotes or any(not _normalise(q) for q in spec.quotes):
        issues.append(Issue(f"{where}: {base}.quote", "需要文件原文 / a non-empty quote (or list of quotes) is required"))
    _check_places(jur, regions, f"{where}: {base}.jurisdiction", issues)
    if seed_norm is not None:
        for qi, q in enumerate(spec.quotes):
            if len(_normalise(q)) < 8:
                issues.append(Issue(f"{where}: {base}.quote", "quote too short to carry the condition and amount"))
            elif _normalise(q) not in seed_norm:
                loc = f"{base}.quote" + (f"[{qi}]" if isinstance(spec.quote, list) else "")
                issues.append(Issue(f"{where}: {loc}", f"not found verbatim in seed {file_spec.seed}: "
                                                       f"{q[:50]!r}{'…' if len(q) > 50 else ''}"))
        if when is not None:
            _check_cites(when, seed_norm, where, issues)
    for i, ex in enumerate(spec.examples):
        try:
            company_model().model_validate(ex.facts)
        except CompanyValidationError as e:
            issues.extend(Issue(f"{where}: {base}.examples[{i}].facts.{x.where}", x.message) for x in e.issues)
        if ex.expect.amount is not None and not ex.expect.amount.is_finite():
            issues.append(Issue(f"{where}: {base}.examples[{i}].expect.amount", "应为有限数 / must be a finite number"))
        for m in ex.expect.missing or ():
            if m not in facts:
                issues.append(Issue(f"{where}: {base}.examples[{i}].expect.missing",
                                    f"unknown fact {m!r}{facts.suggest(m)}"))
    end = resolve_end(spec.period, f"{where}: {base}.period", issues)
    basis = spec.period.end_basis
    if basis is not None and seed_norm is not None and _normalise(basis) not in seed_norm:
        issues.append(Issue(f"{where}: {base}.period.end_basis", f"not found verbatim in the seed: {basis[:40]!r}"))
    if spec.period.end_kind in ("derived", "event") and not basis:
        issues.append(Issue(f"{where}: {base}.period.end_basis",
                            f"end_kind {spec.period.end_kind} needs end_basis: the document's words the end rests on"))
    if end is not None and end < spec.period.start:
        issues.append(Issue(f"{where}: {base}.period", f"end {end} is before start {spec.period.start}"))
    if len(issues) > before or when is None or doc is None:
        return None
    if end != spec.period.end:  # an event's end, computed once here so that every reader sees one date
        spec = spec.model_copy(update={"period": spec.period.model_copy(update={"end": end})})
    place = node_from_jurisdiction(jur.model_dump(), regions, f"{base}.jurisdiction")
    condition: Node = Group("all", (*place, when), None, f"{base}") if place else when
    return CompiledRule(spec, where, file_spec.seed, doc, condition, amount, _jurisdiction_text(jur, regions))


def _check_places(jur, regions: dict[str, Any], loc: str, issues: list[Issue]) -> None:
    """A jurisdiction's city must be a city of its province, and its counties counties of its city, as
    places.yaml lists them: a company giving the place correctly must be able to match it."""
    from .places import places

    p = places()
    if jur.city and jur.province in p.cities and jur.city not in p.cities[jur.province]:
        issues.append(Issue(f"{loc}.city", f"{jur.city!r} 不是{jur.province}的城市 / is not a city of {jur.province} "
                                           f"in places.yaml"))
    city = jur.city or (regions.get(jur.region, {}).get("city") if jur.region in regions else None)
    listed = p.counties.get(city) if city else None
    if listed is not None:
        named = list(jur.counties or ()) + list(regions[jur.region]["counties"] if jur.region in regions else ())
        for c in dict.fromkeys(named):
            if c not in listed:
                issues.append(Issue(f"{loc}.counties", f"{c!r} 不是{city}的县（市、区）/ is not a county of {city} "
                                                       f"in places.yaml"))


def _jurisdiction_text(jur, regions) -> str:
    parts = [p for p in (jur.province, jur.city) if p]
    if jur.region:
        parts.append(regions[jur.region].get("zh", jur.region))
    if jur.counties:
        parts.append("、".join(jur.counties))
    return " ".join(dict.fromkeys(parts))


def load_regions() -> dict[str, Any]:
    return read_yaml(PACKAGE / "regions.yaml")


def load_rules(rules_dir: str | Path | None = None, seeds_dir: str | Path | None = None,
               facts: FactDictionary | None = None, check_quotes: bool = True, cache: bool = True) -> RuleSet:
    """Load and validate every `*.yaml` in rules_dir (files starting with `_` are not rules).

    A catalogue (the bundled one, or any rules folder with its seeds) is kept validated in a cache file
    keyed by every input of the load (rule files, seeds, fact/region/size tables, this package's code;
    rule_cache.py): a CLI run then starts in ~0.02 s instead of ~0.35 s. With facts given, quotes not
    checked or cache=False, the folder is read afresh."""
    if cache and facts is None and check_quotes:
        from . import rule_cache

        if rules_dir is None and seeds_dir is None:
            return rule_cache.cached(DEFAULT_RULES, DEFAULT_SEEDS, _load_rules)
        try:
            rules_path, seeds_path = _folders(rules_dir, seeds_dir)
        except TypeError:
            return _load_rules(rules_dir, seeds_dir, facts, check_quotes)  # says what is wrong with them
        if rules_path.is_dir() and seeds_path.is_dir():
            return rule_cache.cached(rules_path, seeds_path, lambda: _load_rules(rules_path, seeds_path))
    return _load_rules(rules_dir, seeds_dir, facts, check_quotes)


def _folders(rules_dir: str | Path | None, seeds_dir: str | Path | None) -> tuple[Path, Path]:
    """The rules folder and its seeds: given, else seeds/ beside the rules, else the bundled seeds."""
    rules_dir = Path(rules_dir) if rules_dir else DEFAULT_RULES
    seeds_dir = Path(seeds_dir) if seeds_dir else (rules_dir.parent / "seeds" if (rules_dir.parent / "seeds").is_dir()
                                                   else DEFAULT_SEEDS)
    return rules_dir, seeds_dir


def _load_rules(rules_dir: str | Path | None = None, seeds_dir: str | Path | None = None,
                facts: FactDictionary | None = None, check_quotes: bool = True) -> RuleSet:
    try:
        rules_dir, seeds_dir = _folders(rules_dir, seeds_dir)
    except TypeError as e:
        raise RuleLoadError([Issue("rules_dir", f"expected a folder path: {e}")]) from None
    facts = facts or default_facts()
    regions = load_regions()
    if not rules_dir.is_dir():
        raise RuleLoadError([Issue(str(rules_dir), "rules folder not found")])
    files = sorted(p for p in rules_dir.glob("*.yaml") if not p.name.startswith("_"))
    if not files:
        raise RuleLoadError([Issue(str(rules_dir), "no rule files (*.yaml) in this folder")])
    issues: list[Issue] = []
    compiled: list[CompiledRule] = []
    seeds: dict[str, str] = {}
    digest = hashlib.sha256()
    for extra in (PACKAGE / "facts.yaml", PACKAGE / "regions.yaml", PACKAGE / "size_standard.yaml",
                  PACKAGE / "events.yaml"):
        digest.update(extra.read_bytes())
    inside = rules_dir.resolve()
    for path in files:
        where = _display(path)
        try:
            if not path.resolve().is_relative_to(inside):  # rules come from advisers' folders too
                raise RuleLoadError([Issue(where, f"leads outside the rules folder {rules_dir}: not read")])
            data = read_file(path, where)  # regular files only, size capped: a FIFO or /dev/zero is refused
            digest.update(path.name.encode() + b"\0" + data)
            raw = parse_yaml(data, where)
        except RuntimeError:  # a symlink loop
            issues.append(Issue(where, "a symlink loop: not read"))
            continue
        except RuleLoadError as e:
            issues.extend(e.issues)
            continue
        try:
            file_spec = RuleFileSpec.model_validate(raw)
        except ValidationError as e:
            issues.extend(_pyd_issues(e, where, "$"))
            continue
        seed_norm = None
        if check_quotes:
            if file_spec.seed not in seeds:
                try:  # a file name in the seeds folder, a regular file, size capped
                    seeds[file_spec.seed] = read_seed(seeds_dir, file_spec.seed, f"{where}: $.seed")
                except RuleLoadError as e:
                    issues.extend(e.issues)
            if file_spec.seed in seeds:
                seed_norm = _seed_norm(file_spec.seed, seeds[file_spec.seed])
        for i, raw_rule in enumerate(file_spec.rules):
            rule = _compile_rule(raw_rule, i, file_spec, where, facts, regions, seed_norm, issues)
            if rule:
                compiled.append(rule)
    ids: dict[str, str] = {}
    for r in compiled:
        if r.id in ids:
            issues.append(Issue(f"{r.file}: rule {r.id}", f"duplicate rule id (also in {ids[r.id]})"))
        ids[r.id] = r.file
    for r in compiled:
        for j, other in enumerate(r.spec.excludes):
            if other not in ids:
                issues.append(Issue(f"{r.file}: rule {r.id}.excludes[{j}]", f"unknown rule id {other!r}"))
        for j, other in enumerate(r.spec.supersedes):
            if other not in ids:
                issues.append(Issue(f"{r.file}: rule {r.id}.supersedes[{j}]", f"unknown rule id {other!r}"))
            elif other == r.id:
                issues.append(Issue(f"{r.file}: rule {r.id}.supersedes[{j}]", "a rule cannot supersede itself"))
        if r.spec.tops_up and r.spec.tops_up not in ids:
            issues.append(Issue(f"{r.file}: rule {r.id}.tops_up", f"unknown rule id {r.spec.tops_up!r}"))
    if issues:
        raise RuleLoadError(issues)
    return RuleSet(compiled, facts, digest.hexdigest()[:16], [_display(p) for p in files], seeds)


_SEED_NORM: dict[str, str] = {}


def _seed_norm(name: str, text: str) -> str:
    key = hashlib.sha1(text.encode()).hexdigest()
    if key not in _SEED_NORM:
        _SEED_NORM[key] = _normalise(text)
    return _SEED_NORM[key]
