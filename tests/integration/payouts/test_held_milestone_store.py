"""Self-referrals held for review that reach a milestone, through the real journal store
and the payouts API's payout runs, on a plain Redis and a Redis Cluster.

Campaign ``p-ms`` (EUR, no lock): 1 % per sale, a 50000 bonus at 3 net sales, a 7000 base
fee, the creators' agency ``ag-ms`` at 20 % on top, self-referrals held. Creators
``cr-yes`` and ``cr-no`` each buy three 100 orders with their own email (held). While
held, nothing but the sales' own pending lines is posted: no bonus, no base fee, and a
payout run pays no one. Then the merchant approves ``cr-yes``'s three and declines
``cr-no``'s: ``cr-yes`` earns the bonus and the base fee from the approval on, paid once
by the next run with the agency's override; ``cr-no`` never earns either.
"""

from __future__ import annotations

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
)

from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.journal.review_lines import ReviewFact
from afflux.shared.core.review import HELD_UNTIL

pytestmark = pytest.mark.integration

DEC_1 = NOV_1 + 30 * DAY
DECIDED_AT = NOV_1 + 6 * DAY
TOKEN = "held-milestone-admin-token"
CAMPAIGN, PERIOD = "p-ms", "2026-11"
TERMS = first_version(
    {
        "campaign_id": CAMPAIGN,
        "merchant_id": "merchant-acme",
        "currency": "EUR",
        "lock_days": 0,
        "plan": {
            "sale": {"rate": {"percent": "1"}},
            "milestones": [{"at_sales": 3, "bonus_minor": 50_000}],
            "base_fee_minor": 7_000,
        },
        "overrides": {
            "agencies": {
                "cr-yes": {"agency_id": "ag-ms", "share_percent": "20"},
                "cr-no": {"agency_id": "ag-ms", "share_percent": "20"},
            }
        },
        "review": {
            "hold_on": ["self_referral"],
            "creator_email_hashes": {"cr-yes": "h-yes", "cr-no": "h-no"},
        },
    }
)


def _self_purchase(creator: str, n: int) -> ConversionFact:
    return ConversionFact(
        conversion_id=f"conv-{creator}-{n}",
        event_id=f"ev-{creator}-{n}",
        order_id=f"order-{creator}-{n}",
        affiliate_id=creator,
        kind="sale",
        action=None,
        amount_minor=100,
        currency="EUR",
        new_customer=False,
        occurred_at=NOV_1 + n * HOUR,
        terms_version=1,
        risk_signals=("self_referral",),
    )


SALES = [_self_purchase(creator, n) for creator in ("cr-yes", "cr-no") for n in (1, 2, 3)]
HELD = Batch(
    conversions=[(CAMPAIGN, PERIOD, c) for c in SALES],
    review_index={
        c.conversion_id: [CAMPAIGN, PERIOD, c.order_id, c.affiliate_id, c.occurred_at]
        for c in SALES
    },
)
DECIDED = Batch(
    reviews=[
        (
            CAMPAIGN,
            PERIOD,
            ReviewFact(
                c.conversion_id,
                f"review-{c.conversion_id}",
                "approve" if c.affiliate_id == "cr-yes" else "decline",
                "own order",
                "merchant:merchant-acme",
                DECIDED_AT,
            ),
        )
        for c in SALES
    ]
)


@dataclass
class Ledger:
    http: httpx.AsyncClient
    store: LedgerStore

    async def apply(self, batch: Batch) -> None:
        await self.store.apply(batch, lambda cid: (TERMS,), lambda cid: "EUR")

    async def run(self, period: str, as_of: int) -> dict[str, tuple[str, int]]:
        answer = await self.http.post(
            "/v1/payouts/run", json={"campaign_id": CAMPAIGN, "period": period, "as_of": as_of}
        )
        assert answer.status_code == 200, answer.text
        return {
            r["affiliate_id"]: (r["status"], r["amount_minor"]) for r in answer.json()["results"]
        }

    async def balance(self, affiliate: str, as_of: int) -> dict[str, Any]:
        answer = await self.http.get(
            f"/v1/creators/{affiliate}/balance", params={"as_of": str(as_of)}
        )
        assert answer.status_code == 200, answer.text
        balances = answer.json()["balances"] or [{"currency": "EUR", **_balance(0, 0, 0)}]
        [balance] = balances
        return {k: v for k, v in balance.items() if k != "currency"}

    async def postings(self, affiliate: str) -> list[dict[str, Any]]:
        answer = await self.http.get(f"/v1/creators/{affiliate}/ledger")
        assert answer.status_code == 200, answer.text
        return list(answer.json()["postings"])


@pytest.fixture
async def ledger(ledger_redis_url: str, infra: Any) -> AsyncIterator[Ledger]:
    async with ledger_and_http(
        ledger_redis_url, [TERMS], infra.kafka_bootstrap, TOKEN, lambda: DEC_1 + 10 * DAY
    ) as (store, http):
        yield Ledger(http, store)


def _balance(pending: int, approved: int, paid: int) -> dict[str, int]:
    return {
        "pending_minor": pending,
        "approved_minor": approved,
        "paid_minor": paid,
        "reversed_minor": 0,
    }


async def test_held_self_referrals_reaching_a_milestone_pay_nothing_until_approved(
    ledger: Ledger,
) -> None:
    await ledger.apply(HELD)
    # Held: each sale's 1 pending for good; no bonus, no base fee, nothing to the agency.
    before = NOV_1 + 5 * DAY
    for creator in ("cr-yes", "cr-no"):
        postings = await ledger.postings(creator)
        assert [(p["kind"], p["amount_minor"], p["approve_at"]) for p in postings] == [
            ("accrual", 1, HELD_UNTIL)
        ] * 3
        assert await ledger.balance(creator, before) == _balance(3, 0, 0)
    assert await ledger.balance("ag-ms", before) == _balance(0, 0, 0)
    run = await ledger.run("2026-11", before)
    assert [status for status, _ in run.values() if status == "paid"] == []

    # Decided: cr-yes's three approved, cr-no's three declined.
    await ledger.apply(DECIDED)
    after = DEC_1 + DAY
    yes = {p["kind"]: p for p in await ledger.postings("cr-yes")}
    assert yes["bonus"]["amount_minor"] == 50_000
    assert yes["bonus"]["approve_at"] == DECIDED_AT  # the approval completed the milestone
    assert yes["base_fee"]["approve_at"] == DECIDED_AT
    assert [p for p in await ledger.postings("cr-no") if p["kind"] in ("bonus", "base_fee")] == []
    # Nothing of it was approved before the decision.
    assert await ledger.balance("cr-yes", DECIDED_AT - 1) == _balance(57_003, 0, 0)

    run = await ledger.run("2026-12", after)
    # cr-yes: the bonus, the base fee and three sales of 1; ag-ms: 20 % of each line
    # (10000 + 1400; 20 % of 1 rounds to 0); cr-no: nothing.
    assert run.get("cr-yes") == ("paid", 57_003)
    assert run.get("ag-ms") == ("paid", 11_400)
    assert run.get("cr-no", ("nothing_due", 0)) == ("nothing_due", 0)
    again = await ledger.run("2026-12", after)
    assert {status for status, _ in again.values()} <= {"already_paid", "nothing_due"}
    assert await ledger.balance("cr-yes", after) == _balance(0, 0, 57_003)
    assert await ledger.balance("cr-no", after) == _balance(0, 0, 0)
