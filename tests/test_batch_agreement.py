"""The batch (columnar) path must give the single path's answers, company for company, over ALL rules.

Each company's raw values go through evaluate() (the single path) and through evaluate_frame(); the
summary row and the long rows must match the Report exactly: statuses, amounts to the fen, missing
and amount-missing facts in order, counted_in_total, totals, facts to collect.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility import CompanyValidationError, evaluate
from eligibility.batch import collect_facts, evaluate_frame
from eligibility.batch import plan as batch_plan
from eligibility.conditions import Compare, Group
from eligibility.derived import size_standard
from eligibility.facts import NUMERIC_TYPES

DATES = [dt.date(2020, 2, 15), dt.date(2020, 6, 1), dt.date(2020, 12, 31), dt.date(2021, 6, 1),
         dt.date(2022, 7, 1), dt.date(2024, 1, 1)]


def _walk(node):
    yield node
    if isinstance(node, Group):
        for c in node.children:
            yield from _walk(c)


def _constants(rules) -> tuple[dict[str, set], dict[str, set]]:
    """Every constant the rules (and the size standard) compare each fact with."""
    nums: dict[str, set] = defaultdict(set)
    words: dict[str, set] = defaultdict(set)
    nodes = []
    for r in rules:
        nodes.append(r.condition)
        if r.amount:
            nodes += [c for c, _ in r.amount.cases if c is not None]
    for sector in size_standard().sectors.values():
        nodes += [sector.sme, sector.medium, sector.micro]
    for root in nodes:
        for n in _walk(root):
            if isinstance(n, Compare):
                vals = n.value if isinstance(n.value, tuple) else (n.value,)
                spec = rules.facts[n.fact]
                for v in vals:
                    (nums if spec.type in NUMERIC_TYPES else words)[n.fact].add(v)
    return nums, words


def _fmt_number(d: Decimal, pct: bool, draw) -> str:
    style = draw(st.sampled_from(["plain", "plain", "plain", "comma", "yuan", "fullwidth", "pct"]))
    text = format(d, "f")
    if style == "comma" and abs(d) >= 1000:
        whole, _, frac = text.partition(".")
        sign = "-" if whole.startswith("-") else ""
        text = sign + f"{int(whole.lstrip('-')):,}" + (f".{frac}" if frac else "")
    elif style == "yuan" and not pct:
        text += "元"
    elif style == "fullwidth":
        text = text.translate(str.maketrans("0123456789.-", "０１２３４５６７８９．－"))
    elif style == "pct" and pct:
        text += "%"
    return text


@st.composite
def _number(draw, spec, near: set):
    if spec.type == "int":
        base = draw(st.one_of(st.integers(0, 3000), st.sampled_from(sorted(int(v) for v in near) or [0])))
        v = Decimal(base + draw(st.sampled_from([0, 0, 0, -1, 1])))
    else:
        choices = [st.decimals(min_value=-1000, max_value=10**9, places=draw(st.sampled_from([0, 1, 2, 3])),
                               allow_nan=False, allow_infinity=False)]
        if near:
            choices.append(st.sampled_from(sorted(Decimal(str(v)) for v in near)).map(
                lambda c: c + draw(st.sampled_from([Decimal(0), Decimal("0.001"), Decimal("-0.001"), Decimal(1),
                                                    Decimal("-1"), Decimal("0.005")]))))
        choices.append(st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False,
                                   allow_infinity=False))  # a fourth decimal: the exact (single) path
        v = draw(st.one_of(*choices))
    if spec.min is not None and v < spec.min and draw(st.booleans()):
        v = spec.min
    return _fmt_number(v, spec.type == "percent", draw)


@st.composite
def companies(draw, rules, nums, words):
    facts = rules.facts
    names = sorted(set(nums) | set(words) | {"province", "city", "county", "entity_type", "industry", "size",
                                             "employees", "revenue", "total_assets", "insured_employees",
                                             "unemployment_claimants", "insured_employees_at_application"}
                   | {n for r in rules if r.amount for n in r.amount.names if n in facts})
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=25))
    company = {}
    for name in chosen:
        spec = facts[name]
        if spec.derived and name != "size" and draw(st.integers(0, 3)):
            continue  # derived facts are mostly left to derive()
        if spec.type == "bool":
            raw = draw(st.sampled_from(["是", "否", "true", "false", "1", "0", "有", "无", "不清楚", "yes", "maybe"]))
        elif spec.type in NUMERIC_TYPES:
            raw = draw(_number(spec, nums.get(name, set())))
        elif spec.type == "enum":
            keys = sorted(spec.values)
            raw = draw(st.one_of(st.sampled_from(keys), st.sampled_from([spec.values[k]["zh"] for k in keys]),
                                 st.sampled_from(["", "未知", "其它行业"])))
        elif spec.type == "date":
            raw = draw(st.dates(dt.date(2018, 1, 1), dt.date(2025, 1, 1))).isoformat()
        else:
            raw = draw(st.one_of(st.sampled_from(sorted(words.get(name, set())) or ["x"]),
                                 st.text(min_size=0, max_size=4)))
        company[name] = raw
    if draw(st.booleans()):  # layoff rates near the thresholds
        insured = draw(st.integers(0, 400))
        company["insured_employees"] = str(insured)
        company["unemployment_claimants"] = str(draw(st.integers(0, max(insured, 1) + 1)))
    return company


def assert_agree(rows: list[dict], on: dt.date, rules) -> None:
    df = pl.DataFrame({k: pl.Series([r.get(k) for r in rows], dtype=pl.String)
                       for k in dict.fromkeys(k for r in rows for k in r)}) if rows else pl.DataFrame()
    if df.width == 0:
        df = pl.DataFrame({"province": pl.Series([None] * len(rows), dtype=pl.String)})
    summary, long = evaluate_frame(df, on, rules, long=True)
    # the summary alone runs the conditions once per pattern (Program.run_patterns), the long form row
    # by row: both are checked against evaluate() through this equality and the comparisons below
    assert evaluate_frame(df, on, rules).equals(summary)
    assert summary.height == len(rows)
    assert summary["row"].to_list() == list(range(1, len(rows) + 1))
    by_row = defaultdict(list)
    for rec in long.iter_rows(named=True):
        by_row[rec["row"]].append(rec)
    for i, (raw, got) in enumerate(zip(rows, summary.iter_rows(named=True)), start=1):
        try:
            report = evaluate({k: v for k, v in raw.items()}, on=on, rules=rules)
        except CompanyValidationError:
            assert got["errors"], (raw, got)
            assert got["n_eligible"] is None and got["total_amount"] is None
            continue
        assert got["errors"] is None, (raw, got["errors"])
        want = {
            "n_eligible": len(report.by_status("eligible")),
            "n_undetermined": len(report.by_status("undetermined")),
            "total_amount": report.total_amount,
            "total_in_effect": report.total_in_effect,
            "total_up_to": report.total_up_to,
            "eligible": ";".join(r.rule_id for r in report.results if r.status == "eligible"),
            "facts_to_collect": ";".join(collect_facts(report, rules.facts)),
        }
        assert {k: got[k] for k in want} == want, raw
        want_long = [(r.rule_id, r.status, r.amount, ";".join(r.missing) if r.status == "undetermined" else "",
                      ";".join(r.amount_missing), r.counted_in_total, r.in_effect, r.per)
                     for r in report.results if r.status != "ineligible"]
        got_long = [(x["rule_id"], x["status"], x["amount"], x["missing"], x["amount_missing"],
                     x["counted_in_total"], x["in_effect"], x["per"]) for x in by_row[i] if x["rule_id"] is not None]
        assert got_long == want_long, raw


@pytest.fixture(scope="module")
def constants(rules):
    return _constants(rules)


def test_constants_cover_the_catalogue(rules, constants):
    nums, words = constants
    assert "employees" in nums and "province" in words


@pytest.fixture()
def every_place_its_program(monkeypatch):
    """Each group of rows by province and city gets a program of only the rules their place leaves open
    (in a real chunk, small groups share a larger group's program), and a group runs in slices of at
    most 10 rows of the whole catalogue (in a real chunk, 100,000): small frames exercise both."""
    monkeypatch.setattr(batch_plan, "_TINY_ROWS", 0)
    monkeypatch.setattr(batch_plan, "MIN_CHUNK_ROWS", 1)
    monkeypatch.setattr(batch_plan, "SLICE_RULE_ROWS", 10 * 240)
    monkeypatch.setattr(batch_plan, "SUMMARY_RULE_ROWS", 10 * 240)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_companies_agree(rules, constants, data, every_place_its_program):
    nums, words = constants
    rows = data.draw(st.lists(companies(rules, nums, words), min_size=1, max_size=25))
    on = data.draw(st.sampled_from(DATES))
    assert_agree(rows, on, rules)


@pytest.mark.parametrize("tiny,slice_rows", [(None, None), (0, None), (0, 100)],
                         ids=["programs-shared", "program-per-place", "places-in-slices"])
def test_every_rule_example_agrees(rules, monkeypatch, tiny, slice_rows):
    """Every worked example of every rule through both paths, all examples in one frame. Statuses,
    amounts and missing facts do not depend on the date (windows, totals in effect and weights do, and
    the random companies above are drawn on many dates): one date, while most measures are open."""
    rows = []
    for r in rules:
        for ex in r.spec.examples:
            rows.append({k: (v if v is None or isinstance(v, str) else _text(v)) for k, v in ex.facts.items()})
    assert len(rows) >= len(rules)
    if tiny is not None:
        monkeypatch.setattr(batch_plan, "_TINY_ROWS", tiny)
    if slice_rows is not None:  # the whole catalogue 100 rows at a time, smaller programs more
        monkeypatch.setattr(batch_plan, "MIN_CHUNK_ROWS", 1)
        monkeypatch.setattr(batch_plan, "SLICE_RULE_ROWS", slice_rows * len(rules))
        monkeypatch.setattr(batch_plan, "SUMMARY_RULE_ROWS", slice_rows * len(rules))
    assert_agree(rows, dt.date(2020, 6, 1), rules)


def test_place_checks_agree_whether_rows_are_looked_at_or_not(rules, monkeypatch):
    """The place check looks at no row when every combination of a chunk's provinces, cities and counties
    is right (a list of 石家庄 firms). A list of 河北 and 河南 firms makes combinations that no row has and
    that are wrong (河北省, 郑州市): each row's place is then looked at, and only a row that has such a
    place gets the error."""
    from eligibility.batch import encode

    skipped = []
    real = encode._places_all_fine
    monkeypatch.setattr(encode, "_places_all_fine", lambda *a: skipped.append(real(*a)) or skipped[-1])
    on = dt.date(2020, 6, 1)
    sjz = [{"province": "河北省", "city": "石家庄市", "county": c, "employees": "10"} for c in ("长安区", "桥西区", None)]
    assert_agree(sjz, on, rules)
    assert skipped and all(skipped)
    skipped.clear()
    firms = [*sjz, {"province": "河南省", "city": "郑州市", "employees": "20"},
             {"province": "河北省", "city": None, "employees": "30"}]
    assert_agree(firms, on, rules)
    assert evaluate_frame(pl.DataFrame(firms), on, rules)["errors"].null_count() == len(firms)
    assert skipped and not any(skipped)
    wrong = [*firms, {"province": "河北省", "city": "郑州市", "employees": "5"},
             {"province": "河北省", "city": "石家庄市", "county": "金水区", "employees": "5"}]
    assert_agree(wrong, on, rules)
    errors = evaluate_frame(pl.DataFrame(wrong), on, rules)["errors"].to_list()
    assert errors[:5] == [None] * 5 and "郑州市" in errors[5] and "金水区" in errors[6]


def test_one_place_in_slices_agrees(rules, monkeypatch):
    """A list of one place (here 石家庄 and firms that gave no place: the whole catalogue for every row)
    runs in consecutive slices; each slice's rows keep their own results."""
    rows = []
    for r in rules:
        for ex in r.spec.examples:
            if ex.facts.get("city") in ("石家庄市", None) and ex.facts.get("province") in ("河北省", None):
                rows.append({k: (v if v is None or isinstance(v, str) else _text(v)) for k, v in ex.facts.items()})
    assert len(rows) > 150
    monkeypatch.setattr(batch_plan, "MIN_CHUNK_ROWS", 1)
    monkeypatch.setattr(batch_plan, "SLICE_RULE_ROWS", 50 * len(rules))
    monkeypatch.setattr(batch_plan, "SUMMARY_RULE_ROWS", 50 * len(rules))
    assert len(batch_plan.place_programs(pl.DataFrame({"province": ["河北省", None], "city": ["石家庄市", None]}),
                                     rules, dt.date(2020, 6, 1))) == 1
    assert_agree(rows, dt.date(2020, 6, 1), rules)


def _text(v) -> str:
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, (dt.date,)):
        return v.isoformat()
    return str(v)


