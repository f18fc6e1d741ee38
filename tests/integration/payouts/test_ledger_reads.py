"""The payouts API reads the journal: balances from running sums, a cursor-paged ledger,
period statements, KPIs from counters and payout runs, on a plain Redis and a Redis
Cluster, each figure checked to the cent against what the plans say by hand.

The ledger, applied in two batches so that corrections show as postings:

- campaign ``acme`` (EUR, 1000 per sale, 5 per valid click, creator cap 2500, 10 lock
  days). November: anna sells at 01:00, 02:00 and 03:00 (the third is cut by 500 at the
  cap); bob sells at 04:00 and has 3 valid clicks, 1 duplicate and 1 bot. The second
  batch refunds anna's first sale in full on Nov 13, after its approval (Nov 11 01:00):
  a clawback of 1000, which frees the cap, so the third sale's cut is released (+500).
  December: anna sells once more at Dec 1 01:00 (a new period, a new cap).
- campaign ``beta`` (EUR, 700 per sale, no lock): anna sells on Nov 20.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from ledger_app import directory_of, payouts_http, sale_fact

from afflux.cli.scenario_checks import read_topic
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import Applied, Batch, ClickItem, LedgerStore
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished, PayoutIssued
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration

HOUR = 3_600_000
DAY = 24 * HOUR
NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
DEC_1 = NOV_1 + 30 * DAY
TOKEN = "reads-admin-token"


def _terms(campaign: str, plan: dict[str, Any], lock_days: int) -> TermsVersion:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": lock_days,
            "plan": plan,
        }
    )
    return TermsVersion(version=1, effective_from=0, published_at=0, terms=terms)


ACME = _terms(
    "acme",
    {
        "sale": {"rate": {"fixed_minor": 1000}},
        "click": {"per_click_minor": 5},
        "creator_cap_minor": 2500,
    },
    lock_days=10,
)
BETA = _terms("beta", {"sale": {"rate": {"fixed_minor": 700}}}, lock_days=0)
TERMS = {"acme": ACME, "beta": BETA}


def _sale(name: str, affiliate: str, at: int) -> ConversionFact:
    return sale_fact(name, affiliate, at)


def _click(n: int, affiliate: str, at: int, *reasons: str) -> ClickItem:
    return ClickItem("acme", "2026-11", f"click-{n}", affiliate, at, reasons)


FIRST = Batch(
    conversions=[
        ("acme", "2026-11", _sale("a1", "anna", NOV_1 + 1 * HOUR)),
        ("acme", "2026-11", _sale("a2", "anna", NOV_1 + 2 * HOUR)),
        ("acme", "2026-11", _sale("a3", "anna", NOV_1 + 3 * HOUR)),
        ("acme", "2026-11", _sale("b1", "bob", NOV_1 + 4 * HOUR)),
        ("acme", "2026-12", _sale("a4", "anna", DEC_1 + 1 * HOUR)),
        ("beta", "2026-11", _sale("a5", "anna", NOV_1 + 19 * DAY)),
    ],
    clicks=[
        _click(1, "bob", NOV_1 + 5 * HOUR),
        _click(2, "bob", NOV_1 + 6 * HOUR),
        _click(3, "bob", NOV_1 + 7 * HOUR),
        _click(4, "bob", NOV_1 + 8 * HOUR, "duplicate"),
        _click(5, "bob", NOV_1 + 9 * HOUR, "bot"),
    ],
)
REFUND_AT = NOV_1 + 12 * DAY  # after a1's approval (Nov 11 01:00): a clawback
SECOND = Batch(
    refunds=[
        (
            "acme",
            "2026-11",
            RefundFact("rev-a1", "ev-rev-a1", "order-a1", 10_000, REFUND_AT, "conv-a1"),
        )
    ]
)


@dataclass
class Ledger:
    http: httpx.AsyncClient
    applied: list[Applied]
    bootstrap: str
    store: LedgerStore
    directory: CampaignDirectory

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def problem(self, path: str, status: int, **params: Any) -> dict[str, Any]:
        response = await self.http.get(path, params=params)
        assert response.status_code == status, response.text
        detail: dict[str, Any] = response.json()["detail"][0]
        return detail

    async def run(self, **body: Any) -> httpx.Response:
        return await self.http.post(
            "/v1/payouts/run", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )


@pytest.fixture
async def ledger(ledger_redis_url: str, infra: Any) -> AsyncIterator[Ledger]:
    redis = await connect_ready(ledger_redis_url)
    store = LedgerStore(redis)  # type: ignore[arg-type]
    applied = [
        await store.apply(batch, lambda cid: (TERMS[cid],), lambda cid: "EUR")
        for batch in (FIRST, SECOND)
    ]
    directory = directory_of(TERMS.values())
    try:
        async with payouts_http(
            store, directory, infra.kafka_bootstrap, TOKEN, lambda: DEC_1 + 20 * DAY
        ) as http:
            yield Ledger(http, applied, infra.kafka_bootstrap, store, directory)
    finally:
        await redis.aclose()  # type: ignore[union-attr]


def _balance(pending: int, approved: int, paid: int, reversed_: int) -> dict[str, Any]:
    return {
        "currency": "EUR",
        "pending_minor": pending,
        "approved_minor": approved,
        "paid_minor": paid,
        "reversed_minor": reversed_,
    }


@dataclass(frozen=True)
class BalanceCase:
    as_of: int
    expected: dict[str, Any]


BALANCE_CASES = [
    # Before anything is approved: all of anna's 3700 (acme Nov 2000, Dec 1000, beta 700)
    # is pending except beta (no lock, approved at its sale on Nov 20): nothing yet.
    BalanceCase(NOV_1, _balance(3700, 0, 0, 1000)),
    # 1 ms before a1's approval (Nov 11 01:00): still all pending.
    BalanceCase(NOV_1 + 10 * DAY + HOUR - 1, _balance(3700, 0, 0, 1000)),
    # At a1's approval: its 1000 is approved; the clawback (Nov 13) is still pending.
    BalanceCase(NOV_1 + 10 * DAY + HOUR, _balance(2700, 1000, 0, 1000)),
    # At the clawback, a2 and a3 approved (Nov 11 02:00, 03:00): acme Nov nets 2000.
    BalanceCase(REFUND_AT, _balance(1700, 2000, 0, 1000)),
    # Beta's sale approved at once on Nov 20; December's sale pending until Dec 11 01:00.
    BalanceCase(NOV_1 + 19 * DAY, _balance(1000, 2700, 0, 1000)),
    BalanceCase(DEC_1 + 10 * DAY + HOUR, _balance(0, 3700, 0, 1000)),
]


@pytest.mark.parametrize("case", BALANCE_CASES, ids=lambda c: str(c.as_of))
async def test_balance_splits_the_running_sums_at_as_of(ledger: Ledger, case: BalanceCase) -> None:
    answer = await ledger.get("/v1/creators/anna/balance", as_of=str(case.as_of))
    assert answer == {"affiliate_id": "anna", "as_of": case.as_of, "balances": [case.expected]}


async def test_bob_is_owed_his_sale_and_his_three_valid_clicks(ledger: Ledger) -> None:
    answer = await ledger.get("/v1/creators/bob/balance", as_of=str(DEC_1))
    assert answer["balances"] == [_balance(0, 1015, 0, 0)]


async def test_a_creator_without_a_ledger_is_404_on_affiliate_id(ledger: Ledger) -> None:
    for path in ("balance", "ledger", "statement"):
        problem = await ledger.problem(f"/v1/creators/nobody/{path}", 404)
        assert problem["field"] == "affiliate_id"


def _moves(postings: list[dict[str, Any]]) -> Counter[tuple[str, str, int]]:
    return Counter((p["order_id"], p["kind"], p["amount_minor"]) for p in postings)


ANNA_ACME_NOV = Counter(
    {
        ("order-a1", "accrual", 1000): 1,
        ("order-a1", "clawback", -1000): 1,
        ("order-a2", "accrual", 1000): 1,
        ("order-a3", "accrual", 1000): 1,
        ("order-a3", "cap_cut", -500): 1,
        ("order-a3", "cap_release", 500): 1,
    }
)


async def test_the_ledger_pages_postings_in_campaign_period_seq_order(ledger: Ledger) -> None:
    pages, cursor = [], None
    while True:
        params = {"limit": "3", "as_of": str(REFUND_AT)} | ({"cursor": cursor} if cursor else {})
        answer = await ledger.get("/v1/creators/anna/ledger", **params)
        pages.append(answer["postings"])
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    # 6 in acme November, 1 in acme December, 1 in beta November: pages of 3, 3 and 2.
    assert [len(page) for page in pages] == [3, 3, 2]
    postings = [p for page in pages for p in page]
    order = [(p["campaign_id"], p["period"], p["seq"]) for p in postings]
    assert order == sorted(order)
    assert len(set(order)) == 8
    whole = await ledger.get("/v1/creators/anna/ledger", as_of=str(REFUND_AT))
    assert whole["postings"] == postings
    assert whole["next_cursor"] is None
    assert _moves(postings[:6]) == ANNA_ACME_NOV
    assert _moves(postings[6:]) == Counter(
        {("order-a4", "accrual", 1000): 1, ("order-a5", "accrual", 700): 1}
    )
    clawback = next(p for p in postings if p["kind"] == "clawback")
    assert (clawback["approve_at"], clawback["status"]) == (REFUND_AT, "approved")
    assert clawback["component"] == "clawback:rev-a1"
    # December's sale is approved only on Dec 11 01:00.
    december = next(p for p in postings if p["period"] == "2026-12")
    assert (december["approve_at"], december["status"]) == (DEC_1 + 10 * DAY + HOUR, "pending")


async def test_the_ledger_filters_by_campaign_and_period_and_groups_lines(ledger: Ledger) -> None:
    answer = await ledger.get(
        "/v1/creators/anna/ledger", campaign_id="acme", period="2026-11", as_of=str(REFUND_AT)
    )
    assert _moves(answer["postings"]) == ANNA_ACME_NOV
    lines = {x["order_id"]: x for x in answer["lines"]}
    assert {o: x["amount_minor"] for o, x in lines.items()} == {
        "order-a1": 0,
        "order-a2": 1000,
        "order-a3": 1000,
    }
    assert lines["order-a1"]["explain"]["refunded_minor"] == 1000
    assert lines["order-a3"]["explain"]["cap_cuts"] == []  # cut, then released in full
    assert lines["order-a3"]["explain"]["gross_minor"] == 1000
    assert len(lines["order-a3"]["posting_ids"]) == 3


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class BadQuery:
    params: dict[str, str]
    field: str


BAD_QUERIES = [
    BadQuery({"limit": "0"}, "limit"),  # below the smallest page
    BadQuery({"limit": "1001"}, "limit"),  # above the largest page
    BadQuery({"limit": "ten"}, "limit"),
    BadQuery({"cursor": "not-a-cursor"}, "cursor"),
    BadQuery({"cursor": "WzEsMiwzXQ"}, "cursor"),  # base64 of [1,2,3]: not ours
    # Nested brackets made the JSON parser raise RecursionError, answered 500:
    # 5,000 of them (too long for a cursor) and 1,500 (short enough, nested too deep).
    BadQuery({"cursor": _b64(b"[" * 5000 + b"]" * 5000)}, "cursor"),
    BadQuery({"cursor": _b64(b"[" * 1500 + b"]" * 1500)}, "cursor"),
    BadQuery({"period": "2026-13"}, "period"),
    BadQuery({"period": "\u0662\u0660\u0662\u0666-\u0661\u0661"}, "period"),  # Arabic-Indic
    BadQuery({"period": "2026-11\n"}, "period"),
]


@pytest.mark.parametrize(
    "bad", BAD_QUERIES, ids=lambda b: f"{b.field}={str(list(b.params.values()))[:40]}"
)
async def test_a_bad_page_query_is_422_naming_the_field(ledger: Ledger, bad: BadQuery) -> None:
    problem = await ledger.problem("/v1/creators/anna/ledger", 422, **bad.params)
    assert problem["field"] == bad.field


async def test_the_largest_page_is_allowed(ledger: Ledger) -> None:
    answer = await ledger.get("/v1/creators/anna/ledger", limit="1000")
    assert len(answer["postings"]) == 8


async def test_a_statement_sums_one_period_of_every_campaign(ledger: Ledger) -> None:
    at = NOV_1 + 11 * DAY  # a1 and a2, a3 approved; the clawback not yet; beta not yet
    answer = await ledger.get("/v1/creators/anna/statement", period="2026-11", as_of=str(at))
    assert answer["period"] == "2026-11"
    assert _moves(answer["postings"]) == ANNA_ACME_NOV + Counter({("order-a5", "accrual", 700): 1})
    # acme 2000 (approved 3000, the clawback -1000 pending) + beta 700 (pending).
    assert answer["totals"] == [
        {"currency": "EUR", "amount_minor": 2700, "pending_minor": -300, "approved_minor": 3000}
    ]
    lines = {x["order_id"]: x for x in answer["lines"]}
    assert (lines["order-a1"]["pending_minor"], lines["order-a1"]["approved_minor"]) == (
        -1000,
        1000,
    )
    assert lines["order-a1"]["rule"].startswith("sale: fixed 1000")
    assert lines["order-a5"]["status"] == "pending"
    posted = {p["posting_id"] for p in answer["postings"]}
    assert {i for x in answer["lines"] for i in x["posting_ids"]} == posted
    assert answer["payouts"] == []


async def test_a_statement_of_one_campaign_and_an_unknown_campaign(ledger: Ledger) -> None:
    answer = await ledger.get(
        "/v1/creators/anna/statement", campaign_id="beta", period="2026-11", as_of=str(DEC_1)
    )
    assert answer["totals"] == [
        {"currency": "EUR", "amount_minor": 700, "pending_minor": 0, "approved_minor": 700}
    ]
    problem = await ledger.problem("/v1/creators/anna/statement", 404, campaign_id="nope")
    assert problem["field"] == "campaign_id"


@pytest.mark.parametrize(
    ("as_of", "period", "refused"),
    [
        ("0001-01-01T00:00:00Z", "0001-01", "before 1970-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59.999Z", "1969-12", "before 1970-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00Z", "1970-01", None),  # the first period's first millisecond
        ("0", "1970-01", None),
        ("-1", "1969-12", "before 1970-01-01T00:00:00Z"),  # epoch ms, not a malformed time
        ("9998-12-31T23:59:59.999Z", "9998-12", None),
        ("9999-01-01T00:00:00Z", "9999-01", "after 9998-12-31T23:59:59.999Z"),
    ],
)
async def test_a_statement_as_of_answers_only_periods_period_accepts(
    ledger: Ledger, as_of: str, period: str, refused: str | None
) -> None:
    """``?as_of=0001-01-01T00:00:00Z`` answered ``"period": "0001-01"``, a period that
    ``?period=0001-01`` refuses ("no such month")."""
    path = "/v1/creators/anna/statement"
    if refused is None:
        answer = await ledger.get(path, as_of=as_of)
        assert answer["period"] == period
        assert (await ledger.get(path, period=period))["period"] == period
    else:
        problem = await ledger.problem(path, 422, as_of=as_of)
        assert (problem["field"], problem["reason"].startswith(refused)) == ("as_of", True)


async def test_campaign_kpis_come_from_the_counters(ledger: Ledger) -> None:
    row = await ledger.get("/v1/kpis/campaigns/acme", period="2026-11")
    assert row == {
        "campaign_id": "acme",
        "period": "2026-11",
        "currency": "EUR",
        "clicks": 4,  # non-bot: 3 valid and 1 duplicate
        "unique_clicks": 3,
        "valid_clicks": 3,
        "flagged_clicks": 2,  # the duplicate and the bot
        "flagged_by_reason": {
            "bot": 1,
            "duplicate": 1,
            "ip_duplicate": 0,
            "rate": 0,
            "embedded": 0,
        },
        "conversions": 4,
        "conversion_rate": 1.333333,
        "revenue_minor": 40_000,
        "refunds_minor": 10_000,
        "net_revenue_minor": 30_000,
        "commission_minor": 3015,  # anna 2000, bob 1000 + 3 clicks at 5
        "epc_minor": 754,  # 3015 / 4 clicks, half up
        "cpa_minor": 754,
        "aov_minor": 10_000,
        "roi": 8.950249,  # (30000 - 3015) / 3015
        "new_customer_share": 0.0,
        # No terms with a review: nothing held, approved or declined.
        "reviews_held": 0,
        "reviews_approved": 0,
        "reviews_declined": 0,
        # No content: reach is 0, and every ratio over it is none, never an error.
        "contents": 0,
        "views": 0,
        "impressions": 0,
        "engagement": 0,
        "engagement_by_kind": {"likes": 0, "comments": 0, "shares": 0, "saves": 0},
        "followers": 0,
        "engagement_rate": None,
        "ctr": None,
        "rpm_minor": None,
        "emv_minor": None,
        "engagement_pay_minor": 0,
        "cost_per_engagement_minor": None,
        # Facts without the rule that won them (as stored before it was kept).
        "conversions_by_rule": {
            "click_id": 0,
            "cookie": 0,
            "coupon": 0,
            "livestream": 0,
            "survey": 0,
        },
    }
    every_period = await ledger.get("/v1/kpis/campaigns/acme")
    assert (every_period["conversions"], every_period["commission_minor"]) == (5, 4015)


async def test_series_and_creator_kpis_come_from_the_counters(ledger: Ledger) -> None:
    series = await ledger.get("/v1/kpis/campaigns/acme/series", period="2026-11")
    by_day = {
        b["day"]: (b["clicks"], b["conversions"], b["commission_minor"]) for b in series["buckets"]
    }
    # The clawback counts on the refund's day.
    assert by_day == {"2026-11-01": (4, 4, 4015), "2026-11-13": (0, 0, -1000)}
    anna = await ledger.get("/v1/kpis/creators/anna", campaign_id="acme")
    assert (anna["conversions"], anna["revenue_minor"], anna["refunds_minor"]) == (
        4,
        40_000,
        10_000,
    )
    assert anna["commission_minor"] == 3000
    rows = await ledger.get("/v1/kpis/creators", campaign_id="acme", period="2026-11")
    assert {r["affiliate_id"]: r["commission_minor"] for r in rows["creators"]} == {
        "anna": 2000,
        "bob": 1015,
    }


async def test_a_payout_run_of_one_campaign_pays_approved_minus_paid_once(ledger: Ledger) -> None:
    at = DEC_1 + 12 * DAY
    first = await ledger.run(campaign_id="acme", as_of=at)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["period"], body["campaign_id"]) == ("2026-12", "acme")
    paid = {
        (r["affiliate_id"], r["campaign_id"]): (r["status"], r["amount_minor"])
        for r in body["results"]
    }
    assert paid == {("anna", "acme"): ("paid", 3000), ("bob", "acme"): ("paid", 1015)}
    again = (await ledger.run(campaign_id="acme", as_of=at)).json()
    assert {r["status"] for r in again["results"]} == {"already_paid"}
    assert [r["payout_id"] for r in again["results"]] == [r["payout_id"] for r in body["results"]]
    balance = await ledger.get("/v1/creators/anna/balance", as_of=str(at))
    assert balance["balances"] == [_balance(0, 700, 3000, 1000)]  # beta not paid yet
    beta = (await ledger.run(campaign_id="beta", as_of=at)).json()
    assert [(r["affiliate_id"], r["status"], r["amount_minor"]) for r in beta["results"]] == [
        ("anna", "paid", 700)
    ]
    everything = (await ledger.run(as_of=at)).json()
    assert everything["period"] == "2026-12"
    assert {r["status"] for r in everything["results"]} == {"already_paid"}
    balance = await ledger.get("/v1/creators/anna/balance", as_of=str(at))
    assert balance["balances"] == [_balance(0, 0, 3700, 1000)]
    statement = await ledger.get("/v1/creators/anna/statement", period="2026-12")
    assert sorted((p["campaign_id"], p["amount_minor"]) for p in statement["payouts"]) == [
        ("acme", 3000),
        ("beta", 700),
    ]
    issued = [
        e
        for e in await read_topic(ledger.bootstrap, "payouts", idle_s=1.0)
        if isinstance(e, PayoutIssued) and e.payout_id in {r["payout_id"] for r in body["results"]}
    ]
    anna_issued = next(e for e in issued if e.affiliate_id == "anna")
    assert anna_issued.amount_minor == 3000
    acme = await ledger.get("/v1/creators/anna/ledger", campaign_id="acme")
    assert set(anna_issued.line_ids) == {p["line_id"] for p in acme["postings"]}  # a1 to a4


async def test_a_later_run_nets_what_was_paid(ledger: Ledger) -> None:
    # Paid at Nov 12 (a1, a2, a3 approved: 3000), the clawback on Nov 13 leaves -1000.
    first = (await ledger.run(campaign_id="acme", period="2026-11", as_of=NOV_1 + 11 * DAY)).json()
    anna = next(r for r in first["results"] if r["affiliate_id"] == "anna")
    assert (anna["status"], anna["amount_minor"], first["period"]) == ("paid", 3000, "2026-11")
    later = (await ledger.run(campaign_id="acme", period="2026-12", as_of=REFUND_AT)).json()
    anna = next(r for r in later["results"] if r["affiliate_id"] == "anna")
    assert (anna["status"], anna["amount_minor"]) == ("nothing_due", -1000)
    balance = await ledger.get("/v1/creators/anna/balance", as_of=str(REFUND_AT))
    assert balance["balances"] == [_balance(1700, -1000, 3000, 1000)]


async def test_a_run_as_of_before_a_clawback_never_pays_the_clawed_back_money_again(
    ledger: Ledger,
) -> None:
    """A run as of a past time paid what was approved then less everything paid since,
    which already netted the later clawback: the clawed-back 1000 was paid again."""
    now = DEC_1 + 4 * DAY  # a1's clawback (Nov 13) taken; December's sale still pending
    async with payouts_http(
        ledger.store, ledger.directory, ledger.bootstrap, TOKEN, lambda: now
    ) as http:

        async def anna(**body: Any) -> tuple[str, int]:
            answer = await http.post("/v1/payouts/run", json=body)
            assert answer.status_code == 200, answer.text
            result = next(r for r in answer.json()["results"] if r["affiliate_id"] == "anna")
            return result["status"], result["amount_minor"]

        assert await anna(campaign_id="acme", period="2026-11") == ("paid", 2000)
        # As of Nov 12, before the clawback: 3000 was approved then, 2000 is now.
        assert await anna(campaign_id="acme", period="2026-10", as_of=NOV_1 + 11 * DAY) == (
            "nothing_due",
            0,
        )
        balance = await http.get("/v1/creators/anna/balance")
    assert balance.status_code == 200, balance.text
    (eur,) = balance.json()["balances"]
    # acme nets to nothing left to pay; beta's 700 (approved Nov 20) was never run.
    assert (eur["approved_minor"], eur["paid_minor"]) == (700, 2000)


async def test_runs_at_once_under_different_period_names_pay_a_balance_once(
    ledger: Ledger,
) -> None:
    at = DEC_1 + 12 * DAY
    names = ["2026-09", "2026-10", "2026-11", "2026-12"]
    answers = await asyncio.gather(
        *(ledger.run(campaign_id="acme", period=name, as_of=at) for name in names)
    )
    assert [a.status_code for a in answers] == [200] * len(names), [a.text for a in answers]
    paid: Counter[str] = Counter()
    for answer in answers:
        for r in answer.json()["results"]:
            if r["status"] == "paid":
                paid[r["affiliate_id"]] += r["amount_minor"]
    # Approved at Dec 13 in acme: anna 3000, bob 1015; each paid once, whichever run won.
    assert paid == {"anna": 3000, "bob": 1015}
    balance = await ledger.get("/v1/creators/anna/balance", as_of=str(at))
    assert balance["balances"] == [_balance(0, 700, 3000, 1000)]  # beta not paid yet


@pytest.mark.parametrize(
    ("ahead_ms", "status"),
    [
        (DEFAULT_CLOCK_SKEW_MS, 200),  # the clock-skew allowance: pays what is approved now
        # one ms more: it would pay, today, commission still in its return window
        (DEFAULT_CLOCK_SKEW_MS + 1, 422),
    ],
)
async def test_a_payout_run_pays_nothing_approved_only_after_now(
    ledger: Ledger, ahead_ms: int, status: int
) -> None:
    now = DEC_1 + 20 * DAY  # the app's clock
    response = await ledger.run(as_of=now + ahead_ms)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["detail"][0]["field"] == "as_of"
        balance = await ledger.get("/v1/creators/anna/balance")
        assert balance["balances"][0]["paid_minor"] == 0


@pytest.mark.parametrize(
    ("period", "reason"),
    [
        ("2026-13", "no such month"),
        ("2026-W54", "no such ISO week"),
        # Other scripts' digits read as 2026-12: paid under a name no query could name.
        ("\u0662\u0660\u0662\u0666-\u0661\u0662", "use YYYY-MM"),  # Arabic-Indic
        ("\uff12\uff10\uff12\uff16-\uff11\uff12", "use YYYY-MM"),  # fullwidth
        ("\u0662\u0660\u0662\u0666-W\u0664\u0669", "use YYYY-MM"),  # an ISO week
        # "$" matched before a final newline
        ("2026-12\n", "use YYYY-MM"),
        ("2026-W49\n", "use YYYY-MM"),
    ],
    ids=ascii,
)
async def test_a_payout_run_of_a_malformed_period_is_422_and_pays_nothing(
    ledger: Ledger, period: str, reason: str
) -> None:
    response = await ledger.run(period=period, as_of=DEC_1 + 12 * DAY)
    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert problem["field"] == "period"
    assert problem["reason"].startswith(repr(period)), problem
    assert reason in problem["reason"]
    balance = await ledger.get("/v1/creators/anna/balance")
    assert balance["balances"][0]["paid_minor"] == 0


# Campaign gamma is paid by the ISO week (EUR, 500 per sale, no lock): anna sells on
# Monday Dec 7 (2026-W50).
GAMMA = _terms("gamma", {"period": "week", "sale": {"rate": {"fixed_minor": 500}}}, lock_days=0)


async def _weekly_campaign(ledger: Ledger) -> None:
    ledger.directory.apply(
        CampaignTermsPublished(
            event_id="gamma", occurred_at=0, campaign_id="gamma", versions=(GAMMA,)
        )
    )
    sale = ("gamma", "2026-W50", _sale("g1", "anna", DEC_1 + 6 * DAY))
    await ledger.store.apply(Batch(conversions=[sale]), lambda cid: (GAMMA,), lambda cid: "EUR")


@pytest.mark.parametrize(
    ("campaign", "period", "reason"),
    [
        (
            "acme",
            "2026-W50",
            "'2026-W50' is an ISO week (YYYY-Www), but campaign acme is paid by the month (its"
            " terms at as_of): name a month (YYYY-MM), such as 2026-12",
        ),
        (
            "gamma",
            "2026-12",
            "'2026-12' is a month (YYYY-MM), but campaign gamma is paid by the week (its terms"
            " at as_of): name an ISO week (YYYY-Www), such as 2026-W50",
        ),
        ("acme", "2026-12", None),  # each campaign's own cadence: paid
        ("gamma", "2026-W50", None),
    ],
)
async def test_a_run_of_one_campaign_under_a_period_of_the_other_cadence_is_422(
    ledger: Ledger, campaign: str, period: str, reason: str | None
) -> None:
    """A payout is recorded under its period's name: a monthly campaign's payout recorded
    under a week (2027-W01) named a period its ledger, statements and reports never have."""
    await _weekly_campaign(ledger)

    response = await ledger.run(campaign_id=campaign, period=period, as_of=DEC_1 + 12 * DAY)

    balance = await ledger.get("/v1/creators/anna/balance")
    if reason is None:
        assert response.status_code == 200, response.text
        assert {r["period"] for r in response.json()["results"]} == {period}
        assert balance["balances"][0]["paid_minor"] > 0
    else:
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == [{"field": "period", "reason": reason}]
        assert balance["balances"][0]["paid_minor"] == 0


@pytest.mark.parametrize("path", ["statement", "ledger"])
async def test_a_period_of_a_cadence_the_campaign_never_had_is_422_as_for_a_run(
    ledger: Ledger, path: str
) -> None:
    """A month of a weekly campaign was answered 200 with no lines, which a creator reads
    as nothing earned; a payout run of the same names the cadence."""
    await _weekly_campaign(ledger)

    problem = await ledger.problem(
        f"/v1/creators/anna/{path}", 422, campaign_id="gamma", period="2026-12"
    )

    assert problem["field"] == "period"
    assert problem["reason"].startswith(
        "'2026-12' is a month (YYYY-MM), but campaign gamma is paid by the week: name an ISO"
        " week (YYYY-Www), such as 2026-W"
    )
    weekly = await ledger.get(f"/v1/creators/anna/{path}", campaign_id="gamma", period="2026-W50")
    assert weekly["period"] == "2026-W50"


@pytest.mark.parametrize(
    ("period", "monthly", "weekly"),
    [
        ("2026-W50", "2026-12", "2026-W50"),  # a week: the monthly campaigns' month at as_of
        ("2026-11", "2026-11", "2026-W50"),  # a month: the weekly campaign's week at as_of
        (None, "2026-12", "2026-W50"),  # none: each its own at as_of
    ],
)
async def test_a_run_of_every_campaign_pays_each_under_a_period_of_its_own_cadence(
    ledger: Ledger, period: str | None, monthly: str, weekly: str
) -> None:
    await _weekly_campaign(ledger)
    body: dict[str, Any] = {"as_of": DEC_1 + 12 * DAY} | ({"period": period} if period else {})

    response = await ledger.run(**body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["period"] == (period or "2026-12")
    paid = {(r["campaign_id"], r["period"]) for r in answer["results"]}
    assert paid == {("acme", monthly), ("beta", monthly), ("gamma", weekly)}
    statement = await ledger.get("/v1/creators/anna/statement", campaign_id="gamma", period=weekly)
    assert [(p["campaign_id"], p["amount_minor"]) for p in statement["payouts"]] == [("gamma", 500)]


async def test_a_payout_run_of_an_unknown_campaign_is_404(ledger: Ledger) -> None:
    response = await ledger.run(campaign_id="nope")
    assert response.status_code == 404
    assert response.json()["detail"][0]["field"] == "campaign_id"


async def test_metrics_count_what_the_postings_add_and_each_cap_cut(ledger: Ledger) -> None:
    metrics = PayoutsMetrics()
    for applied in ledger.applied:
        metrics.applied(applied, [], 0)

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    commission = "afflux_commission_minor_total"
    # Increases only, by posting kind: the clawback (-1000) and the cut (-500) add nothing.
    assert value(commission, campaign="acme", currency="EUR", kind="accrual") == 5000
    assert value(commission, campaign="acme", currency="EUR", kind="click_pay") == 15
    assert value(commission, campaign="acme", currency="EUR", kind="cap_release") == 500
    assert value(commission, campaign="beta", currency="EUR", kind="accrual") == 700
    assert value(commission, campaign="acme", currency="EUR", kind="clawback") is None
    assert value("afflux_cap_cuts_total", campaign="acme", scope="creator") == 1


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"campaign_id":"beta","campaign_id":"acme"}'),
        (None, b'{"campaign_id":"beta","campaign_id":"acme"}'),  # FastAPI reads it as JSON
        ("application/json; charset=utf-8", b'{"as_of":1,"campaign_id":"acme","as_of":2}'),
    ],
)
async def test_a_payout_run_naming_a_field_twice_is_refused_and_pays_nothing(
    ledger: Ledger, content_type: str | None, body: bytes
) -> None:
    """Parsers disagree on which of two values counts: a run that an approval tool read
    as campaign beta must not pay campaign acme."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await ledger.http.post("/v1/payouts/run", content=body, headers=headers)

    assert response.status_code == 400, response.text
    (problem,) = response.json()["detail"]
    assert problem["field"] == "body"
    assert "appears twice in one object" in problem["reason"]
    balance = await ledger.get("/v1/creators/anna/balance")
    assert balance["balances"][0]["paid_minor"] == 0


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"campaign": "acme"}, "campaign", "unknown field"),  # ignored, it paid every campaign
        ({"as_of": True}, "as_of", "must be epoch milliseconds"),  # read as 1 ms
        ({"as_of": 1.5e12}, "as_of", "must be epoch milliseconds"),
        ({"as_of": "9" * 5000}, "as_of", "not a time: longer than 64 characters"),
        ({"period": 202612}, "period", "Input should be a valid string"),
        ({"as_of": -1}, "as_of", "before 1970-01-01T00:00:00Z"),
    ],
)
async def test_a_payout_run_with_a_field_it_cannot_take_is_422_and_pays_nothing(
    ledger: Ledger, body: dict[str, Any], field: str, reason: str
) -> None:
    response = await ledger.run(**body)

    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any(p["field"] == field and p["reason"].startswith(reason) for p in problems), problems
    assert not any("Exceeds the limit" in p["reason"] for p in problems)
    balance = await ledger.get("/v1/creators/anna/balance")
    assert balance["balances"][0]["paid_minor"] == 0


