"""The same money restated in several documents is counted once in the report's total.

Rules linked by `excludes` (either direction, transitively) form one group; the total counts only the
largest eligible amount of a group. Every expected figure below is worked out by hand from the rules'
formulas and the documents' words, not copied from engine output.
"""

from decimal import Decimal

import pytest

import eligibility

# A catering SME in 长安区 renting state-owned premises at 10,000元 a month (40 staff, 3,000,000元 revenue:
# small under the 2011 size standard for catering).
CATERING_SME = {
    "province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
    "industry": "catering", "employees": 40, "revenue": 3_000_000, "rents_state_owned_premises": True,
    "rents_business_premises": True, "monthly_rent": 10_000, "affected_by_epidemic": True,
}

# The state-owned rent waiver, printed three times in the compilation and once in the provincial plan:
#   若干措施第6条（2020-02-05）: February free, March and April halved, for catering, hotels, markets
#   复工复产措施（十四）: SMEs, 1 month free and 2 months halved
#   服务业工作方案（二）13: “落实”第6条, word for word
#   河北省工作方案（二）13: landlords encouraged to waive rent (no amount)
STATE_RENT = ["sjz.rent.state_owned_catering_2020", "sjz.rent.state_owned_sme_2020",
              "sjz.rent_waiver.state_owned_crowded_sectors"]
RENT = 10_000 * 1 + 10_000 * Decimal("0.5") * 2  # 20,000元

# The job-retention refund (稳岗返还) of 2020 in all its versions.
REFUNDS = ["hebei2020.ui_refund.no_layoffs_50pct", "sjz.ui_refund.standard_50", "sjz.ui_refund.no_layoff_50pct",
           "sjz.ui_refund.sme_relaxed", "sjz.ui_refund.sme_relaxed_stable_jobs"]


def _group(rules, rule_id):
    return next((g for g in rules.exclusion_groups if rule_id in g), {rule_id})


def _counted(report):
    return {r.rule_id: r.amount for r in report.results if r.counted_in_total}


def test_state_owned_rent_waiver_counted_once(rules):
    report = eligibility.evaluate(CATERING_SME, on="2020-03-01")
    for rid in STATE_RENT:
        r = report.get(rid)
        assert r.status == "eligible" and r.amount == RENT, rid
    assert _group(rules, STATE_RENT[0]) >= set(STATE_RENT) | {"hebei2020.rent.waiver"}
    assert sum(1 for rid in STATE_RENT if report.get(rid).counted_in_total) == 1
    # other landlords' rent relief does not apply to a tenant of state-owned premises
    assert report.get("sjz.rent.other_landlord_encouraged_2020").status == "ineligible"
    assert report.get("sjz.rent_relief.private_landlord_encouraged").status == "ineligible"
    # nothing else in the catalogue pays this company a known amount
    assert report.total_amount == RENT == Decimal(20_000)


def test_refund_group_counts_only_the_largest(rules):
    # 40 insured, 2 drew benefit: layoff rate 5% <= 5.5%; 24,000元 paid last year.
    company = {**CATERING_SME, "insured_employees": 40, "unemployment_claimants": 2,
               "unemployment_insurance_paid": 24_000, "no_or_few_layoffs": True,
               "meets_job_retention_refund_conditions": True}
    report = eligibility.evaluate(company, on="2020-03-01")
    half, full = Decimal(24_000) * Decimal("0.5"), Decimal(24_000)  # 50% = 12,000元; 100% (SMEs, 39号文) = 24,000元
    expected = {"hebei2020.ui_refund.no_layoffs_50pct": half, "sjz.ui_refund.standard_50": half,
                "sjz.ui_refund.no_layoff_50pct": half, "sjz.ui_refund.sme_relaxed": full,
                "sjz.ui_refund.sme_relaxed_stable_jobs": full}
    for rid, amount in expected.items():
        r = report.get(rid)
        assert r.status == "eligible" and r.amount == amount, rid
    assert report.get("sjz.ui_refund.small_employer_20pct").status == "ineligible"  # 40 insured > 30
    assert report.get("sjz.ui_refund.hardship").status == "ineligible"  # fewer than 100 insured
    group = _group(rules, "sjz.ui_refund.sme_relaxed")
    assert set(REFUNDS) <= group
    counted = {rid: a for rid, a in _counted(report).items() if rid in group}
    assert list(counted.values()) == [full]
    # the rent waiver once (20,000元) + the largest refund once (24,000元)
    assert report.total_amount == RENT + full == Decimal(44_000)