def test_known_edge_cases_agree(rules):
    """Half-fen amounts, layoff rates exactly on a threshold, size sets, claimants above insured."""
    base = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
            "industry": "catering"}
    rows = [
        {**base, "employees": "50", "revenue": "3000000", "insured_employees": "200",
         "unemployment_claimants": "11", "unemployment_insurance_paid": "12345.675"},
        {**base, "employees": "50", "insured_employees": "200", "unemployment_claimants": "12",
         "employer_medical_monthly": "1234.57", "employer_pension_monthly": "1000.005"},
        {**base, "employees": "9", "insured_employees": "0", "unemployment_claimants": "0"},
        {**base, "industry": None, "employees": "20", "revenue": "1,000,000.5"},
        {**base, "insured_employees": "10", "unemployment_claimants": "11"},
        {**base, "size": "小型", "layoff_rate": "5.5%", "unemployment_insurance_paid": "0.015"},
        {**base, "revenue": "123456789012.1234", "employees": "12"},
        {**base, "industry": "construction", "revenue": "79999999.999", "total_assets": "3000000"},
        {},
    ]
    for on in DATES:
        assert_agree(rows, on, rules)


def test_number_forms_polars_parses_agree(rules):
    """The first reading of numbers is polars' own parser (batch.encode._plain_number): every form it takes or
    leaves to the patterns must read as FactSpec.parse reads it: exponents, signs, leading zeros, more
    than three decimals hidden in a float, long cells, NaN and infinities, and a column of them all."""
    base = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
            "industry": "catering"}
    cells = [("1e3", "+12"), ("1.5E2", "015"), ("+.5", "-0"), ("5.", "1e1"), ("1e-30", "12.0"),
             ("0.1000000000000000001", " 12"), ("0.30000000000000004", "12 "), ("123456789012.345", "1,200"),
             ("99999999999.999", "9" * 16), ("1.0005", "nan"), ("nan", "inf"), ("inf", "-5"), ("-1", ""),
             ("", "30"), ("1,234.5", "１２"), ("12345.675", "30"), ("0.0015", "3e1"), ("-0.0", "+0")]
    rows = [{**base, "unemployment_insurance_paid": paid, "revenue": paid, "employees": staff,
             "insured_employees": "30", "unemployment_claimants": "1"} for paid, staff in cells]
    assert_agree(rows, dt.date(2020, 6, 1), rules)
    clean = [{**base, "unemployment_insurance_paid": paid, "employees": staff, "insured_employees": "30"}
             for paid, staff in (("1e3", "+12"), ("+.5", "015"), ("12345.675", "-0"), ("0.125", "7"))]
    assert_agree(clean, dt.date(2020, 6, 1), rules)  # columns settled by the first reading alone


