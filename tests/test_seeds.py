"""The five source documents are the project's copies, byte for byte."""

import hashlib
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def test_seed_checksums_match():
    lines = (SEEDS / "SHA256SUMS").read_text().split("\n")
    entries = [line.split() for line in lines if line.strip()]
    assert len(entries) == 5
    for digest, name in entries:
        actual = hashlib.sha256((SEEDS / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name} differs from SHA256SUMS"


def test_seeds_equal_shared_copy_when_present():
    shared = SEEDS.parent.parent / "shared" / "seeds"
    if not shared.is_dir():
        return
    for p in shared.glob("*.txt"):
        assert (SEEDS / p.name).read_bytes() == p.read_bytes(), p.name
