"""The one YAML reader: safe tags only, no aliases, no duplicate keys, bounded size and depth, UTF-8."""

from __future__ import annotations

import re
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


def read_yaml(path: Path, where: str | None = None) -> Any:
    """Read one YAML file safely; raise RuleLoadError naming the file and line."""
    where = where or display(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RuleLoadError([Issue(where, f"cannot read: {e.strerror or e}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise RuleLoadError([Issue(where, f"file is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,}")])
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
    except (ValueError, TypeError, OverflowError, RecursionError) as e:  # e.g. a date like 2020-13-01
        raise RuleLoadError([Issue(where, f"invalid YAML value: {e}")]) from None


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT.resolve()))
    except ValueError:
        return str(path)


