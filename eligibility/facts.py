"""The fact dictionary: one declaration per company fact, used by validation, CSV columns, CLI and UI.

Values are parsed here (and only here) from what people type or spreadsheets hold: "是/否",
"1,234.5", "12%", full-width digits, Chinese enum labels. An empty value is unknown, never 0.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any


from .errors import FactValueError, Issue, RuleLoadError

HERE = Path(__file__).parent
FACT_TYPES = ("bool", "int", "money", "percent", "number", "date", "enum", "text")
NUMERIC_TYPES = ("int", "money", "percent", "number")
GROUPS = ("place", "organisation", "size", "employment", "insurance", "finance", "premises", "status",
          "parameter", "needs")
MAX_ABS = Decimal("1e15")  # no company fact is larger than a quadrillion 元 or people

TRUE_WORDS = {"true", "yes", "y", "1", "是", "有", "对", "√", "✓", "符合"}
FALSE_WORDS = {"false", "no", "n", "0", "否", "无", "没有", "不是", "×", "✗", "不符合"}
UNKNOWN_WORDS = {"", "不清楚", "不知道", "未知", "unknown", "n/a", "na", "none", "null", "-", "—"}


@dataclass(frozen=True)
class FactSpec:
    """One fact of the dictionary (see the header of facts.yaml for the keys)."""

    name: str
    type: str
    zh: str
    en: str
    group: str
    help_zh: str = ""
    help_en: str = ""
    unit: str | None = None
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    min: Decimal | None = None
    max: Decimal | None = None
    aliases: tuple[str, ...] = ()
    derived: bool = False
    parameter: bool = False

    def label(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en

    def help(self, lang: str = "zh") -> str:
        return self.help_zh if lang == "zh" else self.help_en

    def value_label(self, value: Any, lang: str = "zh") -> str:
        """Human words for a value of this fact, in zh or en."""
        if value is None:
            return "未知" if lang == "zh" else "unknown"
        if self.type == "enum" and value in self.values:
            return self.values[value].get(lang, str(value))
        if self.type == "bool":
            return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
        if self.type == "money":
            return f"{format_decimal(value)}元" if lang == "zh" else f"{format_decimal(value)} yuan"
        if self.type == "percent":
            return f"{format_decimal(value)}%"
        if self.type == "int" and self.unit:
            return f"{value}{self.unit}" if lang == "zh" else f"{value}"
        return str(value)

    def parse(self, raw: Any) -> Any:
        """Parse one value of this fact; None means unknown. Raises ValueError with a zh/en message."""
        return parse_value(self, raw)


def format_decimal(value: Any) -> str:
    """1234567.5 -> '1,234,567.5'; integers without decimals."""
    d = Decimal(str(value))
    if d == d.to_integral_value():
        return f"{int(d):,}"
    return f"{d.normalize():,f}"


class FactDictionary(dict[str, FactSpec]):
    """name -> FactSpec, with header lookup (names, zh labels, aliases) and suggestions."""

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self), n=1, cutoff=0.6)
        return f" (did you mean '{close[0]}'?)" if close else ""

    @property
    def headers(self) -> dict[str, str]:
        """Every accepted column header (name, zh label, alias; case- and space-insensitive) -> fact name."""
        return _headers(self)

    def column_for(self, header: str) -> str | None:
        return self.headers.get(norm_header(header))


def norm_header(h: str) -> str:
    """A header as matched against the fact dictionary's: NFKC, no whitespace, lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(h))).lower()


def _headers(facts: FactDictionary) -> dict[str, str]:
    cached = getattr(facts, "_headers_cache", None)
    if cached is None:
        cached = {}
        for spec in facts.values():
            for h in (spec.name, spec.zh, *spec.aliases):
                cached.setdefault(norm_header(h), spec.name)
        facts._headers_cache = cached  # type: ignore[attr-defined]
    return cached


_SPEC_KEYS = {"type", "zh", "en", "group", "help_zh", "help_en", "unit", "values", "min", "max", "aliases",
              "derived", "parameter"}