def test_half_fen_float_amounts_are_recomputed_exactly(rules):
    """Formulas that divide run in float64 with an error bound; a result within the bound of a half
    fen (0.01 × 50 / 100 = 0.005) is recomputed by evaluate.compute_amount, and agrees."""
    from eligibility.batch import evaluate_chunk

    rows = [{"province": "河北省", "city": "石家庄市", "industry": "tourism",
             "tourism_quality_deposit_paid": paid, "tourism_deposit_refund_rate": "50",
             "project_work_injury_premium": premium, "project_months_in_relief_period": "1",
             "project_planned_months": months}
            for paid, premium, months in (("0.01", "100.01", "2"), ("12345.67", "0.03", "2"), ("100.03", "10", "3"))]
    df = pl.DataFrame({k: pl.Series([r[k] for r in rows], dtype=pl.String) for k in rows[0]})
    res = evaluate_chunk(df, dt.date(2020, 6, 1), rules)
    assert res.exact_amounts > 0
    assert_agree(rows, dt.date(2020, 6, 1), rules)


def test_amount_inputs_beyond_the_row_bound_are_recomputed_exactly(rules):
    """Amounts run in 64-bit fixed point for inputs up to columnar.ROW_BOUND (1万亿元); a row with a larger
    (still valid) input would overflow there: it is flagged and recomputed by compute_amount, and agrees,
    while its neighbours stay on the fast path."""
    from eligibility.batch import evaluate_chunk
    from eligibility.columnar import ROW_BOUND

    base = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
            "industry": "catering", "employees": "50", "insured_employees": "40", "unemployment_claimants": "0",
            "rents_state_owned_premises": "是"}
    huge = f"{900 * ROW_BOUND + 0.125:.3f}"  # 900万亿元: within facts.MAX_ABS, beyond the row bound
    rows = [{**base, "monthly_rent": huge, "employer_pension_monthly": huge, "employer_medical_monthly": "1234.57",
             "unemployment_insurance_paid": huge},
            {**base, "monthly_rent": "8000.5", "employer_pension_monthly": "4000.25",
             "employer_medical_monthly": "1500", "unemployment_insurance_paid": "30000.01"}]
    df = pl.DataFrame({k: pl.Series([r[k] for r in rows], dtype=pl.String) for k in rows[0]})
    res = evaluate_chunk(df, dt.date(2020, 6, 1), rules)
    assert res.exact_amounts > 0
    assert assert_row_total(res.summary, 1) > 900 * ROW_BOUND  # the huge row's total is not a wrapped figure
    assert_agree(rows, dt.date(2020, 6, 1), rules)


