"""The attribution worker's two stages over one partition, fed record by record through
a recording runtime, and one campaign (EUR, a coupon that wins at once, recurring pay)
with builders for its orders, refunds and renewals: what the refund stage's guards
(currency, date) are tested with."""

from __future__ import annotations

import asyncio

from recording_runtime import recording_runtime

from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Owned, Record
from afflux.oracle import attribute
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    ConversionReversed,
    DeadLetter,
    Envelope,
    OrderPlaced,
    OrderRefunded,
    SubscriptionRenewed,
)
from afflux.shared.topics import DLQ, ORDERS, REVERSALS
from afflux.shared.wire import decode_record, encode

TS = 1_793_491_200_000
DAY = 86_400_000
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "camp",
        "merchant_id": "merchant",
        "currency": "EUR",
        "coupons": {"ANA": "ana"},
        "grace_seconds": 1,
        "plan": {
            "sale": {"rate": {"percent": "10"}},
            "recurring": {"rate": {"percent": "10"}, "max_renewals": 12},
        },
    }
)
VERSION = TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS)
CAMPAIGNS = {"camp": (VERSION,)}


def order(currency: str = "EUR", order_id: str = "o-1", coupon: str | None = "ANA") -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{order_id}-{currency}",
        occurred_at=TS,
        order_id=order_id,
        campaign_id="camp",
        merchant_id="merchant",
        currency=currency,
        amount_minor=5_000,
        coupon_code=coupon,
        visitor_id=None if coupon else "nobody",
    )


def refund(
    refund_id: str, amount: int, currency: str, order_id: str = "o-1", at: int = TS + DAY
) -> OrderRefunded:
    return OrderRefunded(
        event_id=f"ev-{refund_id}-{currency}-{at}",
        occurred_at=at,
        refund_id=refund_id,
        order_id=order_id,
        campaign_id="camp",
        amount_minor=amount,
        currency=currency,
    )


def renewal(currency: str) -> SubscriptionRenewed:
    return SubscriptionRenewed(
        event_id=f"ev-renewal-{currency}",
        occurred_at=TS + 30 * DAY,
        order_id="o-1",
        renewal_order_id="o-1:renewal-1",
        renewal_number=1,
        campaign_id="camp",
        merchant_id="merchant",
        amount_minor=2_000,
        currency=currency,
    )


def outcome(o: OrderPlaced) -> Envelope:
    """The join's outcome for ``o``, as the oracle decides it (a coupon wins at once)."""
    result = attribute([o], CAMPAIGNS)
    [decided] = [*result.conversions, *result.unmatched]
    return decided


Sent = list[tuple[str, bytes | None]]


def events(sent: Sent, topic: str) -> list[Envelope]:
    return [e for t, v in sent if t == topic for e in decode_record(v)]


def letters(sent: Sent) -> list[DeadLetter]:
    found = events(sent, DLQ.name)
    assert all(isinstance(e, DeadLetter) for e in found)
    return [e for e in found if isinstance(e, DeadLetter)]


def reversed_minor(sent: Sent) -> list[int]:
    return [
        e.amount_minor for e in events(sent, REVERSALS.name) if isinstance(e, ConversionReversed)
    ]


class Worker:
    """The worker's two stages over one partition, fed record by record."""

    def __init__(self) -> None:
        self.sent: Sent = []
        self.rt: Runtime = recording_runtime(self.sent, VERSION, "currency")
        self.offsets: dict[str, int] = {}
        self.rt.join.owned[0] = Owned(self.rt.join.new_state())
        self.rt.refunds.owned[0] = Owned(self.rt.refunds.new_state())

    def feed(self, topic: str, event: Envelope, ts: int = TS + DAY) -> None:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        stage = self.rt.join if topic == ORDERS.name else self.rt.refunds
        record = Record(topic, 0, offset, b"k", encode(event), ts)
        asyncio.run(stage.handle(record))

    def expire(self) -> None:
        """Every waiting refund past its wait (a tick far later on the safe clock)."""
        self.rt.refunds.owned[0].safe_ms = TS + 1_000 * DAY
        asyncio.run(self.rt.refunds.tick())
