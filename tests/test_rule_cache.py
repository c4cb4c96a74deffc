"""The kept catalogue: a hit is the same rule set as a fresh load; any changed input is a miss."""

import shutil
from pathlib import Path

import pytest

from eligibility import evaluate, rule_cache
from eligibility.loading import DEFAULT_RULES, DEFAULT_SEEDS, _load_rules, load_rules

COMPANY = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
           "industry": "catering", "employees": 40, "revenue": 3_000_000, "insured_employees": 40,
           "unemployment_claimants": 2, "unemployment_insurance_paid": 24_000, "rents_state_owned_premises": True,
           "monthly_rent": 10_000}


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ELIGIBILITY_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def catalogue_copy(tmp_path):
    rules, seeds = tmp_path / "rules", tmp_path / "seeds"
    shutil.copytree(DEFAULT_RULES, rules)
    shutil.copytree(DEFAULT_SEEDS, seeds)
    return rules, seeds


def _first_rule_file(rules_dir: Path) -> Path:
    return next(p for p in sorted(rules_dir.glob("*.yaml")) if not p.name.startswith("_"))


def _counting_load(rules_dir: Path, seeds_dir: Path, calls: list):
    def load():
        calls.append(1)
        return _load_rules(rules_dir, seeds_dir)
    return load


def _same(a, b):
    assert a.version == b.version and a.files == b.files
    assert [r.id for r in a] == [r.id for r in b]
    assert [r.spec for r in a] == [r.spec for r in b]
    assert [r.condition for r in a] == [r.condition for r in b]
    ra, rb = evaluate(COMPANY, on="2020-06-01", rules=a), evaluate(COMPANY, on="2020-06-01", rules=b)
    assert ra.total_amount > 0 and ra.model_dump() == rb.model_dump()


def test_a_hit_is_the_fresh_load(cache_env, catalogue_copy):
    rules_dir, seeds_dir = catalogue_copy
    calls: list = []
    first = rule_cache.cached(rules_dir, seeds_dir, _counting_load(rules_dir, seeds_dir, calls))
    assert len(list(cache_env.glob("rules-*.pickle"))) == 1
    second = rule_cache.cached(rules_dir, seeds_dir, _counting_load(rules_dir, seeds_dir, calls))
    assert calls == [1]  # the second came from the file
    assert second is not first
    _same(first, second)
    _same(second, _load_rules(rules_dir, seeds_dir))


@pytest.mark.parametrize("edit", ["rule", "seed", "new_file"])
def test_any_changed_input_is_a_miss(cache_env, catalogue_copy, edit):
    rules_dir, seeds_dir = catalogue_copy
    calls: list = []
    rule_cache.cached(rules_dir, seeds_dir, _counting_load(rules_dir, seeds_dir, calls))
    if edit == "rule":
        path = _first_rule_file(rules_dir)
        path.write_text(path.read_text("utf-8") + "\n# edited\n", "utf-8")
    elif edit == "seed":
        path = sorted(seeds_dir.glob("*.txt"))[0]
        path.write_bytes(path.read_bytes() + b"\n")
    else:
        shutil.copy(_first_rule_file(rules_dir), rules_dir / "_notes.yaml")
    rule_cache.cached(rules_dir, seeds_dir, _counting_load(rules_dir, seeds_dir, calls))
    assert calls == [1, 1]
    assert len(list(cache_env.glob("rules-*.pickle"))) == 1  # the older entry is gone


def test_a_broken_cache_file_is_a_miss_and_is_replaced(cache_env, catalogue_copy):
    rules_dir, seeds_dir = catalogue_copy
    calls: list = []
    rule_cache.cached(rules_dir, seeds_dir, _counting_load(rules_dir, seeds_dir, calls))
    (entry,) = cache_env.glob("rules-*.pickle")
    entry.write_bytes(b"not a pickle")
    again = rule_cache.cached(rules_dir, seeds_dir, _counting_load(rules_dir, seeds_dir, calls))
    assert calls == [1, 1] and len(again) == len(_load_rules(rules_dir, seeds_dir))
    rule_cache.cached(rules_dir, seeds_dir, _counting_load(rules_dir, seeds_dir, calls))
    assert calls == [1, 1]  # rewritten whole


def test_a_failing_load_is_not_kept(cache_env, catalogue_copy):
    rules_dir, seeds_dir = catalogue_copy
    path = _first_rule_file(rules_dir)
    path.write_text(path.read_text("utf-8").replace("rules:", "rulez:", 1), "utf-8")
    from eligibility import RuleLoadError

    with pytest.raises(RuleLoadError):
        rule_cache.cached(rules_dir, seeds_dir, lambda: _load_rules(rules_dir, seeds_dir))
    assert not list(cache_env.glob("rules-*.pickle"))