def load_fact_dictionary(path: Path | None = None) -> FactDictionary:
    """Read facts.yaml strictly: unknown keys, bad types and duplicate names fail with the fact's name."""
    from .safe_yaml import read_yaml

    path = path or HERE / "facts.yaml"
    raw = read_yaml(path)
    where = path.name
    issues: list[Issue] = []
    facts = FactDictionary()
    if not isinstance(raw, dict):
        raise RuleLoadError([Issue(where, "the fact dictionary must be a mapping of fact name -> spec")])
    for name, spec in raw.items():
        loc = f"{where}: $.{name}"
        if not isinstance(spec, dict):
            issues.append(Issue(loc, "must be a mapping"))
            continue
        unknown = set(spec) - _SPEC_KEYS
        if unknown:
            issues.append(Issue(loc, f"unknown keys {sorted(unknown)}"))
        if spec.get("type") not in FACT_TYPES:
            issues.append(Issue(loc + ".type", f"must be one of {FACT_TYPES}"))
            continue
        if spec.get("group") not in GROUPS:
            issues.append(Issue(loc + ".group", f"must be one of {GROUPS}"))
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
            issues.append(Issue(loc, "fact names are snake_case ASCII"))
        for key in ("zh", "en"):
            if not spec.get(key):
                issues.append(Issue(loc + f".{key}", "label is required"))
        values = spec.get("values") or {}
        if spec["type"] == "enum" and not values:
            issues.append(Issue(loc + ".values", "an enum needs values"))
        for k, v in values.items():  # {zh: .., en: a, b} splits an unquoted comma into keys: caught here
            if not isinstance(v, dict) or set(v) != {"zh", "en"} or not all(isinstance(x, str) and x for x in v.values()):
                issues.append(Issue(f"{loc}.values.{k}", "a value has exactly zh and en labels, both text (quote "
                                                         "an English label that has a comma)"))
        facts[str(name)] = FactSpec(
            name=str(name),
            type=spec["type"],
            zh=str(spec.get("zh", "")),
            en=str(spec.get("en", "")),
            group=str(spec.get("group", "")),
            help_zh=str(spec.get("help_zh", "")),
            help_en=str(spec.get("help_en", "")),
            unit=spec.get("unit"),
            values={str(k): dict(v or {}) for k, v in values.items()},
            min=None if spec.get("min") is None else Decimal(str(spec["min"])),
            max=None if spec.get("max") is None else Decimal(str(spec["max"])),
            aliases=tuple(str(a) for a in spec.get("aliases") or ()),
            derived=bool(spec.get("derived", False)),
            parameter=bool(spec.get("parameter", False)),
        )
    owners: dict[str, str] = {}
    for spec in facts.values():  # every column header must name one fact only
        for h in dict.fromkeys((spec.name, spec.zh, *spec.aliases)):
            key = norm_header(h)
            if key in owners and owners[key] != spec.name:
                issues.append(Issue(f"{where}: $.{spec.name}", f"header {h!r} also names fact '{owners[key]}'"))
            owners.setdefault(key, spec.name)
    if issues:
        raise RuleLoadError(issues)
    return facts


@cache
def default_facts() -> FactDictionary:
    from .rule_cache import cached_facts

    return cached_facts(load_fact_dictionary)


# ---------------------------------------------------------------- value parsing

_FULLWIDTH = str.maketrans("０１２３４５６７８９．，－＋％", "0123456789.,-+%")
# Characters that show nothing and are never part of a value, yet make "石家庄市\u200b" differ from
# "石家庄市": every format character (Unicode category Cf: zero-width spaces and joiners, direction
# marks, embeddings and isolates, BOM, soft hyphen; the test checks the list against unicodedata),
# variation selectors, the combining grapheme joiner and the Hangul fillers. Removed from every value.
INVISIBLE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]")
# control characters (tab and line ends aside) and lone surrogates: refused, naming the field
BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[+-]?\d{1,3}(?: \d{3})+(?:\.\d+)?")
_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
PLACE_FACTS = ("city", "county")


def _clean_text(raw: str) -> str:
    return INVISIBLE.sub("", unicodedata.normalize("NFKC", raw)).translate(_FULLWIDTH).strip()


