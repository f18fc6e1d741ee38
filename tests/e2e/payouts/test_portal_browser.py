"""The portal in a real browser: Selenium drives Debian's headless Chromium through
chromedriver against a whole stack.

A creator logs in with its key, reads its balance, opens a posting's explanation,
downloads its statement CSV (rows checked against the statement API), makes a tracking
link, is refused another creator's page (404) and logs out. A merchant logs in, changes
the period and sees the chart's points equal the series API's. Both read the creator's
content (a post whose second snapshot shrank) per content, as the contents API answers.
A form posted from a page of another origin is refused. Each page's screenshot is saved under
``test-artifacts/portal/`` (``AFFLUX_TEST_ARTIFACTS`` moves it; docs/testing.md).
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from afflux.cli.demo_client import DemoClient
from afflux.cli.processes import free_port
from afflux.cli.stack import Stack
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.http import tls as oneshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_TOKEN = "portal-browser-admin-token"
RUN = uuid.uuid4().hex[:6]
CAMPAIGN = f"portal-{RUN}"
MERCHANT = f"merchant-{RUN}"
CREATOR, OTHER = f"ana-{RUN}", f"ben-{RUN}"
TERMS_YAML = f"""
campaigns:
  - effective_from: 0
    terms:
      campaign_id: {CAMPAIGN}
      merchant_id: {MERCHANT}
      currency: EUR
      allowed_domains: [shop.example.com]
      cookie_window_days: 30
      grace_seconds: 1
      lock_days: 30
      emv: {{per_impression_minor_per_1000: 500, per_like_minor: 5, per_comment_minor: 10}}
      plan:
        sale: {{rate: {{percent: "10"}}}}
