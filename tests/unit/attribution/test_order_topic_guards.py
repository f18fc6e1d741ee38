"""What the orders service refuses at its door, an order written straight to the topic
meets in the worker, and the batch oracle and the what-if decoder leave out the same:

- an order naming another merchant than its campaign's is dead-lettered
  (``merchant_mismatch``); it was attributed and paid (a coupon of the campaign won it);
- an order without items whose non-commissionable part exceeds its amount is
  dead-lettered (the orders service answers 422 on ``non_commissionable_minor``); it was
  attributed and paid nothing, with no word of why.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from recording_runtime import recording_runtime

from afflux.attribution.stage import Owned, Record
from afflux.oracle import attribute
from afflux.shared.core.products import items_problem
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.events import AnyEvent, ConversionAttributed, DeadLetter, OrderPlaced
from afflux.shared.topics import CONVERSIONS, DLQ, ORDERS, UNMATCHED
from afflux.shared.whatif_decode import LogReader
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.unit

TS = 1_793_491_200_000
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "camp",
        "merchant_id": "merchant",
        "currency": "EUR",
        "coupons": {"ANA": "ana"},
        "plan": {"sale": {"rate": {"percent": "10"}}},
    }
)
VERSION = TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS)


def order(merchant: str = "merchant", part: int = 0, order_id: str = "o-1") -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{order_id}-{merchant}-{part}",
        occurred_at=TS,
        order_id=order_id,
        campaign_id="camp",
        merchant_id=merchant,
        currency="EUR",
        amount_minor=10_000,
        non_commissionable_minor=part,
        coupon_code="ANA",
    )


def worker_outputs(orders: list[OrderPlaced]) -> tuple[list[DeadLetter], list[AnyEvent]]:
    return worker_outputs_raw([encode(o) for o in orders])


def worker_outputs_raw(records: list[bytes]) -> tuple[list[DeadLetter], list[AnyEvent]]:
    """What the join stage sends for ``records`` on the orders topic: its dead letters, and
    its conversions and unattributed orders."""
    sent: list[tuple[str, bytes | None]] = []
    rt = recording_runtime(sent, VERSION, "order-guards")

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        for offset, raw in enumerate(records):
            await rt.join.handle(Record(ORDERS.name, 0, offset, b"k", raw, TS))

    asyncio.run(run())
    out = [e for t, v in sent if t in (CONVERSIONS.name, UNMATCHED.name) for e in decode_record(v)]
    letters = [e for t, v in sent if t == DLQ.name for e in decode_record(v)]
    assert all(isinstance(e, DeadLetter) for e in letters)
    return [e for e in letters if isinstance(e, DeadLetter)], out


def whatif_refused(o: OrderPlaced) -> dict[str, int]:
    reader = LogReader(CampaignLog("camp"), versions=(VERSION,))
    reader.record(encode(o), ORDERS.name, TS)
    return reader.refused


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            order(merchant="merchant-evil"),
            "merchant_mismatch: order of merchant 'merchant-evil' for a campaign of merchant"
            " 'merchant'",
        ),
        (
            order(part=20_000),
            "non_commissionable_minor 20000 is not from 0 to amount_minor 10000",
        ),
    ],
    ids=["another merchant", "part past the amount"],
)
def test_an_order_the_orders_service_refuses_is_dead_lettered_and_left_out_alike(
    bad: OrderPlaced, reason: str
) -> None:
    letters, out = worker_outputs([bad])
    [letter] = letters
    assert letter.reason == reason
    assert out == []
    assert attribute([bad], {"camp": (VERSION,)}).conversions == []
    assert sum(whatif_refused(bad).values()) == 1
    # The refusal took nothing: the same order id, as the merchant sends it, is attributed.
    letters, out = worker_outputs([bad, order()])
    [conversion] = out
    assert isinstance(conversion, ConversionAttributed)
    assert conversion.affiliate_id == "ana"
    assert attribute([bad, order()], {"camp": (VERSION,)}).conversions == [conversion]


@pytest.mark.parametrize(("part", "refused"), [(0, False), (10_000, False), (10_001, True)])
def test_without_items_the_part_must_fit_in_the_amount(part: int, refused: bool) -> None:
    assert bool(items_problem(10_000, [], part)) is refused


def _written_straight(**fields: object) -> bytes:
    return orjson.dumps({**orjson.loads(encode(order())), **fields})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"customer_id": "c" * 1_000_000}, "customer_id"),
        ({"coupon_code": "A" * 65}, "coupon_code"),
        ({"kind": "action", "action": "x" * 65}, "action"),
        ({"coupon_code": ""}, "coupon_code of 0 characters"),
        (
            {"items": [{"sku": f"s{i}", "price_minor": 20} for i in range(501)]},
            "items",
        ),
    ],
    ids=[
        "1 MB customer id",
        "65-character coupon",
        "65-character action",
        "empty coupon",
        "501 items",
    ],
)
def test_an_order_past_the_apis_bounds_on_the_topic_is_dead_lettered_not_attributed(
    fields: dict[str, object], field: str
) -> None:
    """Its conversion copies these fields: a 1 MB customer id made a conversion over
    every reader's record limit, so the order was attributed and its commission lost."""
    raw = _written_straight(**fields)

    letters, out = worker_outputs_raw([raw, encode(order(order_id="o-2"))])

    [letter] = letters
    assert field in letter.reason
    [conversion] = out
    assert isinstance(conversion, ConversionAttributed)
    assert conversion.order_id == "o-2"
    reader = LogReader(CampaignLog("camp"), versions=(VERSION,))
    reader.record(raw, ORDERS.name, TS)
    assert (reader.log.orders, reader.skipped) == ([], 1)  # the what-if leaves it out alike
    # A rule of the worker, not of the event: an earlier version's records still decode
    # (a replay, a visitor's state holding the order pending), and the oracle leaves it out.
    event = OrderPlaced.model_validate_json(raw)
    assert attribute([event], {"camp": (VERSION,)}).conversions == []
