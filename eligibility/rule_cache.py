"""The bundled catalogue, validated once and kept: a pickle keyed by everything the load reads.

Loading 240 rules means parsing YAML, validating with pydantic and finding every quote in its seed
(~0.35 s); every CLI run and app start paid it. The key hashes the rule files, the seeds, the
package's tables and source code, and the Python, pydantic and PyYAML versions, so an edit to any of them
is a miss and a fresh, fully validated load. A cache that cannot be read or written is ignored.
ELIGIBILITY_CACHE_DIR chooses the folder ("off" turns the cache off); the default is
$XDG_CACHE_HOME/eligibility or ~/.cache/eligibility. Each rules/seeds location keeps one entry;
entries unused for STALE_DAYS are pruned (temporary clones). Pickle is only loaded from a file the
user owns.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import sys
import tempfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Callable

PACKAGE = Path(__file__).parent
PREFIX = "rules-"
FACTS_PREFIX = "facts-"
STALE_DAYS = 30


def cache_dir() -> Path | None:
    env = os.environ.get("ELIGIBILITY_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "no") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eligibility"


def place(rules_dir: Path, seeds_dir: Path) -> str:
    """Which catalogue (its folders): each keeps its own entry, so two checkouts do not evict each other."""
    return hashlib.sha256(f"{rules_dir.resolve()}\0{seeds_dir.resolve()}".encode()).hexdigest()[:12]


def key(rules_dir: Path, seeds_dir: Path) -> str:
    """A digest of every input of the load, and of the code that loads it."""
    import pydantic
    import yaml

    from .safe_yaml import MAX_SEED_BYTES, read_file

    h = hashlib.sha256()
    h.update(f"{pydantic.VERSION}\0{yaml.__version__}\0".encode() + _package_digest())
    h.update(f"{rules_dir.resolve()}\0{seeds_dir.resolve()}\0".encode())
    inputs = [*sorted(rules_dir.glob("*.yaml")), *sorted(p for p in seeds_dir.iterdir() if p.is_file())]
    for p in inputs:
        h.update(f"{p.parent.name}/{p.name}\0".encode())
        h.update(read_file(p, limit=MAX_SEED_BYTES))  # regular files only: a FIFO is refused, not waited on
        h.update(b"\0")
    return h.hexdigest()[:32]


def cached(rules_dir: Path, seeds_dir: Path, load: Callable[[], object]):
    """load() (the rule set), or the kept copy of its result for the same inputs."""
    if not (rules_dir.is_dir() and seeds_dir.is_dir()):
        return _cached(None, load)
    return _cached(lambda: f"{PREFIX}{place(rules_dir, seeds_dir)}-{key(rules_dir, seeds_dir)}.pickle", load)


def cached_facts(load: Callable[[], object]):
    """load() (the bundled fact dictionary), or its kept copy: reading facts.yaml takes ~0.1 s, and a batch
    checks a list's header with it before the rules (which carry their own copy) are loaded."""
    # the dictionary is plain dataclasses read by this package's code: no library versions in its key
    return _cached(lambda: f"{FACTS_PREFIX}{hashlib.sha256(_package_digest()).hexdigest()[:32]}.pickle", load)


@cache
def _package_digest() -> bytes:
    """This package's code and tables (and the Python and pickle versions), read once per process: both
    caches' keys include it, and a batch asks for both at start-up."""
    h = hashlib.sha256(f"{sys.version}\0{pickle.HIGHEST_PROTOCOL}\0".encode())
    for p in [*sorted(PACKAGE.glob("*.py")), *sorted(PACKAGE.glob("*.yaml"))]:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.digest()


def _cached(name: Callable[[], str] | None, load: Callable[[], object]):
    folder = cache_dir()
    path = None
    if folder is not None and name is not None:
        try:
            path = folder / name()
            if path.is_file() and _owned(path):
                with open(path, "rb") as f:
                    rules = _unpickle(f.read())
                try:
                    os.utime(path)  # in use: not pruned as stale
                except OSError:
                    pass
                return rules
        except Exception:  # noqa: BLE001 - a stale or broken cache is a miss
            pass
    with _no_gc():  # everything allocated here lives on: collections during the load are pure cost
        rules = load()
    if path is not None:
        _store(path, rules)
    return rules


def _unpickle(data: bytes):
    with _no_gc():
        return pickle.loads(data)


@contextmanager
def _no_gc():
    """The garbage collector paused (then restored as it was) while long-lived objects are built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _unused(path: Path) -> bool:
    import time

    return time.time() - path.stat().st_mtime > STALE_DAYS * 86400


def _owned(path: Path) -> bool:
    st = path.stat()
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def _store(path: Path, rules) -> None:
    """Write atomically (a reader never sees half a file); older entries of the same folders are removed."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(rules, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        tmp = None
        same_place = path.name.rsplit("-", 1)[0] + "-"
        for old in (*path.parent.glob(f"{PREFIX}*.pickle"), *path.parent.glob(f"{FACTS_PREFIX}*.pickle")):
            # older entries of these folders, and any entry unused for STALE_DAYS (temporary clones)
            if old != path and (old.name.startswith(same_place) or _unused(old)):
                old.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - no cache is no error
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)