"""
POST = f"post-{RUN}"
LINKS_PER_CAMPAIGN = 4
# The campaign is monthly: its current period is this month (UTC).
PERIOD_NOW = time.strftime("%Y-%m", time.gmtime())
ARTIFACTS = Path(os.environ.get("AFFLUX_TEST_ARTIFACTS", "test-artifacts")) / "portal"


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {"AFFLUX_PORTAL_LINKS_PER_CAMPAIGN": str(LINKS_PER_CAMPAIGN)}


@pytest.fixture(scope="module")
def terms(tmp_path_factory: pytest.TempPathFactory) -> CampaignTerms:
    path = tmp_path_factory.mktemp("portal-terms") / "campaigns.yaml"
    path.write_text(TERMS_YAML)
    return load_campaign_file(path).campaigns[0].terms


@pytest.fixture
def browser(
    chromium: str, chromedriver: str, tmp_path: Path
) -> Iterator[tuple[webdriver.Chrome, Path]]:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--disable-gpu", "--window-size=1280,2200"):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    # As on a machine without internet: nothing but loopback resolves.
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver, downloads
    finally:
        driver.quit()


def shot(driver: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def ready(driver: webdriver.Chrome) -> None:
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.body.dataset.state") == "ready"
    )


def submit(driver: webdriver.Chrome, button: WebElement) -> None:
    """Click a form's button and wait for the page it loads: the page before it was
    ready too, and reading it would race the navigation."""
    # A mark on the page's window object, gone once another document is loaded: an
    # element reference taken before the click (staleness_of) can also fail with
    # ChromeDriver's "does not belong to the document" while the navigation is under way.
    driver.execute_script("window.affluxPageBeforeSubmit = true;")
    try:
        button.click()
    except WebDriverException as exc:
        # ChromeDriver sometimes loses its inspector's node id of an element still in the
        # page (the charts redraw while a loaded machine is slow): the page's own click.
        if "does not belong to the document" not in str(exc):
            raise
        driver.execute_script("arguments[0].click();", button)
    WebDriverWait(driver, 20).until(left_page_before)
    ready(driver)


def left_page_before(driver: webdriver.Chrome) -> bool:
    try:
        return bool(driver.execute_script("return window.affluxPageBeforeSubmit === undefined"))
    except WebDriverException:  # a script sent while the next document replaces the page
        return False


def text(driver: webdriver.Chrome, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def euros(minor: int) -> str:
    return f"{Decimal(minor).scaleb(-2):.2f} EUR"


def log_in(driver: webdriver.Chrome, base: str, key: str, page: str) -> None:
    """Open ``page``: the portal sends a browser without a session to the login form and,
    once logged in, back to the page."""
    driver.get(base + page)
    WebDriverWait(driver, 20).until(lambda d: "/login" in d.current_url)
    driver.find_element(By.NAME, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form button, form [type=submit]").click()
    try:
        WebDriverWait(driver, 20).until(lambda d: d.current_url.split("?")[0] == base + page)
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"after login at {driver.current_url}: {body[:500]}") from None
    ready(driver)


async def issue_key(payouts: str, role: str, subject: str) -> str:
    async with httpx.AsyncClient(timeout=30.0) as http:
        answer = await http.post(
            f"{payouts}/v1/keys",
            json={"role": role, "subject": subject},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["key"])


async def api(url: str, key: str, **query: str) -> Any:
    async with httpx.AsyncClient(timeout=30.0) as http:
        answer = await http.get(
            url, params=query or None, headers={"Authorization": f"Bearer {key}"}
        )
    answer.raise_for_status()
    return answer.json()


async def wait_for(url: str, key: str, check: Any, timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        try:
            body = await api(url, key)
            if check(body):
                return body
            last = str(body)[:500]
        except httpx.HTTPStatusError as exc:
            last = f"{exc.response.status_code} {exc.response.text[:500]}"
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never got there; last: {last}")
        await asyncio.sleep(0.5)


def insights_url(stack: Stack, period: str) -> str:
    return f"{stack.url('orders')}/v1/campaigns/{CAMPAIGN}/insights?period={period}"


@pytest.fixture(scope="module")
def activity(stack: Stack, terms: CampaignTerms) -> dict[str, str]:
    """Two creators' clicks and orders (one partly refunded), and the keys to log in with."""

    async def run() -> dict[str, str]:
        payouts = stack.url("payouts")
        client = DemoClient(stack.url("clicks"), stack.url("orders"), payouts, ADMIN_TOKEN)
        async with client:
            codes = {c: await client.create_link(terms, c) for c in (CREATOR, OTHER)}
            first, _ = await client.click(codes[CREATOR], None)
            third, _ = await client.click(codes[OTHER], None)
            # One visitor clicks the other creator's link, then this creator's: the order
            # goes to the last click, the first is an assist that would have won.
            second, _ = await client.click(codes[OTHER], None)
            await client.click(codes[CREATOR], second)
            campaign_api = f"{payouts}/v1/kpis/campaigns/{CAMPAIGN}"
            await wait_for(campaign_api, ADMIN_TOKEN, lambda b: b["clicks"] >= 4)
            for n, visitor in enumerate((first, second, third, f"nobody-{RUN}")):
                await client.place_order(
                    terms,
                    order_id=f"o-{RUN}-{n}",
                    kind="sale",
                    amount=Money(4_999 + 1_000 * n, "EUR"),
                    visitor_id=visitor,
                    new_customer=False,
                )
            await wait_for(campaign_api, ADMIN_TOKEN, lambda b: b["conversions"] >= 3)
            await client.refund(terms, order_id=f"o-{RUN}-0", refund_id=f"r-{RUN}", amount=2_500)
            await wait_for(campaign_api, ADMIN_TOKEN, lambda b: b["refunds_minor"] >= 2_500)
            await wait_for(
                insights_url(stack, "2026-01"),  # any period: the route answers
                ADMIN_TOKEN,
                lambda b: True,
            )
            # A post and two snapshots of it, the second with fewer likes (fake ones gone).
            now = int(time.time() * 1000)
            await client.publish_content(
                {
                    "content_id": POST,
                    "platform": "instagram",
                    "affiliate_id": CREATOR,
                    "campaign_id": CAMPAIGN,
                    "kind": "post",
                    "url": f"https://instagram.com/p/{POST}",
                    "published_at": now - 60_000,
                }
            )
            counts = {"views": 4_000, "impressions": 10_000, "comments": 40, "shares": 8}
            for as_of, likes in ((now - 50_000, 600), (now - 40_000, 512)):
                stats = {**counts, "as_of": as_of, "likes": likes, "saves": 20, "followers": 20_000}
                await client.post_stats("instagram", POST, stats)
            await wait_for(
                f"{payouts}/v1/kpis/campaigns/{CAMPAIGN}/contents",
                ADMIN_TOKEN,
                lambda b: [c["engagement"] for c in b["contents"]] == [512 + 40 + 8 + 20],
            )
        return {
            "creator": await issue_key(payouts, "creator", CREATOR),
            "merchant": await issue_key(payouts, "merchant", MERCHANT),
        }

    return asyncio.run(run())


