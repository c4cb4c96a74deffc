"""The one YAML reader: safe tags only, no aliases, no duplicate keys, bounded size and depth, UTF-8."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from .errors import Issue, RuleLoadError

PROJECT = Path(__file__).parent.parent
MAX_FILE_BYTES = 2_000_000
MAX_DEPTH = 40


class _Strict:
    """Composer/constructor overrides that refuse aliases, duplicate keys and deep nesting."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "anchors and aliases (*name) are not allowed in rule files", event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.constructor.ConstructorError(
                    None, None, f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark)
            seen[key] = True
        return super().construct_mapping(node, deep=deep)


class _StrictLoader(_Strict, yaml.SafeLoader):
    """Pure-Python safe loader with the strict checks."""


try:  # libyaml scans and parses in C (4x faster app start); composing stays in Python so the checks hold
    from yaml.cyaml import CParser

    class _FastLoader(_Strict, Composer, CParser, SafeConstructor, Resolver):
        """Same checks as _StrictLoader, with libyaml's event parser underneath."""

        def __init__(self, stream):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
except ImportError:  # PyYAML built without libyaml
    _FastLoader = None  # type: ignore[assignment,misc]

# YAML 1.1 reads on/off/yes/no as booleans (so an example's `on:` key would become True):
# here only true/false are booleans, everything else stays text.
_Strict.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
for _first in "tTfF":
    _Strict.yaml_implicit_resolvers.setdefault(_first, []).append(("tag:yaml.org,2002:bool", _BOOL))


LOADER = _FastLoader or _StrictLoader


def read_file(path: Path, where: str | None = None, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; RuleLoadError otherwise.

    Opened without blocking and checked on the open descriptor: a FIFO, a device (/dev/zero), a folder
    or a symlink to one is refused rather than waited on or read for ever; a file that grows while
    it is read is cut at the limit and refused."""
    where = where or display(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise RuleLoadError([Issue(where, f"cannot read: {e.strerror or e}")]) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RuleLoadError([Issue(where, "not a regular file (a folder, device, pipe or socket): not read")])
        if st.st_size > limit:
            raise RuleLoadError([Issue(where, f"file is {st.st_size:,} bytes; the limit is {limit:,}")])
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise RuleLoadError([Issue(where, f"cannot read: {e.strerror or e}")]) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise RuleLoadError([Issue(where, f"file is over {limit:,} bytes (the limit)")])
    return data


MAX_SEED_BYTES = 20_000_000


def read_seed(seeds_dir: Path, name: Any, where: str) -> str:
    """The text of seed `name`: a plain file name (no folder, no '..') of a regular file inside seeds_dir
    (a symlink leading out of the folder is refused), UTF-8, at most MAX_SEED_BYTES."""
    if (not isinstance(name, str) or not name.strip() or name.startswith(".") or any(c in name for c in "/\\\0:")
            or name != name.strip()):
        raise RuleLoadError([Issue(where, f"seed must be the name of a file in the seeds folder, got {name!r}")])
    path = seeds_dir / name
    try:
        folder = seeds_dir.resolve(strict=True)
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise RuleLoadError([Issue(where, f"seed {name!r} not found in {seeds_dir}")]) from None
    if not real.is_relative_to(folder):
        raise RuleLoadError([Issue(where, f"seed {name!r} leads outside the seeds folder {seeds_dir}: not read")])
    data = read_file(real, where, MAX_SEED_BYTES)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RuleLoadError([Issue(where, f"seed {name!r} is not UTF-8 text (byte {e.start})")]) from None


def read_yaml(path: Path, where: str | None = None) -> Any:
    """Read one YAML file safely; raise RuleLoadError naming the file and line."""
    where = where or display(path)
    return parse_yaml(read_file(path, where), where)


def parse_yaml(data: bytes, where: str) -> Any:
    """The YAML of bytes already read (read_file): UTF-8, strict loader; RuleLoadError naming the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RuleLoadError([Issue(where, f"not UTF-8 text (byte {e.start}); save the file as UTF-8")]) from None
    try:
        return yaml.load(text, Loader=LOADER)  # noqa: S506 - a SafeConstructor with strict checks
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise RuleLoadError([Issue(f"{where}{line}", f"invalid YAML: {problem}")]) from None
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as e:  # e.g. 2020-13-01
        raise RuleLoadError([Issue(where, f"invalid YAML value: {e}")]) from None


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT.resolve()))
    except (ValueError, OSError, RuntimeError):  # elsewhere; RuntimeError: a symlink loop
        return str(path)


