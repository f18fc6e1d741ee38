"""Whether an input event came on the partition its key puts it on.

The attribution worker's join and refund stage look for an event's partners in their
own partition only: an order produced under another key than its visitor (a producer
of its own keying orders by order id) found no click on its partition and was answered
``no_click`` though its click was on the topic, and a refund keyed otherwise than its
order id was answered ``order_unknown`` for an order that exists. The worker
dead-letters such an event as ``key_mismatch``, naming the key it should have had, and
the what-if replay leaves it out the same way.

Clicks are checked by the first item of each record only (and every item of a record
whose first one is misplaced): the clicks service packs a record's clicks by their
partition, and hashing every click's key would cost the join about a tenth of its time.
"""

from __future__ import annotations

from collections.abc import Callable

from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.partitioner import partition_for
from afflux.shared.topics import CLICKS, ORDERS, REFUNDS

KEY_MISMATCH = "key_mismatch"

Field = Callable[[str], object]  # an event's field by name (None when it has none)

_ORDER_RULE = "its visitor_id, else its click's visitor, else its order_id"


def expected_key(topic: str, kind: str, field: Field) -> tuple[str, str] | None:
    """The key an event of type ``kind`` must be produced under on ``topic`` and the
    rule that gives it; None for an event whose key its body cannot tell (a lead
    confirmation or survey answer is keyed like its order), that we produce ourselves,
    or whose fields are not what its type needs (refused for that)."""
    if topic == ORDERS.name and kind == "OrderPlaced":
        order_id, visitor, click = field("order_id"), field("visitor_id"), field("click_id")
        if not isinstance(order_id, str):
            return None
        key = order_partition_key(
            order_id,
            visitor if isinstance(visitor, str) else None,
            click if isinstance(click, str) else None,
        )
        return key, _ORDER_RULE
    if topic == CLICKS.name and kind == "ClickRecorded":
        visitor = field("visitor_id")
        return (visitor, "its visitor_id") if isinstance(visitor, str) else None
    if topic == REFUNDS.name and kind in ("OrderRefunded", "SubscriptionRenewed"):
        order_id = field("order_id")
        return (order_id, "its order_id") if isinstance(order_id, str) else None
    return None


def checks_every_item(topic: str) -> bool:
    """Whether each item of a record is checked, not only the first (see above)."""
    return topic != CLICKS.name


def misplaced_by(
    topic: str, kind: str, field: Field, partition: int, partitions: int | None
) -> str:
    """Why an event of type ``kind`` is not where its key puts it ('' when it is, or when
    the topic's partition count is not known)."""
    expected = expected_key(topic, kind, field)
    if expected is None or not partitions:
        return ""
    key, rule = expected
    right = partition_for(key.encode(), partitions)
    if right == partition:
        return ""
    return (
        f"{KEY_MISMATCH}: a {kind} on {topic} is keyed by {rule} ({key!r}), which the"
        f" default partitioner puts on partition {right} of {partitions}; it came on"
        f" partition {partition}, where what it joins with is never looked for"
    )


def misplaced(topic: str, event: object, partition: int, partitions: int | None) -> str:
    """``misplaced_by`` for a decoded event (a model or a fast-path click)."""
    kind = getattr(event, "type", "")
    if not isinstance(kind, str):
        return ""
    return misplaced_by(topic, kind, lambda name: getattr(event, name, None), partition, partitions)