def assert_row_total(summary: pl.DataFrame, row: int):
    return summary.filter(pl.col("row") == row)["total_amount"].item()


def test_counted_once_groups_agree(rules):
    """Measures that restate the same money are counted once, the largest amount first and equal amounts
    by the tie order (test_overlaps works them out by hand for evaluate()): the batch counts the same
    rule of each group, also when only some rules of the catalogue pay in a chunk (Program.paying)."""
    from test_overlaps import CATERING_SME

    refund = {**CATERING_SME, "insured_employees": "40", "unemployment_claimants": "2",
              "unemployment_insurance_paid": "24000", "no_or_few_layoffs": "是",
              "meets_job_retention_refund_conditions": "是"}
    training = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
                "organises_online_vocational_training": "是", "employees_in_skills_training": "30",
                "vocational_training_subsidy_per_person": "600"}
    rows = [{k: v if isinstance(v, str) else _text(v) for k, v in r.items()}
            for r in (refund, CATERING_SME, training, {**refund, "unemployment_insurance_paid": "0.01"})]
    for on in (dt.date(2020, 3, 1), dt.date(2020, 6, 1)):
        assert_agree(rows, on, rules)
        assert_agree(rows[2:3], on, rules)  # a chunk where only the training subsidies pay


def test_rows_of_one_pattern_keep_their_own_amounts(rules):
    """Rows whose conditions all come out the same share one pattern (the conditions are evaluated once
    for it) but not their amounts: each row's refund, rent waiver and contributions are its own."""
    rows = []
    for k in range(60):
        insured = 20 + k * 7
        rows.append({"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
                     "industry": ("catering", "retail")[k % 2], "employees": str(insured + 5),
                     "revenue": str(1_000_000 + 12_345 * k), "insured_employees": str(insured),
                     "unemployment_claimants": str(k % 3), "unemployment_insurance_paid": f"{30_000 + 17.31 * k:.2f}",
                     "rents_state_owned_premises": "是", "monthly_rent": f"{8_000 + 101.01 * k:.2f}",
                     "employer_pension_monthly": f"{4_000 + 33.3 * k:.2f}",
                     "employer_medical_monthly": f"{1_500 + 7.7 * k:.2f}"})
    assert_agree(rows, dt.date(2020, 6, 1), rules)
    df = pl.DataFrame({k: pl.Series([r[k] for r in rows], dtype=pl.String) for k in rows[0]})
    totals = evaluate_frame(df, dt.date(2020, 6, 1), rules)["total_amount"]
    assert totals.n_unique() > 50  # the rows share patterns, yet each has its own total


