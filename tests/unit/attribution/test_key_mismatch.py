"""An order, click or refund on another partition than its key puts it on is
dead-lettered as ``key_mismatch``: the join looks for an order's click on the order's
partition only, so an order a producer of its own keyed by order id was answered
``no_click`` though its click was on the topic (and a refund keyed otherwise
``order_unknown`` for an order that exists), with no word of the real cause."""

from __future__ import annotations

import asyncio

import pytest
from recording_runtime import recording_runtime, ten_percent_sale

from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Owned, Record
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.events import (
    ClickRecorded,
    DeadLetter,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
)
from afflux.shared.io.kafka import partition_for
from afflux.shared.placement import KEY_MISMATCH, misplaced
from afflux.shared.topics import CLICKS, DLQ, ORDERS, REFUNDS
from afflux.shared.whatif_decode import LogReader
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.unit

TS = 1_793_491_200_000
PARTITIONS = 4


def partition(key: str) -> int:
    return partition_for(key.encode(), PARTITIONS)


def key_on(p: int, prefix: str) -> str:
    """A key the default partitioner puts on partition ``p``."""
    return next(f"{prefix}-{n}" for n in range(1000) if partition(f"{prefix}-{n}") == p)


VISITOR = key_on(0, "v")
ORDER_ID = key_on(1, "o")  # an order id whose own partition is not its visitor's


def click(visitor: str = VISITOR, n: int = 1) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ce-{visitor}-{n}",
        occurred_at=TS - 60_000,
        click_id=f"{visitor}.c{n}",
        link_code="lk",
        affiliate_id="creator",
        campaign_id="camp",
        visitor_id=visitor,
    )


def order(order_id: str = ORDER_ID, visitor: str | None = VISITOR) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"oe-{order_id}",
        occurred_at=TS,
        order_id=order_id,
        campaign_id="camp",
        merchant_id="merchant",
        currency="EUR",
        amount_minor=10_000,
        visitor_id=visitor,
    )


def refund(order_id: str = ORDER_ID) -> OrderRefunded:
    return OrderRefunded(
        event_id=f"re-{order_id}",
        occurred_at=TS + 1,
        refund_id=f"r-{order_id}",
        order_id=order_id,
        campaign_id="camp",
        amount_minor=100,
        currency="EUR",
    )


def confirmation() -> LeadConfirmed:
    return LeadConfirmed(
        event_id=f"le-{ORDER_ID}", occurred_at=TS, order_id=ORDER_ID, campaign_id="camp"
    )


def run(records: list[Record], partitions: int | None = PARTITIONS) -> tuple[Runtime, list[str]]:
    """The records through a worker owning every partition; the reasons of its letters."""
    sent: list[tuple[str, bytes | None]] = []
    rt = recording_runtime(sent, ten_percent_sale(), "key-mismatch", partitions=partitions)

    async def go() -> None:
        for p in range(PARTITIONS):
            rt.join.owned[p] = Owned(rt.join.new_state())
            rt.refunds.owned[p] = Owned(rt.refunds.new_state())
        for r in records:
            stage = rt.refunds if r.topic == REFUNDS.name else rt.join
            await stage.handle(r)

    asyncio.run(go())
    letters = [e for t, v in sent if t == DLQ.name for e in decode_record(v)]
    assert all(isinstance(e, DeadLetter) for e in letters)
    return rt, [e.reason for e in letters if isinstance(e, DeadLetter)]


def record(topic: str, p: int, offset: int, key: str, value: bytes) -> Record:
    return Record(topic, p, offset, key.encode(), value, TS)


def held(rt: Runtime, p: int) -> bool:
    return ("camp", ORDER_ID) in rt.join.owned[p].state.index


def test_an_order_keyed_by_its_order_id_though_it_names_a_visitor_is_dead_lettered() -> None:
    rt, reasons = run(
        [
            record(CLICKS.name, 0, 0, VISITOR, encode(click())),
            record(ORDERS.name, 1, 0, ORDER_ID, encode(order())),
        ]
    )
    [reason] = reasons
    assert reason.startswith(f"{KEY_MISMATCH}: a OrderPlaced on orders is keyed by its visitor_id")
    assert f"({VISITOR!r}), which the default partitioner puts on partition 0 of 4" in reason
    assert "it came on partition 1" in reason
    assert not held(rt, 1)  # never decided there as no_click


def test_the_same_order_on_its_visitors_partition_is_joined_with_the_click() -> None:
    rt, reasons = run(
        [
            record(CLICKS.name, 0, 0, VISITOR, encode(click())),
            record(ORDERS.name, 0, 0, "any key", encode(order())),  # the partition decides
        ]
    )
    assert reasons == []
    assert held(rt, 0)


def test_an_order_without_visitor_or_click_belongs_on_its_order_ids_partition() -> None:
    rt, reasons = run([record(ORDERS.name, 1, 0, ORDER_ID, encode(order(visitor=None)))])
    assert reasons == []
    assert held(rt, 1)


