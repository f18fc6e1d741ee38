"""The topic registry: names, keys and partitioning (DESIGN §2).

Topics that join are co-partitioned: the same key and the same partition count.
All data topics share ``partitions`` so that clicks, orders, refunds,
conversions and reversals for one key land on the same partition number.

The input topics hold what the outside world told afflux (clicks, orders, refunds,
campaign terms, creators' content and its stats); every other topic and all state
derive from them. Replaying them rebuilds everything, so they are created to be kept
forever by default (``retention.ms=-1``): a broker's default (seven days on Apache
Kafka) would leave a replay with only the last week. The attribution's answers (``conversions``,
``reversals``, ``attribution.unmatched``) are kept as long: ``afflux ledger rebuild``
and the order-outcome index replay them, and a rebuild of the ledger alone must not
first need the attribution rebuilt from the inputs.
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
    input: bool = False  # from outside afflux: kept for replay (retention.ms)
    replayed: bool = False  # derived, but replayed to rebuild the ledger: kept as long

    @property
    def kept_for_replay(self) -> bool:
        return self.input or self.replayed


INFINITE_RETENTION_MS = -1

CLICKS = Topic("clicks", "visitor_id", "clicks", input=True)
ORDERS = Topic(
    "orders",
    "OrderPlaced: visitor_id, else the click's visitor, else order_id;"
    " LeadConfirmed, SurveyAnswered: their order's key",
    "orders",
    input=True,
)
REFUNDS = Topic("refunds", "order_id", "orders", input=True)
CONVERSIONS = Topic("conversions", "order_id", "attribution", replayed=True)
REVERSALS = Topic("reversals", "order_id", "attribution", replayed=True)
UNMATCHED = Topic("attribution.unmatched", "order_id", "attribution", replayed=True)
CAMPAIGNS = Topic("campaigns", "campaign_id", "admin tools", compacted=True, input=True)
LINKS = Topic("links", "code", "clicks", compacted=True)
# Every payout, kept as long as the inputs: the ledger writes back from it a payout
# record Redis lost, which the next run would otherwise pay again.
PAYOUTS = Topic("payouts", "affiliate_id", "payouts", replayed=True)
# A content's publication and all its stats share one key, so they stay in order.
CONTENT = Topic("content", "platform:content_id", "payouts, platform connectors", input=True)
# Review decisions on held conversions: what people decided is input, kept for replay.
REVIEWS = Topic("reviews", "order_id", "payouts", input=True)
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
    CONTENT,
    REVIEWS,
    DLQ,
)


def by_name(name: str) -> Topic:
    for topic in ALL_TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(name)


def topic_configs(topic: Topic, input_retention_ms: int = INFINITE_RETENTION_MS) -> dict[str, str]:
    """The configs ``topic`` is created with; what is not named is the broker's default."""
    configs: dict[str, str] = {}
    if topic.compacted:
        configs["cleanup.policy"] = "compact"
    if topic.kept_for_replay:
        configs["retention.ms"] = str(input_retention_ms)
    return configs
