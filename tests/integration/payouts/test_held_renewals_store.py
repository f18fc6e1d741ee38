"""Renewals of a subscription whose first order is held for review, through the real
journal store and the payouts API's payout runs, on a plain Redis and a Redis Cluster.

Campaign ``p-rn`` (EUR, no lock): 10 % per sale, 20 % per renewal, self-referrals held.
Creators ``cr-yes`` and ``cr-no`` each buy a 100000 subscription with their own email
(held) in November and renew it while it waits, in November and in December (another
campaign-period). Nothing of either is approved, and a payout run pays no one. Then the
merchant approves ``cr-yes``'s first order and declines ``cr-no``'s: ``cr-yes``'s
renewals are approved with it; ``cr-no``'s are reversed with the decline's reason, and its
third renewal, arriving after the decline, earns nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from ledger_app import (
    DAY,
    HOUR,
    NOV_1,
    first_version,
    ledger_and_http,
    reviewed_batch,
)

from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.journal.compaction import closes_at
from afflux.shared.core.journal.review_lines import ReviewFact
from afflux.shared.core.review import HELD_UNTIL

pytestmark = pytest.mark.integration

DEC_1 = NOV_1 + 30 * DAY
DECIDED_AT = DEC_1 + 5 * DAY
TOKEN = "held-renewals-admin-token"
CAMPAIGN, PERIOD = "p-rn", "2026-11"
TERMS = first_version(
    {
        "campaign_id": CAMPAIGN,
        "merchant_id": "merchant-acme",
        "currency": "EUR",
        "lock_days": 0,
        "plan": {
            "sale": {"rate": {"percent": "10"}},
            "recurring": {"rate": {"percent": "20"}, "max_renewals": 12},
        },
        "review": {
            "hold_on": ["self_referral"],
            "creator_email_hashes": {"cr-yes": "h-yes", "cr-no": "h-no"},
        },
    }
)


def _first_order(creator: str) -> ConversionFact:
    return ConversionFact(
        conversion_id=f"conv-{creator}",
        event_id=f"ev-{creator}",
        order_id=f"sub-{creator}",
        affiliate_id=creator,
        kind="sale",
        action=None,
        amount_minor=100_000,
        currency="EUR",
        new_customer=False,
        occurred_at=NOV_1 + HOUR,
        terms_version=1,
        risk_signals=("self_referral",),
    )


def _renewal(creator: str, n: int, at: int) -> ConversionFact:
    return ConversionFact(
        conversion_id=f"conv-{creator}-r{n}",
        event_id=f"ev-{creator}-r{n}",
        order_id=f"sub-{creator}:renewal-{n}",
        affiliate_id=creator,
        kind="renewal",
        action=None,
        amount_minor=100_000,
        currency="EUR",
        new_customer=False,
        occurred_at=at,
        terms_version=1,
        renewal_number=n,
        first_order_id=f"sub-{creator}",
    )


def _period(at: int) -> str:
    return PERIOD if at < DEC_1 else "2026-12"


def _batch(*conversions: ConversionFact) -> Batch:
    return reviewed_batch(CAMPAIGN, _period, *conversions)


HELD = _batch(
    *(_first_order(c) for c in ("cr-yes", "cr-no")),
    *(_renewal(c, 1, NOV_1 + 2 * HOUR) for c in ("cr-yes", "cr-no")),
    *(_renewal(c, 2, DEC_1 + 2 * HOUR) for c in ("cr-yes", "cr-no")),
)
DECIDED = Batch(
    reviews=[
        (
            CAMPAIGN,
            PERIOD,
            ReviewFact(
                f"conv-{creator}",
                f"review-conv-{creator}",
                decision,
                "self purchase",
                "merchant:merchant-acme",
                DECIDED_AT,
            ),
        )
        for creator, decision in (("cr-yes", "approve"), ("cr-no", "decline"))
    ]
)
LATE_RENEWAL = _batch(_renewal("cr-no", 3, DECIDED_AT + DAY))


@dataclass
class Ledger:
    http: httpx.AsyncClient
    store: LedgerStore

    async def apply(self, batch: Batch) -> None:
        await self.store.apply(batch, lambda cid: (TERMS,), lambda cid: "EUR")

    async def run(self, as_of: int) -> dict[str, tuple[str, int]]:
        answer = await self.http.post(
            "/v1/payouts/run", json={"campaign_id": CAMPAIGN, "period": "2026-12", "as_of": as_of}
        )
        assert answer.status_code == 200, answer.text
        return {
            r["affiliate_id"]: (r["status"], r["amount_minor"]) for r in answer.json()["results"]
        }

    async def postings(self, affiliate: str) -> list[dict[str, Any]]:
        answer = await self.http.get(f"/v1/creators/{affiliate}/ledger")
        assert answer.status_code == 200, answer.text
        return list(answer.json()["postings"])

    async def renewal_postings(self, affiliate: str) -> list[tuple[str, int, int]]:
        return [
            (p["kind"], p["amount_minor"], p["approve_at"])
            for p in await self.postings(affiliate)
            if p["line_kind"] == "renewal"
        ]


@pytest.fixture
async def ledger(ledger_redis_url: str, infra: Any) -> AsyncIterator[Ledger]:
    async with ledger_and_http(
        ledger_redis_url, [TERMS], infra.kafka_bootstrap, TOKEN, lambda: DEC_1 + 10 * DAY
    ) as (store, http):
        yield Ledger(http, store)


async def test_renewals_of_held_first_orders_wait_for_and_follow_their_decision(
    ledger: Ledger,
) -> None:
    await ledger.apply(HELD)
    # Held: the first order and its renewals pending for good; a run pays no one.
    for creator in ("cr-yes", "cr-no"):
        assert await ledger.renewal_postings(creator) == [("accrual", 20_000, HELD_UNTIL)] * 2
    run = await ledger.run(DECIDED_AT - DAY)
    assert [status for status, _ in run.values() if status == "paid"] == []

    await ledger.apply(DECIDED)
    await ledger.apply(LATE_RENEWAL)
    # Approved: the renewal moves to the decision. Declined: reversed with the reason,
    # and the renewal after the decline earns nothing.
    moved_to_the_decision = [
        ("accrual", 20_000, DECIDED_AT),
        ("accrual", 20_000, HELD_UNTIL),
        ("moved", -20_000, HELD_UNTIL),
    ]
    assert sorted(await ledger.renewal_postings("cr-yes")) == sorted(moved_to_the_decision * 2)
    no = [p for p in await ledger.postings("cr-no") if p["line_kind"] == "renewal"]
    assert sorted((p["kind"], p["amount_minor"]) for p in no) == [
        ("accrual", 20_000),
        ("accrual", 20_000),
        ("review_decline", -20_000),
        ("review_decline", -20_000),
    ]
    for p in no:
        if p["kind"] == "review_decline":
            assert "first order sub-cr-no" in p["rule"]
            assert "self purchase" in p["rule"]

    run = await ledger.run(DEC_1 + 10 * DAY)
    assert run.get("cr-yes") == ("paid", 50_000)  # the sale's 10000, two renewals of 20000
    assert run.get("cr-no", ("nothing_due", 0)) == ("nothing_due", 0)


async def test_a_first_order_held_after_its_renewals_period_was_compacted_still_applies(
    ledger: Ledger,
) -> None:
    # The renewal's period is read and compacted before its first order's conversion.
    await ledger.apply(_batch(_renewal("cr-late", 1, DEC_1 + HOUR)))
    compacted = ledger.store.keys.period(CAMPAIGN, "2026-12", "compacted")
    await ledger.store.redis.hset(compacted, "at", str(DEC_1 + 9 * DAY))
    # Its statement is final: the first order's hold is posted, the renewal stays as it was
    # (a consumer that has not read the period yet, as after a restart).
    fresh = LedgerStore(ledger.store.redis)
    await fresh.apply(_batch(_first_order("cr-late")), lambda cid: (TERMS,), lambda cid: "EUR")
    kinds = [(p["line_kind"], p["approve_at"]) for p in await ledger.postings("cr-late")]
    assert ("sale", HELD_UNTIL) in kinds
    assert ("renewal", DEC_1 + HOUR) in kinds


class _StopsBeforeFollowing(LedgerStore):
    """A consumer that stops after the first order's step is written, before the later
    periods follow it."""

    async def _follow(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("stopped before the renewals' periods followed")


async def test_a_decision_replayed_after_a_stop_still_reaches_renewals_in_later_periods(
    ledger: Ledger,
) -> None:
    await ledger.apply(HELD)
    stopping = _StopsBeforeFollowing(ledger.store.redis)
    with pytest.raises(ConnectionError):
        await stopping.apply(DECIDED, lambda cid: (TERMS,), lambda cid: "EUR")
    # The batch again, from the same offsets: its facts are known, nothing new is stepped.
    replaying = LedgerStore(ledger.store.redis)
    await replaying.apply(DECIDED, lambda cid: (TERMS,), lambda cid: "EUR")
    december = [
        (p["kind"], p["amount_minor"])
        for p in await ledger.postings("cr-no")
        if p["line_kind"] == "renewal" and p["order_id"] == "sub-cr-no:renewal-2"
    ]
    assert december == [("accrual", 20_000), ("review_decline", -20_000)]


async def test_the_periods_a_first_orders_renewals_are_in_expire_after_the_retention(
    ledger: Ledger,
) -> None:
    """One set per subscription stayed for good; it goes as its periods' facts go."""
    await ledger.apply(HELD)
    store = ledger.store
    key = store.keys.campaign(CAMPAIGN, "renewals:sub-cr-yes")
    assert await store.redis.smembers(key) == {b"2026-11", b"2026-12"}
    latest_end = max(closes_at("2026-12", (TERMS,), 0), int(time.time() * 1000))
    # The December renewal's write, counted from that period's close (or from now).
    # Now is read before asking Redis, whose clock then is no earlier: what is left
    # by this clock is an upper bound on what Redis answers.
    asked_at = int(time.time() * 1000)
    ttl = await store.redis.pttl(key)
    left = latest_end + store.retention_ms - asked_at
    assert left - 60_000 <= ttl <= left, ttl