@pytest.mark.parametrize("company, expected, paying", [
    # 平山县 (separate medical fund): 2,000元 × 50% × 5 months = 5,000元, in 石医保发〔2020〕2号 (二)
    # and again in the city's employment opinion; counted once.
    ({"county": "平山县", "entity_type": "enterprise", "employer_medical_monthly": 2000}, 5000,
     ["sjz.medical_halving_counties_2020", "sjz.medical_halving.stable_jobs"]),
    # 30 staff in online training at 600元 each = 18,000元: the provincial and the city training subsidy.
    ({"county": "长安区", "entity_type": "enterprise", "organises_online_vocational_training": True,
      "employees_in_skills_training": 30, "vocational_training_subsidy_per_person": 600}, 18_000,
     ["hebei2020.training.skills_training_subsidy", "sjz.training.online_vocational_subsidy"]),
    # A small firm's employer pension + unemployment + work injury, 8,550元 a month, waived 5 months = 42,750元:
    # the national relief (provincial plan), the city notice and the employment opinion.
    ({"county": "长安区", "entity_type": "enterprise", "industry": "catering", "employees": 40, "revenue": 3_000_000,
      "employer_pension_monthly": 8000, "employer_unemployment_monthly": 350, "employer_work_injury_monthly": 200,
      "national_si_relief_exempt_months": 5, "national_si_relief_halved_months": 0}, 42_750,
     ["hebei2020.social_insurance.national_relief", "sjz.si_exemption.sme_2020", "sjz.si_exemption.sme_stable_jobs"]),
])
def test_restated_money_counted_once(rules, company, expected, paying):
    report = eligibility.evaluate({"province": "河北省", "city": "石家庄市", **company}, on="2020-04-01")
    for rid in paying:
        r = report.get(rid)
        assert r.status == "eligible" and r.amount == expected, rid
        assert set(paying) <= _group(rules, rid)
    # counted once, in the definite total or (for a cap such as 最长5个月) in the "up to" total, never both
    assert report.total_amount + report.total_up_to == Decimal(expected)
    assert sum(report.get(rid).counted_in_total for rid in paying) == 1


def test_provincial_measure_still_counts_outside_shijiazhuang():
    # 保定市: only the provincial 50% refund applies: 24,000元 × 50% = 12,000元 (80 insured, none drew
    # benefit: 不裁员, decided from the data).
    company = {"province": "河北省", "city": "保定市", "entity_type": "enterprise", "insured_employees": 80,
               "unemployment_claimants": 0, "unemployment_insurance_paid": 24_000}
    report = eligibility.evaluate(company, on="2020-04-01")
    assert _counted(report) == {"hebei2020.ui_refund.no_layoffs_50pct": Decimal(12_000)}
    assert report.total_amount == Decimal(12_000)


def test_gas_and_water_price_cuts_are_different_money():
    # The services plan's umbrella “降低用电用水用气价格” is deliberately not linked to the gas and water rules:
    # that would put the two cuts in one group and drop one of them.
    # Gas, 29,000 m³ a month in 长安区: 0.15 × 29,000 × (1 + 8/29) + 0.59 × 29,000 × 3 = 5,550 + 51,330 = 56,880元
    # Water, 1,000 m³ a month: 0.38 × 1,000 × 3 = 1,140元
    company = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
               "industry": "catering", "uses_nonresidential_pipeline_gas": True, "gas_volume_m3_monthly": 29_000,
               "water_price_category": "nonresidential", "water_volume_m3_monthly": 1000}
    report = eligibility.evaluate(company, on="2020-04-01")
    assert _counted(report) == {"sjz.gas_price_cut.urban": Decimal(56_880), "sjz.water_price_cut.main_city": Decimal(1140)}
    assert report.total_amount == Decimal(58_020)
    assert report.get("sjz.utility_price_cut.trade_hospitality").status == "eligible"