def test_a_refund_keyed_otherwise_than_its_order_id_is_dead_lettered() -> None:
    _, reasons = run([record(REFUNDS.name, 2, 0, "wrong", encode(refund()))])
    [reason] = reasons
    assert reason.startswith(f"{KEY_MISMATCH}: a OrderRefunded on refunds is keyed by its order_id")
    _, reasons = run([record(REFUNDS.name, 1, 0, ORDER_ID, encode(refund()))])
    assert reasons == []


def test_a_click_record_whose_first_click_is_misplaced_has_every_click_checked() -> None:
    other = key_on(2, "v")
    packed = b"[" + b",".join(encode(c) for c in (click(other), click(VISITOR, 2))) + b"]"
    rt, reasons = run([record(CLICKS.name, 0, 0, VISITOR, packed)])
    [reason] = reasons
    assert reason.startswith(f"{KEY_MISMATCH}: a ClickRecorded on clicks")
    assert f"({other!r})" in reason
    assert VISITOR in rt.join.owned[0].state.keys  # the click in its place was taken
    assert other not in rt.join.owned[0].state.keys


def test_nothing_is_refused_while_the_topics_partition_count_is_unknown() -> None:
    rt, reasons = run([record(ORDERS.name, 1, 0, ORDER_ID, encode(order()))], partitions=None)
    assert reasons == []
    assert held(rt, 1)


@pytest.mark.parametrize(
    ("topic", "event", "p", "wrong"),
    [
        (ORDERS.name, order(), 0, False),
        (ORDERS.name, order(), 1, True),
        (ORDERS.name, order(visitor=None), 1, False),
        (CLICKS.name, click(), 0, False),
        (CLICKS.name, click(), 3, True),
        (REFUNDS.name, refund(), 1, False),
        (REFUNDS.name, refund(), 0, True),
        # Keyed like its order, which its body does not name: never checked.
        (ORDERS.name, confirmation(), 3, False),
    ],
)
def test_placement_table(topic: str, event: object, p: int, wrong: bool) -> None:
    assert bool(misplaced(topic, event, p, PARTITIONS)) is wrong  # type: ignore[arg-type]


def whatif_reader() -> LogReader:
    return LogReader(CampaignLog("camp"), partitions={ORDERS.name: 4, CLICKS.name: 4})


def test_the_what_if_leaves_out_a_misplaced_order_as_the_worker_does() -> None:
    reader = whatif_reader()
    reader.record(encode(order()), ORDERS.name, TS, partition=1)
    assert reader.refused == {KEY_MISMATCH: 1}
    assert reader.log.orders == []
    reader.record(encode(order()), ORDERS.name, TS, partition=0)
    assert [o.order_id for o in reader.log.orders] == [ORDER_ID]


def test_the_what_if_checks_a_click_records_items_as_the_worker_does() -> None:
    other = key_on(2, "v")

    def packed(*clicks: ClickRecorded) -> bytes:
        return b"[" + b",".join(encode(c) for c in clicks) + b"]"

    # The first click in its place: the record's others are not checked (nor by the worker).
    reader = whatif_reader()
    reader.record(packed(click(VISITOR), click(other)), CLICKS.name, TS, partition=0)
    assert reader.refused == {}
    assert set(reader.log.clicks) == {f"0\x1f{VISITOR}", f"0\x1f{other}"}  # as taken there
    # The first one misplaced: every one is checked.
    reader = whatif_reader()
    reader.record(packed(click(other), click(VISITOR, 2)), CLICKS.name, TS, partition=0)
    assert reader.refused == {KEY_MISMATCH: 1}
    assert set(reader.log.clicks) == {f"0\x1f{VISITOR}"}


def test_the_worker_takes_what_the_what_if_takes_from_a_click_record() -> None:
    """The same record through the worker: the same click left out."""
    other = key_on(2, "v")
    packed = b"[" + b",".join(encode(c) for c in (click(VISITOR), click(other))) + b"]"
    rt, reasons = run([record(CLICKS.name, 0, 0, VISITOR, packed)])
    assert reasons == []
    assert {VISITOR, other} <= set(rt.join.owned[0].state.keys)


def test_the_what_if_joins_a_click_with_the_orders_of_its_own_partition_only() -> None:
    """A misplaced click past a record's first item is taken by the worker on the
    partition it came on, where its visitor's orders never look: its order is answered
    no_click, and the what-if must not pay it either."""
    other = key_on(2, "v")
    reader = whatif_reader()
    packed = b"[" + b",".join(encode(c) for c in (click(VISITOR), click(other))) + b"]"
    reader.record(packed, CLICKS.name, TS, partition=0)
    placed = order(order_id="o-other", visitor=other)
    reader.record(encode(placed), ORDERS.name, TS, partition=2)
    reader.record(encode(order()), ORDERS.name, TS, partition=0)
    joined = {o.order_id: reader.log.clicks.get(o.key, []) for o in reader.log.orders}
    assert joined["o-other"] == []  # its click sits on partition 0, the order on 2
    assert [c.click_id for c in joined[ORDER_ID]] == [f"{VISITOR}.c1"]
