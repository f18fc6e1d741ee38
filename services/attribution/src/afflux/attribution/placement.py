"""Whether an input event came on the partition its key puts it on.

The join and the refund stage look for an event's partners in their own partition
only: an order produced under another key than its visitor (a producer of its own
keying orders by order id) found no click on its partition and was answered
``no_click`` though its click was on the topic, and a refund keyed otherwise than its
order id was answered ``order_unknown`` for an order that exists. Such an event is
dead-lettered as ``key_mismatch``, naming the key it should have had.

Clicks are checked by the first item of each record only (and every item of a record
whose first one is misplaced): the clicks service packs a record's clicks by their
partition, and hashing every click's key would cost the join about a tenth of its time.
"""

from __future__ import annotations

from afflux.attribution.decode import DecodedClick, Event
from afflux.shared.core.ids import order_partition_key
from afflux.shared.events import ClickRecorded, OrderPlaced, OrderRefunded, SubscriptionRenewed
from afflux.shared.io.kafka import partition_for
from afflux.shared.topics import CLICKS, ORDERS, REFUNDS

KEY_MISMATCH = "key_mismatch"

_CLICKS = (ClickRecorded, DecodedClick)
_REFUNDS = (OrderRefunded, SubscriptionRenewed)


def expected_key(topic: str, event: Event) -> tuple[str, str] | None:
    """The key ``event`` must be produced under on ``topic`` and the rule that gives it;
    None for an event whose key its body cannot tell (a lead confirmation or survey
    answer is keyed like its order) or that we produced ourselves."""
    if topic == ORDERS.name and isinstance(event, OrderPlaced):
        key = order_partition_key(event.order_id, event.visitor_id, event.click_id)
        return key, "its visitor_id, else its click's visitor, else its order_id"
    if topic == CLICKS.name and isinstance(event, _CLICKS):
        return event.visitor_id, "its visitor_id"
    if topic == REFUNDS.name and isinstance(event, _REFUNDS):
        return event.order_id, "its order_id"
    return None


def checks_every_item(topic: str) -> bool:
    """Whether each item of a record is checked, not only the first (see above)."""
    return topic != CLICKS.name


def misplaced(topic: str, event: Event, partition: int, partitions: int | None) -> str:
    """Why ``event`` is not where its key puts it ('' when it is, or when the topic's
    partition count is not known)."""
    expected = expected_key(topic, event)
    if expected is None or not partitions:
        return ""
    key, rule = expected
    name = "ClickRecorded" if isinstance(event, DecodedClick) else type(event).__name__
    right = partition_for(key.encode(), partitions)
    if right == partition:
        return ""
    return (
        f"{KEY_MISMATCH}: a {name} on {topic} is keyed"
        f" by {rule} ({key!r}), which the default partitioner puts on partition {right} of"
        f" {partitions}; it came on partition {partition}, where what it joins with is"
        " never looked for"
    )
