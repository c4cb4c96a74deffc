"""End to end: the app started as `.ci/app` does (`ui/serve.py`, i.e. `streamlit run ui/app.py`) on a free port, driven in headless Chromium through Playwright.

A person fills the questionnaire (a catering SME in 石家庄市长安区 renting state-owned premises),
reads the results, switches to English and downloads the report. Screenshots and the downloaded
report go to test-artifacts/. Chromium is /usr/bin/chromium (CHROMIUM_PATH overrides); install it
with `bash .ci/install-browser`. Without it the test is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RENT_ID = "sjz.rent_waiver.state_owned_crowded_sectors"
REFUND_ID = "sjz.ui_refund.sme_relaxed"


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so the browser test must run: bash .ci/install-browser)")
    pytest.skip(f"{reason}; run `bash .ci/install-browser` to enable the browser test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        _unavailable(f"Chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def app_url():
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "ELIGIBILITY_RULES_DIR"}
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "streamlit-server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "ui" / "serve.py"), "--server.headless=true",  # as .ci/app starts it
         f"--server.port={port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
         "--server.fileWatcherType=none", "--global.developmentMode=false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("streamlit did not start:\n" + (ARTIFACTS / "streamlit-server.log").read_text("utf-8"))
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# ---------------------------------------------------------------- how a person works the widgets


def runs(page) -> int:
    """The app ends every run with <span class="run-done" data-run=N>: the last run fully shown."""
    marker = page.locator(".run-done")
    return int(marker.last.get_attribute("data-run")) if marker.count() else 0


def rerun(page, action) -> None:
    """Do something that makes the app rerun, and wait until that run is fully shown."""
    n = runs(page)
    action()
    page.locator(f".run-done[data-run='{n + 1}']").wait_for(state="attached", timeout=30000)


def choose(page, key: str, text: str) -> None:
    def act():
        page.locator(f".st-key-{key} input").first.click()
        page.keyboard.type(text)
        page.get_by_role("option", name=text, exact=True).first.click()
    rerun(page, act)


def type_in(page, key: str, text: str) -> None:
    box = page.locator(f".st-key-{key} input[type=text]").first
    box.fill(text)
    rerun(page, lambda: box.press("Enter"))


def pick(page, key: str, label: str) -> None:
    rerun(page, lambda: page.locator(f".st-key-{key}").get_by_text(label, exact=True).click())


def until_asked(page, fact: str) -> None:
    for _ in range(40):
        if page.locator(f".st-key-q_{fact}").count():
            return
        rerun(page, lambda: page.locator(".st-key-more_questions button").click())
    pytest.fail(f"the app never asked {fact}")


def test_questionnaire_in_a_real_browser(browser, app_url):
    from eligibility import default_rules

    rules = default_rules()
    rent_title = rules.by_id[RENT_ID].spec.title.zh
    refund_title = rules.by_id[REFUND_ID].spec.title.zh
    context = browser.new_context(viewport={"width": 1400, "height": 3000}, accept_downloads=True, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(30000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.monotonic()
    page.goto(app_url)
    page.locator(".st-key-q_province input").wait_for()
    page.locator(".run-done").wait_for(state="attached")
    first_screen = time.monotonic() - t0
    assert page.get_by_text("企业扶持政策计算器").count()

    choose(page, "q_province", "河北省")
    type_in(page, "q_city", "石家庄")  # typed without 市, understood as 石家庄市
    assert page.get_by_text("已理解为：石家庄市").count()
    type_in(page, "q_county", "长安区")
    choose(page, "q_entity_type", "企业")
    choose(page, "q_industry", "餐饮业")
    type_in(page, "q_employees", "40")
    type_in(page, "q_revenue", "3,000,000")
    until_asked(page, "rents_state_owned_premises")
    pick(page, "q_rents_state_owned_premises", "是")
    for fact, value in (("monthly_rent", "10000"), ("insured_employees", "40"), ("unemployment_claimants", "2"),
                        ("unemployment_insurance_paid", "24000")):
        until_asked(page, fact)
        type_in(page, f"q_{fact}", value)
    # a bad number shows an error next to its field and nothing breaks
    type_in(page, "q_employees", "四十")
    assert page.locator(".st-key-q_employees ~ div [data-testid=stAlert], [data-testid=stAlert]").filter(
        has_text="应为整数").count()
    type_in(page, "q_employees", "40")

    labels = page.locator("details.res > summary").all_inner_texts()
    assert any(rent_title in x and "20,000.00元" in x for x in labels), labels
    assert any(refund_title in x and "24,000.00元" in x for x in labels), labels
    metrics = page.locator("[data-testid=stMetricValue]").all_inner_texts()
    assert metrics and metrics[0].endswith("元")
    total = float(metrics[0].rstrip("元").replace(",", ""))
    assert total >= 44000

    # open the refund's card: formula with the numbers and the highlighted quote
    page.locator("details.res > summary").filter(has_text=refund_title).first.click()
    card = page.locator("details.res[open]").filter(has_text=refund_title).first
    card.locator("mark").first.wait_for()
    assert "24,000 × 100% = 24,000.00元" in card.inner_text()
    assert "石人社字〔2020〕39号" in card.inner_text()
    page.locator(".st-key-lang").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "e2e-results-zh.png"), full_page=True)

    # the printable report downloads as self-contained UTF-8 HTML
    page.get_by_text("下载", exact=True).click()
    with page.expect_download() as dl:
        page.locator(".st-key-dl_html button").click()
    report = ARTIFACTS / "e2e-report.html"
    dl.value.save_as(report)
    html = report.read_text("utf-8")
    assert '<meta charset="utf-8">' in html and refund_title in html and "24,000.00元" in html
    assert "石家庄" in html and "3,000,000" in html  # the input as received

    # English
    pick(page, "lang", "English")
    page.get_by_text("Business support-policy calculator").wait_for()
    assert page.locator(".st-key-q_province").get_by_text("Province").count()
    assert page.locator(".st-key-q_industry input").input_value() == "Catering"  # the answer survived
    assert page.locator(".st-key-q_rents_state_owned_premises input[type=radio]:checked").count() == 1
    page.locator(".st-key-lang").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "e2e-results-en.png"), full_page=True)
    assert not errors, errors
    (ARTIFACTS / "e2e-timings.txt").write_text(f"first screen (widgets visible): {first_screen:.2f} s\n", "utf-8")
    context.close()


def test_phone_sized_first_screen(browser, app_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="zh-CN")
    page = context.new_page()
    page.goto(app_url)
    page.locator(".st-key-q_province input").wait_for(timeout=30000)
    page.locator(".run-done").wait_for(state="attached", timeout=30000)
    page.wait_for_timeout(300)
    box = page.locator(".st-key-q_province").bounding_box()
    assert box and box["width"] <= 390  # questions fit the phone's width
    page.screenshot(path=str(ARTIFACTS / "e2e-phone.png"))
    context.close()
