"""Fail at load, not mid-batch: every broken rule file gives a message naming file and path."""

import shutil
from pathlib import Path

import pytest
import yaml

from eligibility import RuleLoadError, load_rules
from eligibility.safe_yaml import MAX_FILE_BYTES

HERE = Path(__file__).parent
BROKEN = HERE / "broken_rules"
SEEDS = HERE.parent / "seeds"
EXPECTED = yaml.safe_load((BROKEN / "expected.yml").read_text("utf-8"))


def _load_one(tmp_path, name: str, data: bytes):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / name).write_bytes(data)
    return load_rules(folder, seeds_dir=SEEDS)


def test_the_valid_template_loads(tmp_path):
    rules = _load_one(tmp_path, "ok.yaml", (BROKEN / "_valid.yaml.txt").read_bytes())
    assert [r.id for r in rules] == ["test.rule"]


def test_every_broken_file_has_an_expectation():
    files = {p.stem for p in BROKEN.glob("*.yaml")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_broken_rule_file(tmp_path, kind):
    with pytest.raises(RuleLoadError) as e:
        _load_one(tmp_path, f"{kind}.yaml", (BROKEN / f"{kind}.yaml").read_bytes())
    text = str(e.value)
    assert f"{kind}.yaml" in text, text  # the file is named
    assert EXPECTED[kind] in text, text


def test_oversized_file_is_refused(tmp_path):
    data = b"# padding\n" * (MAX_FILE_BYTES // 10 + 10)
    with pytest.raises(RuleLoadError) as e:
        _load_one(tmp_path, "big.yaml", data)
    assert "the limit is" in str(e.value)


def test_all_problems_are_reported_together(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    for kind in ("unknown_fact", "unknown_key"):
        shutil.copy(BROKEN / f"{kind}.yaml", folder / f"{kind}.yaml")
    with pytest.raises(RuleLoadError) as e:
        load_rules(folder, seeds_dir=SEEDS)
    wheres = " ".join(i.where for i in e.value.issues)
    assert "unknown_fact.yaml" in wheres and "unknown_key.yaml" in wheres


def test_duplicate_rule_ids_across_files(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    valid = (BROKEN / "_valid.yaml.txt").read_bytes()
    (folder / "a.yaml").write_bytes(valid)
    (folder / "b.yaml").write_bytes(valid)
    with pytest.raises(RuleLoadError) as e:
        load_rules(folder, seeds_dir=SEEDS)
    assert "duplicate rule id" in str(e.value)


def test_an_example_date_is_as_of(tmp_path):
    text = (BROKEN / "_valid.yaml.txt").read_text("utf-8").replace("      - name: ok\n", "      - name: ok\n        as_of: 2020-06-01\n")
    rules = _load_one(tmp_path, "ok.yaml", text.encode())
    assert str(rules.rules[0].spec.examples[0].as_of) == "2020-06-01"


def test_catalogue_survives_a_plain_pyyaml_round_trip(tmp_path, rules):
    """Outside tools (the OpenFisca anchor's subset script) read and rewrite our files with PyYAML's
    YAML 1.1 loader, where a bare on/yes/no key turns into a boolean: no key of ours may be one."""
    folder = tmp_path / "rules"
    folder.mkdir()
    for path in sorted((HERE.parent / "rules").glob("*.yaml")):
        data = yaml.safe_load(path.read_text("utf-8"))
        (folder / path.name).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    again = load_rules(folder, seeds_dir=SEEDS, cache=False)
    assert [r.id for r in again.rules] == [r.id for r in rules.rules]
    assert [len(r.spec.examples) for r in again.rules] == [len(r.spec.examples) for r in rules.rules]
    assert [[e.as_of for e in r.spec.examples] for r in again.rules] == \
        [[e.as_of for e in r.spec.examples] for r in rules.rules]


def test_bundled_rules_load_and_have_a_version(rules):
    assert len(rules) > 0
    assert len(rules.version) == 16
