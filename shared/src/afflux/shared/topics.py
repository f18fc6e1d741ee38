"""The topic registry: names, keys and partitioning (DESIGN §2).

Topics that join are co-partitioned: the same key and the same partition count.
All data topics share ``partitions`` so that clicks, orders, refunds,
conversions and reversals for one key land on the same partition number.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    key: str
    producer: str
    compacted: bool = False
    single_partition: bool = False


CLICKS = Topic("clicks", "visitor_id", "clicks")
ORDERS = Topic("orders", "visitor_id, else the click's visitor, else order_id", "orders")
REFUNDS = Topic("refunds", "order_id", "orders")
CONVERSIONS = Topic("conversions", "order_id", "attribution")
REVERSALS = Topic("reversals", "order_id", "attribution")
UNMATCHED = Topic("attribution.unmatched", "order_id", "attribution")
CAMPAIGNS = Topic("campaigns", "campaign_id", "admin tools", compacted=True)
LINKS = Topic("links", "code", "clicks", compacted=True)
PAYOUTS = Topic("payouts", "affiliate_id", "payouts")
DLQ = Topic("afflux.dlq", "source key", "any consumer")

ALL_TOPICS: tuple[Topic, ...] = (
    CLICKS,
    ORDERS,
    REFUNDS,
    CONVERSIONS,
    REVERSALS,
    UNMATCHED,
    CAMPAIGNS,
    LINKS,
    PAYOUTS,
    DLQ,
)


def by_name(name: str) -> Topic:
    for topic in ALL_TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(name)