LINKED = [
    ("sjz.rent_waiver.state_owned_crowded_sectors", "sjz.rent.state_owned_catering_2020"),
    ("sjz.rent_waiver.state_owned_crowded_sectors", "sjz.rent.state_owned_sme_2020"),
    ("sjz.rent_relief.private_landlord_encouraged", "sjz.rent.other_landlord_encouraged_2020"),
    ("sjz.rent_relief.private_landlord_encouraged", "sjz.rent.commercial_landlord_encouraged_2020"),
    ("hebei2020.rent.waiver", "sjz.rent_waiver.state_owned_crowded_sectors"),
    ("sjz.ui_refund.no_layoff_50pct", "sjz.ui_refund.standard_50"),
    ("hebei2020.ui_refund.no_layoffs_50pct", "sjz.ui_refund.no_layoff_50pct"),
    ("sjz.tax_relief.epidemic_affected_services_plan", "sjz.tax.property_land_tax_hardship_relief"),
    ("sjz.tax_relief.epidemic_affected_services_plan", "hebei2020.tax.property_land_use_relief"),
    ("sjz.tax_relief.vat_epidemic_affected_services_plan", "hebei2020.tax.vat_relief"),
    ("sjz.tax_relief.quota_individual_business", "hebei2020.tax.fixed_quota_relief"),
    ("sjz.housing_fund_deferral.services_plan", "sjz.housing_fund.reduce_or_defer"),
    ("sjz.housing_fund_deferral.services_plan", "hebei2020.housing_fund.deferral"),
    ("sjz.award.new_above_size_services", "sjz.above_size.new_entry_award_2020"),
    ("sjz.si_rate_cut.ui_wi_extended", "sjz.si_rate.ui_injury_reduction_extended"),
    ("sjz.loan_deferral.services_sme", "hebei2020.loans.deferral_rate_cut"),
    ("sjz.loan_no_withdrawal.services_sme", "hebei2020.loans.no_withdrawal_service_sme"),
    ("sjz.loan_no_withdrawal.services_sme", "sjz.finance.sme_loan_extension"),
    ("sjz.loan_no_withdrawal.temporary_difficulty", "sjz.finance.sme_no_principal_renewal"),
    ("sjz.financing_guarantee.key_supply_small_micro", "hebei2020.loans.guarantee_fee_cut"),
    ("sjz.utility_price_cut.trade_hospitality", "hebei2020.utilities.price_cut_trade_hospitality"),
    ("sjz.travel_agency_deposit.temporary_refund_80pct", "hebei2020.tourism.quality_deposit_temporary_refund"),
    ("sjz.emission_control.export_positive_list", "sjz.trade.heavy_pollution_continuous_production"),
    ("sjz.training_subsidy.certified_staff", "sjz.training.online_vocational_subsidy"),
    ("sjz.training.online_vocational_subsidy", "hebei2020.training.skills_training_subsidy"),
    ("sjz.si_deferral_2020", "sjz.si_deferral.sme_6m"),
    ("sjz.si_exemption.sme_2020", "hebei2020.social_insurance.national_relief"),
    ("sjz.medical_halving_counties_2020", "sjz.medical_halving.stable_jobs"),
    ("sjz.power_three_zero", "sjz.power.low_voltage_free_connection"),
    ("sjz.amr_first_violation.no_penalty", "sjz.enforcement.first_violation_no_penalty"),
    ("sjz.amr_first_violation.no_penalty_normalised", "sjz.enforcement.first_violation_no_penalty"),
    ("sjz.nrp_real_estate_registration.same_day", "sjz.property.enterprise_trade_window_1day"),
    ("sjz.nrp_real_estate_registration.same_day", "sjz.property.registration_time_limits_march"),
]

NOT_LINKED = [
    # different money
    ("sjz.gas_price_cut.urban", "sjz.water_price_cut.main_city"),
    ("sjz.utility_price_cut.trade_hospitality", "sjz.gas_price_cut.urban"),
    ("sjz.tax_relief.epidemic_affected_services_plan", "sjz.tax_relief.vat_epidemic_affected_services_plan"),
    ("sjz.rent.state_owned_catering_2020", "sjz.ui_refund.standard_50"),
    ("sjz.rent_waiver.state_owned_crowded_sectors", "hebei2020.rent.deferral"),
    ("sjz.loan_no_withdrawal.services_sme", "sjz.loan_deferral.services_sme"),
    ("sjz.finance.epidemic_enterprise_rate_cut", "sjz.loan_deferral.epidemic_affected"),
    ("sjz.medical_halving_2020", "sjz.si_exemption.sme_2020"),
    # other years and provinces
    ("hebei2020.ui_refund.no_layoffs_50pct", "henan2022.ui_refund_raised"),
    ("hebei2020.ui_refund.no_layoffs_50pct", "hebei2022.employee_based.job_retention_refund"),
    ("sjz.rent.state_owned_sme_2020", "henan2022.state_rent_waiver"),
    ("sjz.si_rate_cut.ui_wi_extended", "henan2022.ui_wi_rate_cut_extended"),
    ("sjz.si_deferral_2020", "henan2022.social_insurance_deferral"),
]


@pytest.mark.parametrize("a, b", LINKED)
def test_restatements_share_a_group(rules, a, b):
    assert b in _group(rules, a)


@pytest.mark.parametrize("a, b", NOT_LINKED)
def test_different_benefits_stay_apart(rules, a, b):
    assert a in rules.by_id and b in rules.by_id
    assert b not in _group(rules, a)


def test_deposit_returned_for_a_while_is_relief_not_money_in_the_total(rules):
    # A travel agency's quality deposit: 200,000元 × 80% = 160,000元 returned, provincial and city plan;
    # it must be paid back later, so it is shown with its amount but not added to the money total.
    company = {"province": "河北省", "city": "石家庄市", "county": "长安区", "entity_type": "enterprise",
               "industry": "tourism", "tourism_quality_deposit_paid": 200_000, "tourism_deposit_refund_rate": 80}
    report = eligibility.evaluate(company, on="2020-04-01")
    ids = ["hebei2020.tourism.quality_deposit_temporary_refund", "sjz.travel_agency_deposit.temporary_refund_80pct"]
    for rid in ids:
        r = report.get(rid)
        assert r.status == "eligible" and r.kind == "relief" and r.amount == Decimal(160_000)
        assert not r.counted_in_total
    assert set(ids) <= _group(rules, ids[0])
    assert report.total_amount == 0