def show(raw: Any, limit: int = 60) -> str:
    """A value as an error message quotes it: repr, shortened (never fails, even on a 5000-digit int)."""
    try:
        text = repr(raw)
    except ValueError:  # an int beyond Python's digit limit for str()
        text = f"<{type(raw).__name__} of ~{int(raw.bit_length() * 0.30103)} digits>"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def parse_value(spec: FactSpec, raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, float) and math.isnan(raw):
        return None  # an empty spreadsheet cell
    if isinstance(raw, str):
        bad = BAD_CHARS.search(raw)
        if bad:
            raise FactValueError(f"含有无效字符 U+{ord(bad.group()):04X} / contains an invalid character "
                                 f"(U+{ord(bad.group()):04X}, a control character or a lone surrogate)")
        text = _clean_text(raw)
        if text.lower() in UNKNOWN_WORDS and not (spec.type == "enum" and text in spec.values):
            return None
    else:
        text = None
    t = spec.type
    if t == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if text is not None:
            if text.lower() in TRUE_WORDS:
                return True
            if text.lower() in FALSE_WORDS:
                return False
        raise FactValueError(f"应为“是”或“否” / expected yes or no, got {show(raw)}")
    if t in NUMERIC_TYPES:
        return _parse_number(spec, raw, text)
    if t == "date":
        if isinstance(raw, dt.datetime):
            return raw.date()
        if isinstance(raw, dt.date):
            return raw
        if text is not None:
            m = _DATE.fullmatch(text)  # an Excel date cell reads as "2020-03-15 00:00:00"
            if m:
                try:
                    return dt.date(int(m[1]), int(m[2]), int(m[3]))
                except ValueError:
                    pass
        raise FactValueError(f"应为日期，如2020-03-15 / expected a date such as 2020-03-15, got {show(raw)}")
    if t == "enum":
        if text is None:
            raise FactValueError(f"应为以下之一 / expected one of: {', '.join(spec.values)}; got {show(raw)}")
        if text in spec.values:
            return text
        for key, labels in spec.values.items():
            zh, en = _clean_text(str(labels.get("zh", ""))), _clean_text(str(labels.get("en", ""))).lower()
            if text == zh or text.lower() == en or text.lower() == key:
                return key
        key = enum_label_key(spec, text)
        if key is not None:
            return key
        raise FactValueError(enum_label_error(spec, text))
    if t == "text":
        if text is None:
            if isinstance(raw, bool) or not isinstance(raw, (int, float, Decimal)):
                raise FactValueError(f"应为文字 / expected text, got {type(raw).__name__}")
            text = str(raw)
        if len(text) > 200:
            raise FactValueError("文字过长（最多200字）/ text too long (200 characters at most)")
        if spec.name in PLACE_FACTS:
            from .places import normalise

            return normalise(spec.name, text)
        return text
    raise AssertionError(t)  # pragma: no cover - types are validated at load


# ---------------------------------------------------------------- values as people write them


_SCALES = (("百万", 10**6), ("千万", 10**7), ("万亿", 10**12), ("亿", 10**8), ("万", 10**4), ("千", 10**3))


def _scaled(t: str) -> str:
    """A Chinese scale word (万, 亿, 千) applied, its number's thousands separators removed first
    ('1,500万'); anything else unchanged for the checks that follow."""
    for word, _ in _SCALES:
        if t.endswith(word) and len(t) > len(word):
            base = t[: -len(word)].rstrip()
            if _GROUPED.fullmatch(base):
                base = base.replace(",", "").replace(" ", "")
            return scale_words(base + word)
    return t


def scale_words(text: str) -> str:
    """'300万' -> '3000000', '1.5亿' -> '150000000', '3千' -> '3000' (exact; the 元 already removed,
    separators too). Text without a Chinese scale word comes back unchanged."""
    for word, factor in _SCALES:
        if text.endswith(word) and len(text) > len(word):
            number = text[: -len(word)]
            try:
                d = Decimal(number)
            except InvalidOperation:
                return text
            if not d.is_finite():
                return text
            return format(d * factor, "f")
    return text