def test_creator_reads_explains_downloads_links_and_logs_out(
    stack: Stack, activity: dict[str, str], browser: tuple[webdriver.Chrome, Path]
) -> None:
    driver, downloads = browser
    base = stack.url("payouts")
    key = activity["creator"]
    log_in(driver, base, key, f"/portal/creators/{CREATOR}")

    balance = asyncio.run(api(f"{base}/v1/creators/{CREATOR}/balance", key))["balances"][0]
    cells = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "table.balance tbody td")]
    assert cells[:3] == ["EUR", euros(balance["pending_minor"]), euros(balance["approved_minor"])]
    assert balance["pending_minor"] > 0
    schedule = driver.find_elements(By.CSS_SELECTOR, "table.schedule tbody tr")
    # One row per day: both orders' commission (less the refund) is approved on one day.
    assert len(schedule) == 1
    assert schedule[0].find_elements(By.TAG_NAME, "td")[1].text == euros(balance["pending_minor"])
    year, month = (int(x) for x in PERIOD_NOW.split("-"))
    following = f"{year + (month == 12)}-{month % 12 + 1:02d}-01"
    assert [
        row_text(r) for r in driver.find_elements(By.CSS_SELECTOR, "table.next-payouts tbody tr")
    ] == [[CAMPAIGN, PERIOD_NOW, following]]
    shot(driver, "creator-balance")

    driver.get(f"{base}/portal/creators/{CREATOR}/ledger")
    ready(driver)
    ledger = asyncio.run(api(f"{base}/v1/creators/{CREATOR}/ledger", key))
    explained = {line["line_id"]: line["explanation"] for line in ledger["lines"]}
    refunded = next(p for p in ledger["postings"] if p["component"] == "refund")
    details = driver.find_element(
        By.CSS_SELECTOR, f'details[data-posting="{refunded["posting_id"]}"]'
    )
    assert not details.find_element(By.CSS_SELECTOR, ".line-why").is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    why = details.find_element(By.CSS_SELECTOR, ".line-why")
    assert why.is_displayed()
    assert why.text == f"Line: {explained[refunded['line_id']]}"
    assert "reduced by 2.50 EUR before approval (refund)" in why.text  # 10 % of 25.00
    assert f"order o-{RUN}-0" in why.text
    shot(driver, "creator-postings")

    driver.get(f"{base}/portal/creators/{CREATOR}/statement")
    ready(driver)
    shot(driver, "creator-statement")
    shown_lines = [
        row_text(r) for r in driver.find_elements(By.CSS_SELECTOR, "table.lines tbody tr")
    ]
    assert len(shown_lines) >= 2
    assert [r[0] for r in shown_lines] == sorted(r[0] for r in shown_lines)  # by date
    driver.find_element(By.ID, "download-csv").click()
    WebDriverWait(driver, 30).until(lambda _: any(p.suffix == ".csv" for p in downloads.iterdir()))
    csv_file = next(p for p in downloads.iterdir() if p.suffix == ".csv")
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text("utf-8"))))
    statement = asyncio.run(api(f"{base}/v1/creators/{CREATOR}/statement", key))
    assert [(r["posting_id"], int(r["amount_minor"])) for r in rows] == [
        (p["posting_id"], p["amount_minor"]) for p in statement["postings"]
    ]
    assert {r["order_id"] for r in rows} == {f"o-{RUN}-0", f"o-{RUN}-1"}
    assert sorted(r[2] for r in shown_lines) == sorted(
        euros(line["amount_minor"]) for line in statement["lines"]
    )
    earlier = f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"
    driver.get(f"{base}/portal/creators/{CREATOR}/statement?period={earlier}")
    ready(driver)
    assert text(driver, "#no-postings") == "No postings in this period."
    assert not driver.find_elements(By.CSS_SELECTOR, "table.lines, table.totals")

    driver.get(f"{base}/portal/creators/{CREATOR}/kpis")
    ready(driver)
    assert "Conversion rate = conversions ÷ valid clicks" in driver.page_source
    assert text(driver, "#period-label") == "Showing each campaign's current period"
    kpis = asyncio.run(
        api(f"{base}/v1/kpis/creators/{CREATOR}", key, campaign_id=CAMPAIGN, period=PERIOD_NOW)
    )
    shown = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "table.kpis tbody td")]
    assert shown[:3] == [str(kpis["clicks"]), str(kpis["valid_clicks"]), str(kpis["conversions"])]
    assert shown[3] == f"{kpis['conversion_rate'] * 100:.2f} %"
    assert shown[5] == euros(kpis["commission_minor"])
    reach = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "table.reach tbody td")]
    assert reach[:4] == ["1", "4,000", "10,000", "580"]  # the second snapshot's likes
    assert reach[4] == f"{kpis['engagement_rate'] * 100:.2f} %" == "2.90 %"
    assert reach[7] == euros(kpis["emv_minor"])
    contents = asyncio.run(api(f"{base}/v1/kpis/creators/{CREATOR}/contents", key))["contents"]
    assert [
        row_text(r) for r in driver.find_elements(By.CSS_SELECTOR, "table.contents tbody tr")
    ] == [
        ["instagram", "post", POST, "4,000", "580", "2.90 %", "none", "none", euros(c["emv_minor"])]
        for c in contents
    ]
    assert (
        euros(contents[0]["emv_minor"]) == "79.60 EUR"
    )  # 10,000 x 5.00/1,000 + 512 x 0.05 + 40 x 0.10
    shot(driver, "creator-kpis")

    driver.get(f"{base}/portal/creators/{CREATOR}/links")
    ready(driver)
    form = driver.find_element(By.ID, "new-link")
    form.find_element(By.NAME, "destination_url").send_keys("https://elsewhere.example.org/x")
    submit(driver, form.find_element(By.TAG_NAME, "button"))
    assert "destination_url" in text(driver, "#link-refused")
    form = driver.find_element(By.ID, "new-link")
    field = form.find_element(By.NAME, "destination_url")
    field.clear()
    field.send_keys("https://shop.example.com/spring")
    submit(driver, form.find_element(By.TAG_NAME, "button"))
    listed = text(driver, "table.links")
    assert "https://shop.example.com/spring" in listed
    assert text(driver, "#links-made") == (
        f"Links made: {CAMPAIGN} 2 of {LINKS_PER_CAMPAIGN} (deactivated links count too)."
    )
    shot(driver, "creator-links")
    spring = next(
        r
        for r in driver.find_elements(By.CSS_SELECTOR, "table.links tbody tr")
        if "spring" in r.text
    )
    submit(driver, spring.find_element(By.CSS_SELECTOR, "form.deactivate button"))
    shown = [row_text(r) for r in driver.find_elements(By.CSS_SELECTOR, "table.links tbody tr")]
    assert [(r[2], r[3]) for r in shown if "spring" in r[2]] == [
        ("https://shop.example.com/spring", "no")
    ]
    assert [r[4] for r in shown if "spring" not in r[2]] == ["Deactivate"]  # still active

    driver.get(f"{base}/portal/creators/{OTHER}")
    ready(driver)
    assert text(driver, "#not-found") == f"Not found: creator {OTHER}."
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    answer = oneshot.get(f"{base}/portal/creators/{OTHER}", cookies=cookies, timeout=30)
    assert answer.status_code == 404
    shot(driver, "creator-other-404")

    driver.find_element(By.ID, "logout").click()
    # The logout answers with the login page: a navigation started before it arrives
    # could cancel the logout's POST.
    WebDriverWait(driver, 20).until(lambda d: "/login" in d.current_url)
    driver.get(f"{base}/portal/creators/{CREATOR}")
    WebDriverWait(driver, 20).until(lambda d: "/login" in d.current_url)


