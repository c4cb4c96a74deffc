"""How much of each source document the catalogue accounts for.

Every numbered article of a seed (一、 / （一） / 1. / （1）) should be covered by a rule's quote or by an
entry of the not-encoded lists (`rules/_not_encoded.yaml` and `rules/_not_encoded.d/*.yaml`, each a YAML
list of `{seed, document, quote, reason}`). This module finds the documents inside each seed (a
compilation's table of contents, or the titles named in the rule files), the articles inside each
document, and where every quote sits, and reports per seed and document what is encoded, what was
left out on purpose and which articles nobody has looked at.

Everything is matched whitespace-insensitively (as the loader matches quotes): positions are
positions in the seed with all whitespace removed. Rule files are read as plain YAML, not compiled,
so coverage works while some rules do not load (`eligibility rules lint` is the place for that).
"""

from __future__ import annotations

import bisect
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Issue, RuleLoadError
from .safe_yaml import PROJECT, display, read_seed, read_yaml

NOT_ENCODED_FILE = "_not_encoded.yaml"
NOT_ENCODED_DIR = "_not_encoded.d"
NOT_ENCODED_KEYS = ("seed", "document", "quote", "reason")
REQUIRED_KEYS = ("seed", "quote", "reason")
MIN_QUOTE = 4  # normalised characters; a bare heading such as 二、组成人员 is six

_WS = re.compile(r"\s+")
_TITLE_NOISE = re.compile(r"[\s《》〈〉“”\"'、，,·.…\-－—*]")  # ignored when matching document titles


def normalise(text: str) -> str:
    """The form quotes are matched in: no whitespace at all (as in the loader)."""
    return _WS.sub("", text)


# ---------------------------------------------------------------- seed text in normalised coordinates


class SeedText:
    """A seed with its whitespace-free form and the map from normalised to original offsets."""

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        keep = [i for i, ch in enumerate(text) if not ch.isspace()]
        self.orig = keep + [len(text)]  # orig[k] = offset in text of normalised char k
        self.norm = "".join(text[i] for i in keep)
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    @property
    def keyed(self) -> tuple[str, list[int]]:
        """The text without spaces and title punctuation, with each character's original offset."""
        if not hasattr(self, "_keyed"):
            keep = [i for i, ch in enumerate(self.text) if not _TITLE_NOISE.match(ch)]
            self._keyed = ("".join(self.text[i] for i in keep), keep)
        return self._keyed

    def to_norm(self, offset: int) -> int:
        """First normalised index at or after original `offset`."""
        return bisect.bisect_left(self.orig, offset, 0, len(self.orig) - 1) if offset < len(self.text) else len(
            self.norm)

    def line_of(self, norm_index: int) -> int:
        """1-based line number of a normalised position."""
        return bisect.bisect_right(self._line_starts, self.orig[min(norm_index, len(self.norm))])

    def find_all(self, quote_norm: str, lo: int = 0, hi: int | None = None) -> list[tuple[int, int]]:
        """Every occurrence (overlapping ones too) of a normalised quote, as (start, end)."""
        hi = len(self.norm) if hi is None else hi
        out: list[tuple[int, int]] = []
        if not quote_norm:
            return out
        k = self.norm.find(quote_norm, lo)
        while k >= 0 and k + len(quote_norm) <= hi:
            out.append((k, k + len(quote_norm)))
            k = self.norm.find(quote_norm, k + 1)
        return out


def _at_heading(text: str, offset: int) -> bool:
    """Does original `offset` start a line or follow a run of full-width spaces (a heading position)?"""
    i = offset - 1
    while i >= 0 and text[i] in " \t\r*#>":  # markdown leftovers (**title**) are not text
        i -= 1
    return i < 0 or text[i] in "\n\u3000"


# ---------------------------------------------------------------- articles

_CN = "一二三四五六七八九十百零〇"
# heading label -> level; the conventional hierarchy is 一、 > （一） > 1. > （1）
_LABELS = (
    (1, rf"[{_CN}]{{1,4}}、"),
    (2, rf"[（(][ \t]*[{_CN}]{{1,4}}[ \t]*[)）]"),
    (3, r"\d{1,2}[ \t]*[.．、](?![\d%％])"),
    (4, r"[（(][ \t]*\d{1,2}[ \t]*[)）]"),
)
# where a heading may stand: at a line start, after full-width spaces (the Hebei 2020 seed runs
# many articles together in one line), or right after a sentence or a closing bracket (the
# Henan seed has lost its line breaks)
_BEFORE = r"(?:^|(?<=[\n\u3000。；;）)*]))[ \t\u3000*]*"  # * : markdown bold left in a seed (**六、…**)
_HEADING = re.compile(_BEFORE + "(" + "|".join(f"(?P<l{lv}>{rx})" for lv, rx in _LABELS) + r")[ \t]*(?=\S)",
                      re.M)