_PARENS = re.compile(r"[（(]([^）)]*)[）)]")
_ENUM_SYNONYMS = {"个体户": "个体工商户", "民非": "民办非企业单位", "制造业": "工业", "宾馆": "住宿业", "酒店": "住宿业",
                  "旅行社": "旅游业", "饭店": "餐饮业", "餐馆": "餐饮业", "商场": "零售业", "超市": "零售业"}


def _label_forms(label: str) -> set[str]:
    """A Chinese option label and the shorter ways people write it: '工业（采矿、制造、…）' is also
    '工业', '采矿', '制造'; '农、林、牧、渔业' is also '农业', '渔业'; '河北省' is also '河北'."""
    label = _clean_text(label)
    base = _PARENS.sub("", label).strip()
    parts = [p.strip() for m in _PARENS.finditer(label) for p in re.split(r"[、，,]", m.group(1)) if p.strip()]
    forms = {label, base, *parts}
    items = [p for p in re.split(r"[、，,]", base) if p]
    if len(items) > 1:  # 农、林、牧、渔业: each item with its 业
        forms |= {i.rstrip("业") + "业" for i in items} | set(items)
    forms |= {f[:-1] for f in list(forms) if len(f) > 2 and f.endswith(("省", "市"))}  # 河北省 is also 河北
    return {f for f in forms if f}


def enum_label_key(spec: FactSpec, text: str) -> str | None:
    """The option a Chinese word names, when exactly one option's label has it (see _label_forms).
    Nothing is guessed from a part of a word ('餐饮' is not '餐饮业'): that gets a suggestion."""
    text = _ENUM_SYNONYMS.get(text, text)
    hits = {key for key, labels in spec.values.items() if text in _label_forms(str(labels.get("zh", "")))}
    return hits.pop() if len(hits) == 1 else None


def enum_label_error(spec: FactSpec, text: str) -> str:
    """'not an option' in the words of the form: the Chinese labels, a Chinese suggestion."""
    zh_labels = {key: str(v.get("zh", key)) for key, v in spec.values.items()}
    en_labels = {key: str(v.get("en", key)) for key, v in spec.values.items()}
    forms = {f: key for key, label in zh_labels.items() for f in _label_forms(label)}
    close = difflib.get_close_matches(text, list(forms), n=1, cutoff=0.4)
    hint_zh = f"（是否为“{zh_labels[forms[close[0]]]}”？）" if close else ""
    close_en = difflib.get_close_matches(text.lower(), [v.lower() for v in en_labels.values()], n=1, cutoff=0.6)
    hint_en = f" (did you mean '{close_en[0]}'?)" if close_en else \
        (f" (did you mean '{en_labels[forms[close[0]]]}'?)" if close else "")
    return (f"“{text}”不是可选项{hint_zh}。可选：{'、'.join(zh_labels.values())} / "
            f"not an option: {text!r}{hint_en}; options: {', '.join(en_labels.values())}")