def test_off_writes_nothing(tmp_path, monkeypatch, catalogue_copy):
    monkeypatch.setenv("ELIGIBILITY_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    rules_dir, seeds_dir = catalogue_copy
    calls: list = []
    for _ in range(2):
        rule_cache.cached(rules_dir, seeds_dir, _counting_load(rules_dir, seeds_dir, calls))
    assert calls == [1, 1]
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()


def test_an_unwritable_folder_is_no_error(tmp_path, monkeypatch, catalogue_copy):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("ELIGIBILITY_CACHE_DIR", str(blocker / "cache"))  # cannot be a folder
    rules_dir, seeds_dir = catalogue_copy
    assert len(rule_cache.cached(rules_dir, seeds_dir, lambda: _load_rules(rules_dir, seeds_dir))) > 0


def test_the_bundled_catalogue_goes_through_the_cache(cache_env):
    kept = load_rules()
    assert len(list(cache_env.glob("rules-*.pickle"))) == 1
    _same(load_rules(), kept)
    _same(kept, _load_rules())


def test_a_rules_folder_of_ones_own_goes_through_the_cache(cache_env, catalogue_copy):
    """--rules DIR (an adviser's folder, the anchor's subset): kept like the bundled catalogue, and an edit
    to one of its files is read afresh."""
    rules_dir, seeds_dir = catalogue_copy
    kept = load_rules(rules_dir, seeds_dir)
    assert len(list(cache_env.glob("rules-*.pickle"))) == 1
    _same(load_rules(rules_dir, seeds_dir), kept)
    path = _first_rule_file(rules_dir)
    path.write_text(path.read_text(encoding="utf-8").replace("title:", "title:  ", 1), encoding="utf-8")
    again = load_rules(rules_dir, seeds_dir)
    assert again.version != kept.version
    assert len(list(cache_env.glob("rules-*.pickle"))) == 1  # the older entry of this folder is gone


def test_the_fact_dictionary_is_kept_too(cache_env):
    from eligibility.facts import load_fact_dictionary

    calls: list = []

    def load():
        calls.append(1)
        return load_fact_dictionary()

    first = rule_cache.cached_facts(load)
    second = rule_cache.cached_facts(load)
    assert calls == [1] and len(list(cache_env.glob("facts-*.pickle"))) == 1
    assert list(second) == list(first) and second["monthly_rent"] == first["monthly_rent"]
    assert second.column_for("月租金") == first.column_for("月租金") is not None


def test_lint_reads_afresh(cache_env, monkeypatch):
    from typer.testing import CliRunner

    from eligibility import cli, rule_cache as rc

    used: list = []
    monkeypatch.setattr(rc, "cached", lambda *a, **k: used.append(1))
    result = CliRunner().invoke(cli.app, ["rules", "lint", "--no-examples"])
    assert result.exit_code == 0, result.output
    assert "OK: " in result.output and used == []


def test_two_catalogues_keep_their_own_entries(cache_env, catalogue_copy, tmp_path):
    rules_dir, seeds_dir = catalogue_copy
    other_rules, other_seeds = tmp_path / "other" / "rules", tmp_path / "other" / "seeds"
    shutil.copytree(rules_dir, other_rules)
    shutil.copytree(seeds_dir, other_seeds)
    calls: list = []
    for _ in range(2):
        rule_cache.cached(rules_dir, seeds_dir, _counting_load(rules_dir, seeds_dir, calls))
        rule_cache.cached(other_rules, other_seeds, _counting_load(other_rules, other_seeds, calls))
    assert calls == [1, 1]  # the second round came from the two files
    assert len(list(cache_env.glob("rules-*.pickle"))) == 2


def test_entries_unused_for_a_month_are_pruned(cache_env, catalogue_copy):
    import os
    import time

    rules_dir, seeds_dir = catalogue_copy
    cache_env.mkdir(parents=True)
    stale, recent = cache_env / "rules-aaaaaaaaaaaa-old.pickle", cache_env / "rules-bbbbbbbbbbbb-new.pickle"
    for p in (stale, recent):
        p.write_bytes(b"x")
    month_ago = time.time() - (rule_cache.STALE_DAYS + 1) * 86400
    os.utime(stale, (month_ago, month_ago))
    rule_cache.cached(rules_dir, seeds_dir, lambda: _load_rules(rules_dir, seeds_dir))
    assert not stale.exists() and recent.exists()
    assert len(list(cache_env.glob("rules-*.pickle"))) == 2