_CN_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0}


def chinese_number(s: str) -> int | None:
    """一 -> 1, 十二 -> 12, 二十三 -> 23 (enough for article numbers)."""
    if not s:
        return None
    if all(c in _CN_DIGITS for c in s) and len(s) > 1:
        return int("".join(str(_CN_DIGITS[c]) for c in s))
    total, cur = 0, 0
    for c in s:
        if c in _CN_DIGITS:
            cur = _CN_DIGITS[c]
        elif c == "十":
            total += (cur or 1) * 10
            cur = 0
        elif c == "百":
            total += (cur or 1) * 100
            cur = 0
        else:
            return None
    return total + cur


@dataclass
class Article:
    """One numbered heading and its text, up to the next heading of the same or a higher level."""

    level: int
    label: str  # normalised label as printed: 一、 （一） 1. （1）
    number: int | None
    start: int  # normalised offsets in the seed; the span includes sub-articles
    end: int
    heading: str  # the first words after the label
    line: int
    path: str = ""  # labels of the enclosing articles and this one, e.g. 二、（三）1.
    occurrences: int = 1  # the same article printed several times (a scrambled seed)
    covered: bool = False
    covered_by: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.level, self.label, normalise(self.heading)[:12])

    def title(self, width: int = 30) -> str:
        words = self.heading if len(self.heading) <= width else self.heading[:width] + "…"
        return f"{self.label}{words}"


def _label_text(m: re.Match) -> tuple[int, str, int | None]:
    for lv, _ in _LABELS:
        raw = m.group(f"l{lv}")
        if raw:
            lab = re.sub(r"[ \t]", "", raw)
            digits = re.sub(r"[^0-9" + _CN + "]", "", lab)
            num = int(digits) if digits.isdigit() else chinese_number(digits)
            if lv == 2:
                lab = f"（{digits}）"
            elif lv == 4:
                lab = f"（{digits}）"
            elif lv == 3:
                lab = f"{digits}."
            return lv, lab, num
    raise AssertionError(m.group(0))  # pragma: no cover


_HEADING_END = re.compile(r"[。；;\n]|\u3000\u3000|[（(][ \t]*[" + _CN + r"]{1,4}[ \t]*[)）]")
# a sub-article run into its parent's title: 一、多点发力，促进消费有序恢复（一）实施财税支持政策
_RUN_IN = re.compile(r"[^。；;\n（(]{1,40}?(?P<l2>[（(][ \t]*[" + _CN + r"]{1,4}[ \t]*[)）])[ \t]*(?=\S)")


def _heading_words(seed: SeedText, norm_start: int, limit: int = 40) -> str:
    """Words after the label: up to the first full stop, line end or run-in sub-article, at most `limit`."""
    o = seed.orig[norm_start] if norm_start < len(seed.norm) else len(seed.text)
    tail = seed.text[o:o + limit * 3]
    tail = _HEADING_END.split(tail, maxsplit=1)[0]
    return normalise(tail.replace("*", ""))[:limit]


