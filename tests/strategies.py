"""Hypothesis strategies for companies, built from the fact dictionary (shared by property tests)."""


from hypothesis import strategies as st

from eligibility import default_facts
from eligibility.loading import load_regions

CITIES = ["石家庄市", "郑州市", "广元市", "保定市", "洛阳市"]


def _counties():
    out = {"其他区"}
    for region in load_regions().values():
        out |= set(region["counties"])
    return sorted(out)


def _bounds(spec, lo, hi):
    lo = lo if spec.min is None else max(lo, int(spec.min))
    hi = hi if spec.max is None else min(hi, int(spec.max))
    return lo, hi


def value_strategy(spec):
    t = spec.type
    if t == "bool":
        return st.booleans()
    if t == "int":
        # claimants never exceed insured staff (that combination is rejected as impossible)
        lo, hi = _bounds(spec, *{"unemployment_claimants": (0, 30), "insured_employees": (30, 3000)}.get(
            spec.name, (0, 3000)))
        return st.integers(min_value=lo, max_value=hi)
    if t in ("money", "percent", "number"):
        lo, hi = _bounds(spec, *{"money": (0, 10**9), "percent": (-100, 200), "number": (0, 100000)}[t])
        places = 1 if t == "percent" else 2
        return st.decimals(min_value=lo, max_value=hi, places=places, allow_nan=False, allow_infinity=False)
    if t == "enum":
        return st.sampled_from(sorted(spec.values))
    if t == "date":
        return st.dates()
    if spec.name == "city":
        return st.sampled_from(CITIES)
    if spec.name == "county":
        return st.sampled_from(_counties())
    return st.text(max_size=5)


def askable_facts():
    """Facts a company states (derived facts are computed, not drawn)."""
    return sorted(n for n, s in default_facts().items() if not s.derived)


PLACE = ("province", "city", "county")


@st.composite
def place(draw):
    """Province, city and county that belong together (a city of another province is refused)."""
    from eligibility.places import places

    city = draw(st.sampled_from(CITIES))
    listed = places().counties.get(city)
    county = draw(st.sampled_from(sorted(listed))) if listed else "其他区"
    return {"province": places().province_of[city], "city": city, "county": county}


@st.composite
def companies(draw, names=None):
    """Any subset of the facts; the place facts come as a consistent group, so that two companies
    merged ({**a, **b}) still name one place."""
    facts = default_facts()
    names = names if names is not None else askable_facts()
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    company = {n: draw(value_strategy(facts[n])) for n in chosen if n not in PLACE}
    if any(n in PLACE for n in chosen):
        company.update(draw(place()))
    return company


@st.composite
def full_company(draw):
    facts = default_facts()
    return {**{n: draw(value_strategy(facts[n])) for n in askable_facts()}, **draw(place())}