def test_merchant_changes_period_and_the_chart_shows_the_series(
    stack: Stack, activity: dict[str, str], browser: tuple[webdriver.Chrome, Path]
) -> None:
    driver, _ = browser
    base = stack.url("payouts")
    key = activity["merchant"]
    page = f"/portal/campaigns/{CAMPAIGN}"
    log_in(driver, base, key, page)
    current = Select(driver.find_element(By.ID, "period")).first_selected_option
    assert current.text.endswith("(current)")
    period = current.get_attribute("value")
    assert text(driver, "#period-label") == f"Showing {period} (current period)"
    check_chart(driver, base, key, period)
    assert "conversions ÷ valid clicks" in text(driver, "#conversion-rate")
    assert CREATOR in text(driver, "table.top-creators")
    campaign = asyncio.run(api(f"{base}/v1/kpis/campaigns/{CAMPAIGN}", key, period=str(period)))
    reach = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "table.reach tbody td")]
    assert reach[5] == f"{campaign['ctr'] * 100:.2f} %"  # valid clicks / 10,000 impressions
    assert reach[6] == euros(campaign["rpm_minor"])  # net revenue per 1,000 of 4,000 views
    assert campaign["rpm_minor"] == (campaign["net_revenue_minor"] * 1_000 + 2_000) // 4_000
    assert [
        row_text(r) for r in driver.find_elements(By.CSS_SELECTOR, "table.contents tbody tr")
    ] == [
        ["instagram", "post", POST, CREATOR, "4,000", "580", "2.90 %", "none", "none", "79.60 EUR"]
    ]
    assert "survey-attributed" in text(driver, "#conversions-by-rule")
    insights = asyncio.run(
        wait_for(
            insights_url(stack, str(period)),
            ADMIN_TOKEN,
            lambda b: b["unattributed_by_reason"]["no_click"] >= 1 and b["assists"],
        )
    )
    driver.refresh()
    ready(driver)
    unattributed = {
        row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
        for row in driver.find_elements(By.CSS_SELECTOR, "table.unattributed tbody tr")
    }
    assert unattributed["no click or coupon of a creator"] == "1"
    assert unattributed["all"] == str(sum(insights["unattributed_by_reason"].values()))
    assists = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in driver.find_elements(By.CSS_SELECTOR, "table.assists tbody tr")
    ]
    assert assists == [
        [a["affiliate_id"], str(a["assists"]), str(a["would_have_won"])]
        for a in insights["assists"]
    ]
    assert [OTHER, "1", "1"] in assists
    shot(driver, "brand-campaign")

    year, month = (int(x) for x in str(period).split("-"))
    earlier = f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"
    driver.get(f"{base}{page}?period={earlier}")
    ready(driver)
    assert text(driver, "#period-label") == f"Showing {earlier} (past period)"
    check_chart(driver, base, key, earlier)
    Select(driver.find_element(By.ID, "period")).select_by_value(str(period))
    submit(driver, driver.find_element(By.CSS_SELECTOR, "#period-picker button"))
    assert text(driver, "#period-label") == f"Showing {period} (current period)"
    check_chart(driver, base, key, str(period))
    shot(driver, "brand-campaign-period")