async def test_a_statement_without_a_period_is_the_current_week_of_a_weekly_only_creator(
    ledger: Ledger,
) -> None:
    """A creator paid only by weekly campaigns opened an empty statement (the current
    month, a period none of its campaigns has) while money was pending; one in monthly
    campaigns too still gets the month."""
    await _weekly_campaign(ledger)
    sale = ("gamma", "2026-W52", _sale("g-wendy", "wendy", DEC_1 + 20 * DAY - 1))
    await ledger.store.apply(Batch(conversions=[sale]), lambda cid: (GAMMA,), lambda cid: "EUR")

    weekly_only = await ledger.get("/v1/creators/wendy/statement")
    mixed = await ledger.get("/v1/creators/anna/statement")

    # no lock: approved at once
    assert (weekly_only["period"], weekly_only["totals"][0]["approved_minor"]) == ("2026-W52", 500)
    assert mixed["period"] == "2026-12"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/creators/anna/balance",
        "/v1/creators/anna/ledger",
        "/v1/creators/anna/statement",
        "/v1/kpis/creators/anna",
        "/v1/kpis/campaigns/acme",
        "/v1/campaigns/acme/orders/order-a1/postings?affiliate_id=anna",
    ],
)
async def test_money_reads_answer_503_while_the_ledger_is_rebuilt_or_replayed(
    ledger: Ledger, path: str
) -> None:
    """A half-replayed ledger answered a paid creator 404, then a debt that was none."""
    redis, keys = ledger.store.redis, ledger.store.keys
    await redis.set(keys.ledger("rebuilding"), "1")
    rebuilding = await ledger.http.get(path)
    await redis.delete(keys.ledger("rebuilding"))
    # The replay's mark: the topics' ends it must reach; the stored positions are behind.
    await redis.hset(keys.ledger("replay-until"), "conversions|0", 10**9)
    replaying = await ledger.http.get(path)
    stranger = await ledger.http.get(path, headers={"authorization": "Bearer nope"})
    await redis.delete(keys.ledger("replay-until"))
    done = await ledger.http.get(path)

    assert rebuilding.status_code == 503, rebuilding.text
    assert "being rebuilt" in rebuilding.json()["detail"][0]["reason"]
    assert rebuilding.headers["retry-after"] == "30"
    assert replaying.status_code == 503, replaying.text
    assert "replaying its topics after a rebuild" in replaying.json()["detail"][0]["reason"]
    assert "conversions|0" not in replaying.text  # the replay's partitions are the operator's
    assert stranger.status_code == 401, stranger.text  # authenticated first
    assert done.status_code == 200, done.text
