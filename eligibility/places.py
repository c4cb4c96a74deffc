"""Place names as the rules compare them (places.yaml): cleaned, completed, and checked against each other.

A city or county is compared with the rules' jurisdictions as text, so a name that is almost right
("石家庄市" with a zero-width space, "长按区") silently fails every rule of its place. FactSpec.parse
cleans the text (facts.py) and completes a name typed without its last character (normalise);
consistency() refuses a city that is not a city of the given province, and a county that is not a
county of the given city, naming the field and the closest known name (issues).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import Issue, RuleLoadError

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Places:
    cities: dict[str, tuple[str, ...]]  # province -> its cities
    counties: dict[str, tuple[str, ...]]  # city -> its counties (cities whose counties are listed)
    province_of: dict[str, str]  # city -> province

    @property
    def all_counties(self) -> list[str]:
        return sorted({c for cs in self.counties.values() for c in cs})


@cache
def places() -> Places:
    from .safe_yaml import read_yaml

    raw = read_yaml(HERE / "places.yaml")
    cities: dict[str, tuple[str, ...]] = {}
    counties: dict[str, tuple[str, ...]] = {}
    province_of: dict[str, str] = {}
    try:
        for province, members in raw.items():
            cities[str(province)] = tuple(str(c) for c in members)
            for city, listed in members.items():
                province_of.setdefault(str(city), str(province))
                if listed is not None:
                    counties[str(city)] = tuple(str(c) for c in listed)
    except (AttributeError, TypeError) as e:
        raise RuleLoadError([Issue("places.yaml", f"expected province -> city -> [counties] or ~: {e}")]) from None
    return Places(cities, counties, province_of)


def normalise(fact: str, text: str) -> str:
    """A cleaned city or county name (facts.py has removed invisible characters): no inner spaces, and
    the one known name it lacks only the last character of ('石家庄' -> '石家庄市', '长安' -> '长安区')."""
    t = re.sub(r"\s+", "", text)
    p = places()
    names = p.province_of if fact == "city" else p.all_counties
    if t in names or len(t) < 2:
        return t
    hits = [n for n in names if n[:-1] == t]
    return hits[0] if len(hits) == 1 else t


def _hint(name: str, known: list[str], cutoff: float) -> tuple[str, str]:
    close = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
    if not close:
        return "", ""
    return f"，是否为“{close[0]}”", f" (did you mean '{close[0]}'?)"


def issues(values: dict[str, Any]) -> list[Issue]:
    """Errors for a city that is not a city of the province and a county that is not a county of the
    city (where places.yaml lists them), each naming the field and the closest name."""
    city, county = values.get("city"), values.get("county")
    if city is None and county is None:
        return []
    p = places()
    province = values.get("province")
    out: list[Issue] = []
    if city is not None:
        home = p.province_of.get(city)
        if province in p.cities and city not in p.cities[province]:
            if home is not None:
                out.append(Issue("city", f"{city}属于{home}，与所在省份“{province}”不符 / {city} is in {home}, "
                                         f"not in {province}"))
            else:
                known = list(p.cities[province])
                zh, en = _hint(city, known, 0.5)
                out.append(Issue("city", f"“{city}”不是{province}的城市{zh}；可选：{'、'.join(known)} / "
                                         f"{city!r} is not a city of {province}{en}"))
        elif province is not None and province not in p.cities and home is not None:
            out.append(Issue("city", f"{city}属于{home}，与所在省份“{province}”不符 / {city} is in {home}, "
                                     f"not in {province}"))
        elif province is None and home is None:
            zh, en = _hint(city, list(p.province_of), 0.7)
            if zh:  # almost a known city: a typo; anything else is a city outside the catalogue
                out.append(Issue("city", f"未知的城市“{city}”{zh}；如在其他省份，请同时填写所在省份 / unknown city "
                                         f"{city!r}{en}; give the province too if it is elsewhere"))
    listed = p.counties.get(city) if city is not None else None
    if county is not None and listed is not None and county not in listed:
        zh, en = _hint(county, list(listed), 0.5)
        out.append(Issue("county", f"“{county}”不是{city}的县（市、区）{zh}；可选：{'、'.join(listed)} / "
                                   f"{county!r} is not a county or district of {city}{en}"))
    return out