def row_text(row: Any) -> list[str]:
    return [str(cell.text) for cell in row.find_elements(By.TAG_NAME, "td")]


def check_chart(driver: webdriver.Chrome, base: str, key: str, period: str) -> None:
    """The drawn chart's points are the series API's, a day without a bucket drawn as 0."""
    series = asyncio.run(api(f"{base}/v1/kpis/campaigns/{CAMPAIGN}/series", key, period=period))
    drawn = driver.execute_script(
        "var c = window.afxCharts.find(function (x) { return x.id === 'chart-activity'; });"
        "return {x: c.chart.data[0], clicks: c.chart.data[1], conversions: c.chart.data[2]};"
    )
    by_day = {b["start"] // 1000: b for b in series["buckets"]}
    assert set(by_day) <= set(drawn["x"])
    for n, x in enumerate(drawn["x"]):
        bucket = by_day.get(x, {"clicks": 0, "conversions": 0})
        assert drawn["clicks"][n] == bucket["clicks"]
        assert drawn["conversions"][n] == bucket["conversions"]
    assert all(b - a == 86_400 for a, b in zip(drawn["x"], drawn["x"][1:], strict=False))
    # What the reader sees under the axis: days, as the tables date them, never hours.
    ticks = driver.execute_script(
        "var c = window.afxCharts.find(function (x) { return x.id === 'chart-activity'; });"
        "return c.chart.axes[0]._values;"
    )
    assert len(ticks) >= 2
    assert all(re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}", t) for t in ticks), ticks


class _Attacker(BaseHTTPRequestHandler):
    """A page of another origin whose form posts to the portal."""

    target = ""

    def do_GET(self) -> None:
        page = (
            f'<form method="post" action="{self.target}">'
            '<input name="campaign_id" value="x"><input name="destination_url" '
            'value="https://shop.example.com/evil"><input name="csrf_token" value="guess">'
            '<button id="go" type="submit">go</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


def test_a_form_from_another_origin_is_refused(
    stack: Stack, activity: dict[str, str], browser: tuple[webdriver.Chrome, Path]
) -> None:
    driver, _ = browser
    base = stack.url("payouts")
    key = activity["creator"]
    log_in(driver, base, key, f"/portal/creators/{CREATOR}/links")
    before = asyncio.run(api(f"{stack.url('clicks')}/v1/links", ADMIN_TOKEN, affiliate_id=CREATOR))
    _Attacker.target = f"{base}/portal/creators/{CREATOR}/links"
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        driver.find_element(By.ID, "go").click()
        WebDriverWait(driver, 20).until(lambda d: d.current_url.startswith(base))
        shot(driver, "csrf-refused")
        refusal = driver.find_element(By.TAG_NAME, "body").text
        assert "the form was not sent from a page of this service" in refusal
    finally:
        server.shutdown()
    after = asyncio.run(api(f"{stack.url('clicks')}/v1/links", ADMIN_TOKEN, affiliate_id=CREATOR))
    assert after["links"] == before["links"]


def portal_client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=30.0, headers={"origin": base})


async def portal_login(http: httpx.AsyncClient, key: str, page: str) -> str:
    """Log ``http`` in with ``key``; the session's CSRF token (from ``page``)."""
    form = await http.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert match, form.text[:500]
    login = await http.post("/login", data={"key": key, "csrf_token": match.group(1)})
    assert login.status_code == 303, login.text[:500]
    form = await http.get(page)
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert match, form.text[:500]
    return match.group(1)


async def links_of(stack: Stack, creator: str) -> list[dict[str, Any]]:
    answer = await api(f"{stack.url('clicks')}/v1/links", ADMIN_TOKEN, affiliate_id=creator)
    return list(answer["links"])


def refusal_of(page: httpx.Response) -> str:
    match = re.search(r'id="link-refused">([^<]*)<', page.text)
    assert match, page.text[:500]
    return html.unescape(match.group(1))


def test_a_creator_makes_no_more_links_than_the_bound_even_all_at_once(
    stack: Stack, terms: CampaignTerms
) -> None:
    creator = f"cy-{RUN}"

    async def run() -> None:
        payouts = stack.url("payouts")
        async with DemoClient(stack.url("clicks"), stack.url("orders"), payouts, ADMIN_TOKEN) as c:
            await c.create_link(terms, creator)  # the brand's: the creator is in the campaign
        path = f"/portal/creators/{creator}/links"
        key = await issue_key(payouts, "creator", creator)
        async with portal_client(payouts) as http:
            csrf = await portal_login(http, key, path)
            form = {"csrf_token": csrf, "campaign_id": CAMPAIGN}
            answers = await asyncio.gather(
                *(
                    http.post(
                        path, data={**form, "destination_url": f"https://shop.example.com/{n}"}
                    )
                    for n in range(8)
                )
            )
            assert {a.status_code for a in answers} <= {303, 422}
            assert len(await links_of(stack, creator)) <= LINKS_PER_CAMPAIGN
            for n in range(LINKS_PER_CAMPAIGN + 1):  # what a refusal of two at once left
                more = await http.post(
                    path, data={**form, "destination_url": f"https://shop.example.com/more-{n}"}
                )
                if more.status_code != 303:
                    break
            assert more.status_code == 422
            assert refusal_of(more) == (
                f"Not created: campaign_id: you have made {LINKS_PER_CAMPAIGN} links in this "
                f"campaign, the most a creator may make here ({LINKS_PER_CAMPAIGN}; deactivated "
                "links count too): ask the brand for another"
            )
            assert len(await links_of(stack, creator)) == LINKS_PER_CAMPAIGN

    asyncio.run(run())


def test_a_creator_deactivates_its_own_links_but_not_its_last_nor_anothers(
    stack: Stack, terms: CampaignTerms, activity: dict[str, str]
) -> None:
    creator = f"di-{RUN}"

    async def run() -> None:
        payouts = stack.url("payouts")
        async with DemoClient(stack.url("clicks"), stack.url("orders"), payouts, ADMIN_TOKEN) as c:
            first = await c.create_link(terms, creator)
        links = f"/portal/creators/{creator}/links"
        key = await issue_key(payouts, "creator", creator)
        async with portal_client(payouts) as http:
            csrf = await portal_login(http, key, links)
            last = await http.post(f"{links}/{first}/deactivate", data={"csrf_token": csrf})
            assert last.status_code == 409
            assert refusal_of(last) == (
                f"Not deactivated: code: {first!r} is your last active link in campaign "
                f"{CAMPAIGN!r}, and you belong to it only through a link: make another link "
                "there first"
            )
            theirs = next(x["code"] for x in await links_of(stack, CREATOR) if x["active"])
            other = await http.post(f"{links}/{theirs}/deactivate", data={"csrf_token": csrf})
            assert other.status_code == 404
            assert refusal_of(other) == f"Not deactivated: code: no link {theirs!r} of yours"
            assert any(x["code"] == theirs and x["active"] for x in await links_of(stack, CREATOR))

            data = {"csrf_token": csrf, "campaign_id": CAMPAIGN}
            made = await http.post(
                links, data={**data, "destination_url": "https://shop.example.com/new"}
            )
            assert made.status_code == 303, made.text[:500]
            done = await http.post(f"{links}/{first}/deactivate", data={"csrf_token": csrf})
            assert done.status_code == 303
            assert done.headers["location"] == links
            states = {x["code"]: x["active"] for x in await links_of(stack, creator)}
            assert states[first] is False
            assert sorted(states.values()) == [False, True]
            again = await http.post(f"{links}/{first}/deactivate", data={"csrf_token": csrf})
            assert again.status_code == 409
            assert (
                refusal_of(again) == f"Not deactivated: code: link {first!r} is already deactivated"
            )

    asyncio.run(run())