def _parse_number(spec: FactSpec, raw: Any, text: str | None) -> Any:
    zh, en = ("整数", "a whole number") if spec.type == "int" else ("数字", "a number")
    if isinstance(raw, bool):
        raise FactValueError(f"应为{zh}，不是是/否 / expected {en}, got a yes/no value")
    if text is not None:
        t = text
        if t.endswith("元"):
            t = t[:-1].rstrip()
        if spec.type != "percent":
            t = _scaled(t)
        if t.endswith("%"):
            if spec.type != "percent":
                raise FactValueError(f"此项不是百分比 / this field is not a percentage: {show(raw)}")
            t = t[:-1].rstrip()
        if _DATE.fullmatch(t):  # an Excel date cell (or a date typed) where a number belongs
            raise FactValueError(f"应为{zh}，填写的是日期 / expected {en}, got a date: {show(raw)}")
        if _GROUPED.fullmatch(t):  # 1,234,567.5 or 1 234 567
            t = t.replace(",", "").replace(" ", "")
        elif "," in t or " " in t:  # "1,5" is not 15: a decimal comma, or digits run together
            raise FactValueError(f"逗号和空格只能用作千位分隔符（如1,234.5），小数点请用“.” / ',' and spaces only "
                                 f"separate thousands (1,234.5); write decimals with '.': {show(raw)}")
        if not _NUMBER.fullmatch(t):
            raise FactValueError(f"应为{zh} / expected {en}, got {show(raw)}")
        try:
            d = Decimal(t)
        except InvalidOperation:  # pragma: no cover - _NUMBER admits only what Decimal reads
            raise FactValueError(f"应为{zh} / expected {en}, got {show(raw)}") from None
    elif isinstance(raw, (int, Decimal)):
        d = Decimal(raw)
    elif isinstance(raw, float):
        if math.isinf(raw):
            raise FactValueError("不能是无穷大 / must be finite")
        d = Decimal(repr(raw))
    else:
        raise FactValueError(f"应为{zh} / expected {en}, got {type(raw).__name__}")
    if not d.is_finite():
        raise FactValueError("应为有限数字 / must be a finite number")
    if d.copy_abs() > MAX_ABS:  # copy_abs: abs() would round in the context and overflow on 1e1000000
        raise FactValueError(f"数值过大 / number too large: {show(raw)}")
    if spec.min is not None and d < spec.min:
        raise FactValueError(f"不能小于{format_decimal(spec.min)} / must be at least {spec.min}")
    if spec.max is not None and d > spec.max:
        raise FactValueError(f"不能大于{format_decimal(spec.max)} / must be at most {spec.max}")
    if spec.type == "int":
        if d != d.to_integral_value():
            raise FactValueError(f"应为整数 / expected a whole number, got {show(raw)}")
        return int(d)
    return Decimal(int(d)) if d == d.to_integral_value() else d


def parse_facts(mapping: dict[str, Any], facts: FactDictionary | None = None,
                allow_unknown_keys: bool = False) -> tuple[dict[str, Any], list[Issue]]:
    """Parse a mapping of fact names (or zh labels/aliases) to raw values; return values and issues."""
    facts = facts or default_facts()
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    for key, raw in mapping.items():
        name = key if key in facts else facts.column_for(str(key))
        if name is None:
            if not allow_unknown_keys:
                issues.append(Issue(str(key), "未知的事实项 / unknown fact" + facts.suggest(str(key))))
            continue
        try:
            value = facts[name].parse(raw)
        except FactValueError as e:
            issues.append(Issue(name, str(e)))
            continue
        if value is not None:
            values[name] = value
    return values, issues


# ---------------------------------------------------------------- cross-fact checks

def consistency(values: dict[str, Any], facts: FactDictionary | None = None) -> tuple[list[Issue], list[Issue]]:
    """(errors, warnings) for combinations a finance clerk would want caught, each naming a field.

    Errors are impossible (a layoff rate above 100%); warnings are possible but suspicious. `facts`:
    the rule set's fact dictionary (the bundled one when not given).
    """
    errors: list[Issue] = []
    warnings: list[Issue] = []
    claimants, insured = values.get("unemployment_claimants"), values.get("insured_employees")
    if claimants is not None and insured is not None and claimants > insured:
        errors.append(Issue("unemployment_claimants",
                            f"领取失业保险金人数（{claimants}）多于上年度月均参保职工人数（{insured}），裁员率将超过100%，请核对 / "
                            f"more benefit claimants than insured staff; please check"))
    from .places import issues as place_issues

    errors += place_issues(values)  # a city not of the province, a county not of the city
    employees = values.get("employees")
    if insured is not None and employees is not None and insured > employees:
        warnings.append(Issue("insured_employees",
                              f"参保职工人数（{insured}）多于从业人员（{employees}），请核对 / more insured staff than employees"))
    facts = facts or default_facts()
    for name, v in values.items():
        spec = facts.get(name)
        if spec is not None and spec.type == "percent" and v is not None and 0 < abs(v) < 1:
            warnings.append(Issue(name, f"{v} 按百分数理解为 {v}%；如果是指 {v * 100}%，请填写 {v * 100} / "
                                        f"read as {v}%, not {v * 100}%"))
    return errors, warnings