def find_articles(seed: SeedText, start: int = 0, end: int | None = None) -> list[Article]:
    """Numbered articles in normalised range [start, end) of a seed, in text order.

    A heading counts where it starts a line, follows full-width spaces, a full stop or a closing
    bracket; an article's span runs to the next heading of the same or a higher level, so a
    parent's span includes its sub-articles.
    """
    end = len(seed.norm) if end is None else end
    o_start = seed.orig[start] if start < len(seed.norm) else len(seed.text)
    o_end = seed.orig[end] if end < len(seed.norm) else len(seed.text)
    found: list[Article] = []
    seen: set[int] = set()

    def add(level: int, label: str, number: int | None, label_start: int, body_start: int) -> None:
        n0 = seed.to_norm(label_start)
        if n0 < start or n0 >= end or n0 in seen:
            return
        seen.add(n0)
        heading = _heading_words(seed, seed.to_norm(body_start))
        if level in (1, 3) and not heading:
            return
        found.append(Article(level, label, number, n0, end, heading, seed.line_of(n0)))

    for m in _HEADING.finditer(seed.text, o_start, o_end):
        level, label, number = _label_text(m)
        add(level, label, number, m.start(1), m.end())
        if level == 1:
            run = _RUN_IN.match(seed.text, m.end(), o_end)
            if run:
                digits = re.sub(r"[^" + _CN + "]", "", run.group("l2"))
                add(2, f"（{digits}）", chinese_number(digits), run.start("l2"), run.end())
    # spans: to the next heading of the same or a higher level
    for i, a in enumerate(found):
        for b in found[i + 1:]:
            if b.level <= a.level:
                a.end = b.start
                break
    stack: list[Article] = []
    for a in found:
        while stack and stack[-1].level >= a.level:
            stack.pop()
        a.path = "".join(s.label for s in stack) + a.label
        stack.append(a)
    return found