def test_without_facts_to_collect_the_rest_is_the_same(rules):
    """facts_to_collect=False leaves that column out and skips the missing-fact masks (and the row flags
    only they read): every other column is the same, for every rule's worked examples, on both engines."""
    rows = [{k: (v if v is None or isinstance(v, str) else _text(v)) for k, v in ex.facts.items()}
            for r in rules for ex in r.spec.examples]
    df = pl.DataFrame({k: pl.Series([r.get(k) for r in rows], dtype=pl.String)
                       for k in dict.fromkeys(k for r in rows for k in r)})
    on = dt.date(2020, 6, 1)
    full = evaluate_frame(df, on, rules)
    lean = evaluate_frame(df, on, rules, facts_to_collect=False)
    assert "facts_to_collect" not in lean.columns
    assert lean.equals(full.drop("facts_to_collect"))
    single = evaluate_frame(df.head(40), on, rules, facts_to_collect=False, engine="single")
    assert single.equals(lean.head(40))
    summary, long = evaluate_frame(df, on, rules, long=True, facts_to_collect=False)
    assert summary.equals(lean) and long.equals(evaluate_frame(df, on, rules, long=True)[1])


@settings(max_examples=40, deadline=None)
@given(on=st.dates(dt.date(2019, 6, 1), dt.date(2027, 12, 31)))
def test_windows_and_amount_kinds_agree(rules, on):
    """What the columnar program holds per rule for a date (window, in effect, amount kind and period,
    which of the totals an amount goes to) is what evaluate() gives each result on that date."""
    from eligibility.batch import program_for

    report = evaluate({}, on=on, rules=rules)
    prog = program_for(rules, on)
    assert [p.rule.id for p in prog.plans] == [r.rule_id for r in report.results]
    for p, r in zip(prog.plans, report.results):
        spec = p.rule.spec.amount
        assert (p.window, p.in_effect) == (r.window, r.in_effect), r.rule_id
        assert (spec.kind if spec else None, spec.per if spec else "once") == (r.amount_kind, r.per), r.rule_id


def test_chunks_of_a_few_industries_size_their_companies_alike(rules):
    """The size standard's tests are computed only for the sectors a chunk's industries fall in
    (Program._size_stage): a chunk of one industry, of two, and of one with unknown industries must size
    (and so evaluate) its companies as evaluate() does, each near its sector's thresholds."""
    base = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise"}
    figures = [("8", "900000", "4000000"), ("20", "3000000", "49999999"), ("300", "20000000", "80000000"),
               ("1000", "400000000", "120000000"), (None, "19999999", None), ("99", None, "5000000")]

    def rows(industry):
        return [{**base, "industry": industry, "employees": e, "revenue": r, "total_assets": a,
                 "insured_employees": "30", "unemployment_claimants": "1", "unemployment_insurance_paid": "1000"}
                for e, r, a in figures]

    for industry in ("agriculture", "construction", "real_estate_development", "software", "tourism"):
        assert_agree(rows(industry), dt.date(2020, 6, 1), rules)
    assert_agree(rows("retail") + rows("property_management"), dt.date(2020, 6, 1), rules)
    assert_agree(rows("wholesale") + rows(None), dt.date(2020, 6, 1), rules)