def repeats_passages(seed: SeedText, start: int, end: int, length: int = 100) -> bool:
    """Does [start, end) print some passage of `length` characters twice (a scrambled, duplicated seed)?"""
    text = seed.norm[start:end]
    for k in range(0, max(0, len(text) - length), length // 4):
        piece = text[k:k + length]
        if text.find(piece, k + 1) >= 0:
            return True
    return False


def chinese_numeral(n: int) -> str:
    """1 -> 一, 12 -> 十二, 23 -> 二十三 (1..99)."""
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


def label_for(level: int, n: int) -> str:
    return {1: f"{chinese_numeral(n)}、", 2: f"（{chinese_numeral(n)}）", 3: f"{n}.", 4: f"（{n}）"}[level]


def numbering_gaps(articles: list[Article], scrambled: bool = False) -> list[str]:
    """Article numbers the text skips (三、 after 二、 is missing): a heading lost in the seed, or one
    this module does not recognise. Numbering may restart at 1 or continue under a new parent.
    For a scrambled text, every number below the highest one of its level that never appears."""
    gaps: list[tuple[int, int]] = []
    if scrambled:
        levels: dict[int, set[int]] = {}
        for a in articles:
            if a.number:
                levels.setdefault(a.level, set()).add(a.number)
        for lv, nums in sorted(levels.items()):
            gaps += [(lv, n) for n in range(1, max(nums)) if n not in nums]
    else:
        last: dict[int, int] = {}
        for a in articles:
            if not a.number:
                continue
            prev = last.get(a.level, 0)
            if a.number > prev + 1:
                gaps += [(a.level, n) for n in range(prev + 1, a.number)]
            last[a.level] = a.number
    return [label_for(lv, n) for lv, n in gaps]


def merge_duplicates(articles: list[Article], merge: bool = True) -> list[tuple[Article, list[Article]]]:
    """Group repeated printings of the same article (same level, label and first words).

    Only for a text that repeats passages: elsewhere two plans in one document may both have a
    （一）加强组织领导, and they are different articles.
    """
    if not merge:
        return [(a, [a]) for a in articles]
    groups: dict[tuple, list[Article]] = {}
    for a in articles:
        groups.setdefault(a.key, []).append(a)
    out = []
    for a in articles:
        g = groups.get(a.key)
        if g and g[0] is a:
            out.append((a, g))
    return out


# ---------------------------------------------------------------- documents inside a seed


@dataclass
class Document:
    seed: str
    title: str
    part: int | None = None  # number in a compilation's table of contents
    keys: list[str] = field(default_factory=list)  # rule-file document keys naming it
    number: str | None = None  # 文号
    start: int | None = None  # normalised span in the seed; None: not found in the text
    end: int | None = None

    @property
    def name(self) -> str:
        return f"{self.part}. {self.title}" if self.part is not None else self.title

    def contains(self, span: tuple[int, int]) -> bool:
        return self.start is not None and self.start <= span[0] and span[1] <= (self.end or 0)


_TOC_ENTRY = re.compile(r"^\s*(\d{1,3})[.．、]\s*(.+?)[\s.…·]*[(（]\s*(\d+)\s*[)）]\s*$")


def parse_toc(text: str) -> tuple[list[tuple[int, str]], int] | None:
    """A compilation's table of contents (目录): [(number, title)], and where it ends (original offset)."""
    m = re.search(r"^[ \t\u3000]*目[ \t\u3000]*录[ \t\u3000]*$", text, re.M)
    if not m:
        return None
    entries: list[tuple[int, str]] = []
    pending = ""
    end = m.end()
    pos = m.end()
    misses = 0
    for line in text[m.end():].split("\n"):
        pos_line = pos
        pos += len(line) + 1
        s = line.strip()
        if not s:
            continue
        if re.fullmatch(r"[一二三四五六七八九十]+、\S{1,12}", s) and not pending:
            continue  # a section heading of the contents (一、市级文件)
        candidate = (pending + " " + s).strip() if pending else s
        em = _TOC_ENTRY.match(candidate)
        if em:
            entries.append((int(em.group(1)), em.group(2).strip()))
            pending = ""
            end = pos_line + len(line)
            misses = 0
            continue
        if re.match(r"\d{1,3}[.．、]", s) or pending:
            pending = candidate
            misses += 1
            if misses > 3:
                break
            continue
        break  # the contents are over
    return (entries, end) if entries else None


def _title_key(text: str) -> str:
    return _TITLE_NOISE.sub("", text)


def _title_match(seed: SeedText, title: str, lo: int, hi: int | None = None,
                 min_ratio: float = 0.75) -> int | None:
    """Normalised offset where `title` stands as a heading in [lo, hi), by similarity of its first characters.

    Punctuation and spaces are ignored on both sides (titles are printed over several lines, with or
    without 《》), and the title's beginning must stand at a line start: a signature or a mention
    of the same issuer in running text does not count.
    """
    nt = _title_key(title)
    if len(nt) < 4:
        return None
    keyed, where = seed.keyed
    probe = nt[: min(8, len(nt))]
    hi = len(seed.norm) if hi is None else hi
    k = keyed.find(probe, bisect.bisect_left(where, seed.orig[lo]) if lo < len(seed.norm) else len(keyed))
    while k >= 0:
        o = where[k]
        n = seed.to_norm(o)
        if n >= hi:
            break
        if _at_heading(seed.text, o):
            sm = difflib.SequenceMatcher(None, nt, keyed[k:k + len(nt) + 60], autojunk=False)
            matched = sum(b.size for b in sm.get_matching_blocks())
            if matched / len(nt) >= min_ratio:
                return n
        k = keyed.find(probe, k + 1)
    return None


# ---------------------------------------------------------------- the catalogue as plain data


@dataclass
class Quote:
    text: str  # as written
    owner: str  # rule id, or 'file.yaml[3]' for a not-encoded entry
    kind: str  # rule | not_encoded
    seed: str
    document: str | int | None  # rule-file document key (or a part number)
    where: str  # file and YAML path, for messages
    spans: list[tuple[int, int]] = field(default_factory=list)  # occurrences used for coverage
    doc: Document | None = None


@dataclass
class RuleFileInfo:
    path: Path
    seed: str | None
    documents: dict[str, dict[str, Any]]
    rules: list[dict[str, Any]]


@dataclass
class SeedCoverage:
    seed: SeedText
    title: str
    documents: list[Document]
    articles: dict[int, list[tuple[Article, list[Article]]]] = field(default_factory=dict)  # by document index
    has_toc: bool = False
    scrambled: set[int] = field(default_factory=set)  # documents that print passages twice
    gaps: dict[int, list[str]] = field(default_factory=dict)  # article numbers the text skips


@dataclass
class Catalogue:
    """Rule files, not-encoded lists and seeds, with documents located and quotes placed."""

    rules_dir: Path
    seeds_dir: Path
    rule_files: list[RuleFileInfo]
    not_encoded_files: list[Path]
    seeds: dict[str, SeedCoverage]
    quotes: list[Quote]
    problems: list[Issue]  # not-encoded validation
    notes: list[Issue]  # rule files (for information): unreadable, unknown seed or document, quote not in the seed


def _seeds_dir(rules_dir: Path, seeds_dir: Path | None) -> Path:
    if seeds_dir:
        return Path(seeds_dir)
    local = rules_dir.parent / "seeds"
    return local if local.is_dir() else PROJECT / "seeds"


def not_encoded_paths(rules_dir: Path) -> list[Path]:
    """`rules/_not_encoded.yaml` first, then `rules/_not_encoded.d/*.yaml` by name."""
    out = []
    single = rules_dir / NOT_ENCODED_FILE
    if single.is_file():
        out.append(single)
    folder = rules_dir / NOT_ENCODED_DIR
    if folder.is_dir():
        out += sorted(p for p in folder.glob("*.yaml") if p.is_file())
    return out


def _read_rule_files(rules_dir: Path, notes: list[Issue]) -> list[RuleFileInfo]:
    out = []
    for path in sorted(p for p in rules_dir.glob("*.yaml") if not p.name.startswith("_")):
        try:
            raw = read_yaml(path)
        except RuleLoadError as e:
            notes.extend(e.issues)
            continue
        if not isinstance(raw, dict):
            notes.append(Issue(display(path), "not a rule file (expected a mapping with seed, documents, rules)"))
            continue
        docs = raw.get("documents") if isinstance(raw.get("documents"), dict) else {}
        rules = [r for r in (raw.get("rules") or []) if isinstance(r, dict)] if isinstance(raw.get("rules"), list) \
            else []
        out.append(RuleFileInfo(path, raw.get("seed") if isinstance(raw.get("seed"), str) else None,
                                {str(k): (v if isinstance(v, dict) else {}) for k, v in docs.items()}, rules))
    return out


def _documents_for_seed(seed: SeedText, infos: list[tuple[str, dict[str, Any]]]) -> tuple[list[Document], bool]:
    """The documents of one seed, located in its text. `infos` are (key, documents-map entry) from rule files."""
    toc = parse_toc(seed.text)
    docs: list[Document] = []
    if toc:
        entries, toc_end = toc
        pos = seed.to_norm(toc_end)
        for number, title in entries:
            d = Document(seed.name, title, number)
            k = _title_match(seed, title, pos)
            if k is not None:
                d.start = k
                pos = k + 1
            docs.append(d)
        by_part = {d.part: d for d in docs}
        for key, info in infos:
            part = info.get("part")
            d = by_part.get(part) if isinstance(part, int) else None
            if d is None:  # no part: the table-of-contents entry with the most similar title
                title = normalise(str(info.get("title", "")))
                best = max(docs, key=lambda x: difflib.SequenceMatcher(None, normalise(x.title), title).ratio(),
                           default=None)
                if best and difflib.SequenceMatcher(None, normalise(best.title), title).ratio() > 0.8:
                    d = best
            if d is None:
                d = Document(seed.name, str(info.get("title") or key), part if isinstance(part, int) else None)
                docs.append(d)
            if key not in d.keys:
                d.keys.append(key)
            if info.get("number") and not d.number:
                d.number = str(info["number"])
    else:
        for key, info in infos:
            title = str(info.get("title") or key)
            same = next((d for d in docs if normalise(d.title) == normalise(title)), None)
            if same is None:
                same = Document(seed.name, title, info.get("part") if isinstance(info.get("part"), int) else None)
                docs.append(same)
            if key not in same.keys:
                same.keys.append(key)
            if info.get("number") and not same.number:
                same.number = str(info["number"])
        if not docs:
            first = next((ln.strip() for ln in seed.text.split("\n") if ln.strip()), seed.name)
            docs.append(Document(seed.name, first[:80]))
        if len(docs) == 1:
            docs[0].start = 0
        else:
            for d in docs:
                d.start = _title_match(seed, d.title, 0)
            located = sorted((d for d in docs if d.start is not None), key=lambda d: d.start)
            if located:
                located[0].start = 0  # the covering notice belongs to the first document
            order = {id(d): i for i, d in enumerate(docs)}
            docs.sort(key=lambda d: (d.start is None, d.start or 0, order[id(d)]))
    # ends: the next located document's start
    located = sorted((d for d in docs if d.start is not None), key=lambda d: d.start)
    for a, b in zip(located, located[1:]):
        a.end = b.start
    if located:
        located[-1].end = len(seed.norm)
    return docs, bool(toc)


def seed_title(text: str, document_titles: list[str] | None = None, name: str = "") -> str:
    """A compilation's name (the line with 汇编), a single document's title, or the seed's first line."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if parse_toc(text):
        named = [ln for ln in lines[:12] if "汇编" in ln]
        if named:
            return re.sub(r"\s+", " ", named[0])
    if document_titles and len(document_titles) == 1:
        return document_titles[0]
    first = re.split(r"发布日期|发布时间", lines[0] if lines else name)[0]
    return re.sub(r"\s+", " ", first)[:90]


def build_catalogue(rules_dir: str | Path | None = None, seeds_dir: str | Path | None = None) -> Catalogue:
    """Read everything, locate documents and articles, place every quote, validate the not-encoded lists."""
    rules_dir = Path(rules_dir) if rules_dir else PROJECT / "rules"
    seeds_path = _seeds_dir(rules_dir, Path(seeds_dir) if seeds_dir else None)
    notes: list[Issue] = []
    problems: list[Issue] = []
    rule_files = _read_rule_files(rules_dir, notes)

    # every seed on disk, with the documents the rule files name
    seed_names = sorted(p.name for p in seeds_path.glob("*.txt")) if seeds_path.is_dir() else []
    texts: dict[str, SeedText] = {}
    for name in seed_names:
        try:  # a regular file in the folder, size capped (a FIFO or a link to /dev/zero is not waited on)
            texts[name] = SeedText(name, read_seed(seeds_path, name, display(seeds_path / name)))
        except RuleLoadError as e:
            notes.extend(e.issues)
    infos: dict[str, list[tuple[str, dict[str, Any]]]] = {n: [] for n in texts}
    for rf in rule_files:
        if rf.seed not in texts:
            notes.append(Issue(f"{display(rf.path)}: $.seed", f"unknown seed {rf.seed!r}"))
            continue
        infos[rf.seed] += list(rf.documents.items())
    seeds: dict[str, SeedCoverage] = {}
    for name, st in texts.items():
        docs, has_toc = _documents_for_seed(st, infos[name])
        title = seed_title(st.text, [d.title for d in docs if d.keys] if len(docs) == 1 else None, name)
        sc = SeedCoverage(st, title, docs, has_toc=has_toc)
        for i, d in enumerate(docs):
            if d.start is not None:
                found = find_articles(st, d.start, d.end)
                scrambled = repeats_passages(st, d.start, d.end or len(st.norm))
                if scrambled:
                    sc.scrambled.add(i)
                sc.articles[i] = merge_duplicates(found, scrambled)
                gaps = numbering_gaps(found, scrambled)
                if gaps:
                    sc.gaps[i] = gaps
        seeds[name] = sc

    def doc_for(seed: str, key: Any) -> Document | None:
        sc = seeds.get(seed)
        if sc is None or key is None:
            return None
        for d in sc.documents:
            if key in d.keys or (isinstance(key, int) and not isinstance(key, bool) and d.part == key):
                return d
        return None

    quotes: list[Quote] = []
    # rule quotes
    for rf in rule_files:
        if rf.seed not in seeds:
            continue
        for i, r in enumerate(rf.rules):
            q = r.get("quote")
            parts = [q] if isinstance(q, str) else [x for x in q if isinstance(x, str)] if isinstance(q, list) else []
            rid = str(r.get("id") or f"{display(rf.path)}[{i}]")
            for j, text in enumerate(parts):
                loc = f"{display(rf.path)}: $.rules[{i}].quote" + (f"[{j}]" if isinstance(q, list) else "")
                quotes.append(Quote(text, rid, "rule", rf.seed, r.get("document"), loc))
    # not-encoded entries
    ne_paths = not_encoded_paths(rules_dir)
    seen: dict[tuple[str, str, Any], str] = {}
    for path in ne_paths:
        where = display(path)
        try:
            raw = read_yaml(path)
        except RuleLoadError as e:
            problems.extend(e.issues)
            continue
        if raw is None:
            continue
        if not isinstance(raw, list):
            problems.append(Issue(where, "expected a YAML list of {seed, document, quote, reason}"))
            continue
        for i, item in enumerate(raw):
            loc = f"{where}: $[{i}]"
            if not isinstance(item, dict):
                problems.append(Issue(loc, "expected a mapping with seed, quote, reason (and document)"))
                continue
            bad = False
            for k in item:
                if k not in NOT_ENCODED_KEYS:
                    close = difflib.get_close_matches(str(k), NOT_ENCODED_KEYS, n=1)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    problems.append(Issue(f"{loc}.{k}", f"unknown key {k!r}{hint}"))
                    bad = True
            for k in REQUIRED_KEYS:
                v = item.get(k)
                if v is None:
                    problems.append(Issue(loc, f"missing key {k!r}"))
                    bad = True
                elif not isinstance(v, str) or not v.strip():
                    problems.append(Issue(f"{loc}.{k}", "must be non-empty text"))
                    bad = True
            document = item.get("document")
            if document is not None and (isinstance(document, bool) or not isinstance(document, (str, int))):
                problems.append(Issue(f"{loc}.document", "must be a document key of the rule files (or a part number)"))
                bad = True
            if bad:
                continue
            seed, text = item["seed"], item["quote"]
            if seed not in seeds:
                close = difflib.get_close_matches(seed, list(seeds), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                problems.append(Issue(f"{loc}.seed", f"unknown seed {seed!r}{hint}"))
                continue
            qn = normalise(text)
            if len(qn) < MIN_QUOTE:
                problems.append(Issue(f"{loc}.quote", f"quote too short ({len(qn)} characters)"))
                continue
            st = seeds[seed].seed
            if not st.find_all(qn):
                problems.append(Issue(f"{loc}.quote", f"not found verbatim in seed {seed}: "
                                                      f"{text[:50]!r}{'…' if len(text) > 50 else ''}"))
                continue
            if document is not None and doc_for(seed, document) is None:
                keys = [k for d in seeds[seed].documents for k in d.keys]
                close = difflib.get_close_matches(str(document), keys, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                problems.append(Issue(f"{loc}.document", f"unknown document {document!r} for seed {seed}{hint}"))
                continue
            dup_key = (seed, qn, document)
            if dup_key in seen:
                problems.append(Issue(f"{loc}.quote", f"listed twice (also {seen[dup_key]})"))
            else:
                seen[dup_key] = loc
            quotes.append(Quote(text, f"{where}[{i}]", "not_encoded", seed, document, loc))

    # place every quote: occurrences inside its document (all occurrences when it names none)
    missing: dict[str, str] = {}  # rule id -> where its first quote not in the seed is
    for q in quotes:
        sc = seeds[q.seed]
        qn = normalise(q.text)
        occ = sc.seed.find_all(qn)
        doc = doc_for(q.seed, q.document)
        if doc is None and q.kind == "rule" and q.document is not None:
            notes.append(Issue(q.where, f"document {q.document!r} is not in the file's documents"))
        inside = [s for s in occ if doc is not None and doc.contains(s)]
        located = [d for d in sc.documents if d.start is not None]
        if q.kind == "not_encoded" and doc is not None and doc.start is not None and occ and not inside:
            elsewhere = sorted({d.name for d in located for s in occ if d.contains(s)})
            msg = (f"quote is not inside the text of document {doc.name[:40]!r}"
                   + (f" (found in {', '.join(x[:40] for x in elsewhere)})" if elsewhere else ""))
            problems.append(Issue(q.where, msg))
        if doc is None and occ:
            homes = {id(d): d for d in located for s in occ if d.contains(s)}
            if len(homes) == 1:
                doc = next(iter(homes.values()))
            elif len(homes) > 1 and q.kind == "not_encoded":
                names = ", ".join(sorted(d.name[:30] for d in homes.values()))
                problems.append(Issue(q.where, f"quote occurs in several documents ({names}); add `document:`"))
        q.doc = doc
        q.spans = inside or occ
        if q.kind == "rule" and not occ:
            missing.setdefault(q.owner, q.where)
    for rid, where in missing.items():
        notes.append(Issue(where, f"rule {rid}: quote not found in the seed (covers nothing)"))

    # coverage decisions
    for name, sc in seeds.items():
        seed_quotes = [q for q in quotes if q.seed == name and q.spans]
        for groups in sc.articles.values():
            for first, members in groups:
                owners: list[str] = []
                for a in members:
                    for q in seed_quotes:
                        if q.owner not in owners and any(s < a.end and e > a.start for s, e in q.spans):
                            owners.append(q.owner)
                first.covered = bool(owners)
                first.covered_by = owners
                first.occurrences = len(members)
    return Catalogue(rules_dir, seeds_path, rule_files, ne_paths, seeds, quotes, problems, notes)


def validate_not_encoded(rules_dir: str | Path | None = None, seeds_dir: str | Path | None = None) -> list[Issue]:
    """Problems in the not-encoded lists: keys, unknown seeds and documents, quotes not verbatim or misplaced."""
    return build_catalogue(rules_dir, seeds_dir).problems


# ---------------------------------------------------------------- the report


@dataclass
class DocumentRow:
    seed: str
    document: Document
    rules: int  # rules whose `document` is this one
    not_encoded: int  # not-encoded entries placed in this document
    articles: int  # numbered articles found (repeated printings counted once)
    uncovered: list[Article]
    scrambled: bool = False
    gaps: list[str] = field(default_factory=list)


def rows(cat: Catalogue) -> dict[str, list[DocumentRow]]:
    """Per seed, per document: rule count (by the rules' `document`), not-encoded count, articles."""
    out: dict[str, list[DocumentRow]] = {}
    for name, sc in cat.seeds.items():
        index = {id(d): i for i, d in enumerate(sc.documents)}
        owners: dict[tuple[str, int], set[str]] = {}
        for q in cat.quotes:
            if q.seed == name and q.doc is not None:
                owners.setdefault((q.kind, index[id(q.doc)]), set()).add(q.owner)
        out[name] = []
        for i, d in enumerate(sc.documents):
            groups = sc.articles.get(i, [])
            out[name].append(DocumentRow(
                name, d, len(owners.get(("rule", i), ())), len(owners.get(("not_encoded", i), ())), len(groups),
                [a for a, _ in groups if not a.covered], i in sc.scrambled, sc.gaps.get(i, [])))
    return out


def uncovered(cat: Catalogue) -> list[tuple[str, Document, Article]]:
    """Every numbered article no quote covers: (seed, document, article)."""
    return [(r.seed, r.document, a) for rs in rows(cat).values() for r in rs for a in r.uncovered]


def _counts(rules: int, ne: int, articles: int, unc: int) -> str:
    return f"rules {rules}, not encoded {ne}, articles {articles}, uncovered {unc}"


def report_lines(cat: Catalogue, width: int = 30) -> list[str]:
    """The text `eligibility rules coverage` prints."""
    lines: list[str] = []
    files = [display(p) for p in cat.not_encoded_files]
    lines.append(f"覆盖情况 / Coverage of the seeds by rule quotes ({display(cat.rules_dir)}/*.yaml) and "
                 f"not-encoded lists ({', '.join(files) if files else 'none'})")
    lines.append("✗ = numbered article no quote overlaps; counts per document by the rules' `document`")
    totals = [0, 0, 0, 0]
    for name, drs in rows(cat).items():
        sc = cat.seeds[name]
        t = [sum(r.rules for r in drs), sum(r.not_encoded for r in drs), sum(r.articles for r in drs),
             sum(len(r.uncovered) for r in drs)]
        totals = [a + b for a, b in zip(totals, t)]
        lines.append("")
        lines.append(f"{name}  {sc.title}")
        lines.append(f"  {_counts(*t)}")
        split = len(drs) > 1 or sc.has_toc
        for r in drs:
            d = r.document
            indent = "      " if split else "  "
            if split:
                head = f"  [{d.part:>2}] " if d.part is not None else "  - "
                keys = f"  ({', '.join(d.keys)})" if d.keys else "  (no rule file names it)"
                lines.append(f"{head}{d.title[:60]}{keys}")
                lines.append(f"{indent}{_counts(r.rules, r.not_encoded, r.articles, len(r.uncovered))}")
            if d.start is None:
                lines.append(f"{indent}! document not found in the seed text: its articles are not checked")
            if r.scrambled:
                lines.append(f"{indent}! the text repeats passages (scrambled): repeated articles counted once")
            if r.gaps:
                lines.append(f"{indent}! numbering skips {' '.join(r.gaps)} (heading missing from the text?)")
            for a in r.uncovered:
                path = a.label if r.scrambled else a.path
                rep = f" (printed {a.occurrences}×)" if a.occurrences > 1 else ""
                words = a.heading if len(a.heading) <= width else a.heading[:width] + "…"
                lines.append(f"{indent}✗ line {a.line:>4}  {path} {words}{rep}")
    lines.append("")
    lines.append(f"合计 / Total: {_counts(*totals)}")
    if cat.notes:
        lines.append("")
        lines.append(f"规则文件提示 / Notes on rule files ({len(cat.notes)}):")
        lines += [f"  {i}" for i in cat.notes]
    if cat.problems:
        lines.append("")
        lines.append(f"未编码清单问题 / Problems in the not-encoded lists ({len(cat.problems)}):")
        lines += [f"  {i}" for i in cat.problems]
    else:
        lines.append(f"未编码清单 / Not-encoded lists: {sum(1 for q in cat.quotes if q.kind == 'not_encoded')} "
                     f"entries, all valid")
    return lines
