"""``GET /v1/orders/{order_id}``: a merchant reads what became of its order, kept by the
order-outcome index from the real topics; another merchant's order answers as unknown.

The orders app of this package runs the index's consumer against the session broker;
the attribution's answers are produced here as the attribution worker writes them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from afflux.orders.outcome_index import GROUP, MAX_EVENTS_PER_ORDER
from afflux.orders.signing import MERCHANT_HEADER, SIGNATURE_HEADER, sign_request
from afflux.shared.events import (
    ConversionAttributed,
    ConversionReversed,
    ConversionReviewed,
    DeadLetter,
    Envelope,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
)
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CONVERSIONS, DLQ, ORDERS, REFUNDS, REVERSALS, REVIEWS, UNMATCHED
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "orders-admin-token"  # the package's settings (conftest)
SECRET_A = "a-secret-new"
WITHIN_S = 60.0


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def signed_get(target: str, merchant: str = "merchant-a", secret: str = SECRET_A) -> dict[str, str]:
    return {
        MERCHANT_HEADER: merchant,
        SIGNATURE_HEADER: sign_request("GET", target, secret, int(time.time())),
    }


async def get_outcome(
    client: httpx.AsyncClient, order_id: str, query: str = "", **sign_args: Any
) -> httpx.Response:
    target = f"/v1/orders/{order_id}" + (f"?{query}" if query else "")
    return await client.get(target, headers=signed_get(target, **sign_args))


async def until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = time.monotonic() + WITHIN_S
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} not within {WITHIN_S} s"
        await asyncio.sleep(0.2)


async def produce(bootstrap: str, records: list[tuple[str, str, bytes]]) -> None:
    producer: AIOKafkaProducer = new_producer(bootstrap)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def place_order(api: Any, campaign_id: str, order_id: str, amount: int = 4_999) -> None:
    body = {
        "order_id": order_id,
        "campaign_id": campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": amount,
        "currency": "EUR",
        "visitor_id": new_id("v"),
    }
    answer = await api.post("/v1/orders", body)
    assert answer.status_code == 202, answer.text


def conversion(campaign_id: str, order_id: str, affiliate: str, n: int = 1) -> ConversionAttributed:
    now = int(time.time() * 1000)
    return ConversionAttributed(
        event_id=new_id("conv-ev"),
        occurred_at=now,
        conversion_id=f"{order_id}-c{n}",
        order_id=order_id,
        campaign_id=campaign_id,
        affiliate_id=affiliate,
        reason="cookie",
        model="last_click",
        window_ms=30 * 86_400_000,
        click_id=new_id("click"),
        clicked_at=now - 3_600_000,
        lag_ms=3_600_000,
        terms_version=1,
        amount_minor=4_999,
        currency="EUR",
        order_event_id=new_id("order-ev"),
    )


def refund_of(c: ConversionAttributed, amount: int) -> tuple[OrderRefunded, ConversionReversed]:
    refund = OrderRefunded(
        event_id=new_id("refund-ev"),
        occurred_at=c.occurred_at + 60_000,
        refund_id=new_id("rf"),
        order_id=c.order_id,
        campaign_id=c.campaign_id,
        amount_minor=amount,
        currency="EUR",
    )
    reversal = ConversionReversed(
        event_id=new_id("rev-ev"),
        occurred_at=refund.occurred_at,
        reversal_id=new_id("rev"),
        refund_id=refund.refund_id,
        conversion_id=c.conversion_id,
        order_id=c.order_id,
        campaign_id=c.campaign_id,
        affiliate_id=c.affiliate_id,
        amount_minor=amount,
        requested_minor=amount,
        refunded_total_minor=amount,
        order_amount_minor=c.amount_minor,
        currency="EUR",
        order_occurred_at=c.occurred_at,
    )
    return refund, reversal


async def indexed_after_dead_letter(
    client: httpx.AsyncClient, topics: Any, order_id: str, refused_key: str, what: str
) -> DeadLetter:
    """Wait for ``order_id`` (placed after the refused record) to be indexed, then return
    the index's dead letter of the record keyed ``refused_key``."""

    async def visible() -> bool:
        return (await get_outcome(client, order_id)).status_code == 200

    await until(visible, f"an order after {what}")

    async def letter() -> DeadLetter | None:
        await topics.settle()
        for _, value in topics.records.get("afflux.dlq", []):
            for event in decode_record(value):
                if (
                    isinstance(event, DeadLetter)
                    and event.consumer == GROUP
                    and event.key == refused_key
                ):
                    return event
        return None

    found: DeadLetter = await until(letter, f"the dead letter of {what}")
    return found


def on(topic: str, event: Envelope) -> tuple[str, str, bytes]:
    return (topic, getattr(event, "order_id", ""), encode(event))


async def test_a_merchant_reads_its_order_received_then_attributed_then_refunded(
    client: httpx.AsyncClient, api: Any, campaigns: Any, infra: Any
) -> None:
    shop = campaigns.shop.campaign_id
    order_id = new_id("o")
    await place_order(api, shop, order_id)

    async def status() -> str | None:
        answer = await get_outcome(client, order_id)
        return answer.json()["outcomes"][0]["status"] if answer.status_code == 200 else None

    assert await until(status, "the received order") == "pending"
    won = conversion(shop, order_id, "creator-ana")
    refund, reversal = refund_of(won, 1_500)
    await produce(
        infra.kafka_bootstrap,
        [on(CONVERSIONS.name, won), on(REFUNDS.name, refund), on(REVERSALS.name, reversal)],
    )

    async def refunded() -> dict[str, Any] | None:
        body = (await get_outcome(client, order_id)).json()["outcomes"][0]
        return body if body["reversals"] and body["refunds"] else None

    outcome = await until(refunded, "the refund's reversal")
    assert outcome["status"] == "attributed"
    assert outcome["order"]["amount_minor"] == 4_999
    decision = outcome["decision"]
    assert (decision["affiliate_id"], decision["reason"], decision["model"]) == (
        "creator-ana",
        "cookie",
        "last_click",
    )
    assert decision["window_ms"] == 30 * 86_400_000
    assert decision["clicked_at"] == won.clicked_at
    assert outcome["refunded_minor"] == 1_500
    assert [r["amount_minor"] for r in outcome["reversals"]] == [1_500]
    # This package runs no payouts service: the answer says the ledger was not asked.
    assert outcome["postings"] is None
    assert "AFFLUX_PAYOUTS_URL" in outcome["postings_error"]


async def test_a_declined_conversion_says_so_in_its_orders_outcome(
    client: httpx.AsyncClient, api: Any, campaigns: Any, infra: Any
) -> None:
    """A conversion held for review and declined read ``attributed`` with nothing else to
    tell it apart from one still waiting: the outcome now carries the review's decision."""
    shop = campaigns.shop.campaign_id
    order_id = new_id("o")
    await place_order(api, shop, order_id)
    won = conversion(shop, order_id, "creator-ana")
    decided = ConversionReviewed(
        event_id=new_id("review-ev"),
        occurred_at=won.occurred_at + 60_000,
        conversion_id=won.conversion_id,
        order_id=order_id,
        campaign_id=shop,
        affiliate_id="creator-ana",
        order_occurred_at=won.occurred_at,
        decision="decline",
        reason="self-purchase",
        decided_by="admin",
    )
    await produce(infra.kafka_bootstrap, [on(CONVERSIONS.name, won), on(REVIEWS.name, decided)])

    async def review() -> dict[str, Any] | None:
        answer = await get_outcome(client, order_id)
        found = answer.json()["outcomes"][0] if answer.status_code == 200 else {}
        return found.get("review")

    assert await until(review, "the review's decision") == {
        "decision": "decline",
        "reason": "self-purchase",
        "decided_by": "admin",
        "decided_at": decided.occurred_at,
    }


async def test_an_unattributed_order_answers_its_reason(
    client: httpx.AsyncClient, api: Any, campaigns: Any, infra: Any
) -> None:
    shop = campaigns.shop.campaign_id
    order_id = new_id("o")
    await place_order(api, shop, order_id)
    answer = OrderUnattributed(
        event_id=new_id("unattr"),
        occurred_at=int(time.time() * 1000),
        order_id=order_id,
        campaign_id=shop,
        reason="outside_window",
        amount_minor=4_999,
        currency="EUR",
        order_event_id=new_id("order-ev"),
    )
    await produce(infra.kafka_bootstrap, [on(UNMATCHED.name, answer)])

    async def reason() -> str | None:
        answer = await get_outcome(client, order_id)
        found = answer.json()["outcomes"][0] if answer.status_code == 200 else {}
        return found.get("unattributed_reason")

    assert await until(reason, "the unattributed answer") == "outside_window"
    body = (await get_outcome(client, order_id)).json()
    assert body["outcomes"][0]["status"] == "unattributed"
    assert body["outcomes"][0]["postings"] == []  # no creator, nothing to ask the ledger


async def test_another_merchants_order_and_an_unknown_order_answer_the_same_404(
    client: httpx.AsyncClient, api: Any, campaigns: Any
) -> None:
    order_id = new_id("o")
    await place_order(api, campaigns.shop.campaign_id, order_id)

    async def visible() -> bool:
        return (await get_outcome(client, order_id)).status_code == 200

    await until(visible, "the order in the index")
    theirs = await get_outcome(client, order_id, merchant="merchant-b", secret="b-secret")
    unknown = await get_outcome(client, new_id("o"))
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()
    admin = await client.get(
        f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert admin.status_code == 200
    assert [o["campaign_id"] for o in admin.json()["outcomes"]] == [campaigns.shop.campaign_id]
    narrowed = await get_outcome(client, order_id, f"campaign_id={campaigns.leads.campaign_id}")
    assert narrowed.status_code == 404


@pytest.mark.parametrize(
    ("case", "headers_for"),
    [
        # Signed with a secret of merchant-b while claiming merchant-a.
        ("wrong-secret", lambda t: signed_get(t, secret="b-secret")),
        # A signature for another order's path cannot be replayed on this one.
        ("other-path", lambda t: signed_get("/v1/orders/someone-else")),
        # Ten minutes old: outside the 300 s tolerance.
        (
            "stale",
            lambda t: {
                MERCHANT_HEADER: "merchant-a",
                SIGNATURE_HEADER: sign_request("GET", t, SECRET_A, int(time.time()) - 600),
            },
        ),
        ("no-signature", lambda t: {MERCHANT_HEADER: "merchant-a"}),
        ("wrong-admin-token", lambda t: {"Authorization": "Bearer nope"}),
    ],
)
async def test_a_request_not_signed_for_this_order_is_refused_with_401(
    client: httpx.AsyncClient, case: str, headers_for: Callable[[str], dict[str, str]]
) -> None:
    target = "/v1/orders/o-anything"
    answer = await client.get(target, headers=headers_for(target))
    assert answer.status_code == 401, (case, answer.text)
    assert answer.json()["detail"][0]["field"] in (SIGNATURE_HEADER, "Authorization")
    if case in ("wrong-secret", "other-path"):  # a GET has no body: it signs its request line
        assert "does not match the request line" in answer.text, answer.text


@pytest.mark.parametrize("with_header", [True, False])
async def test_the_admin_token_in_the_outcomes_query_is_refused_with_400(
    client: httpx.AsyncClient, with_header: bool
) -> None:
    """The route checks the admin token itself: it answered 401 'missing merchant id' to
    ?token=, and 200 with the header, where every admin route refuses it with 400."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if with_header else {}
    answer = await client.get(
        "/v1/orders/o-anything", params={"token": ADMIN_TOKEN}, headers=headers
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"][0]["field"] == "token"


async def test_an_order_named_by_too_many_events_keeps_the_first_and_says_truncated(
    client: httpx.AsyncClient, api: Any, campaigns: Any, infra: Any
) -> None:
    shop = campaigns.shop.campaign_id
    order_id = new_id("o")
    await place_order(api, shop, order_id)
    won = conversion(shop, order_id, "creator-ana")
    flood = [on(CONVERSIONS.name, won)]
    for _ in range(MAX_EVENTS_PER_ORDER + 20):
        refund, _ = refund_of(won, 1)
        flood.append(on(REFUNDS.name, refund))
    await produce(infra.kafka_bootstrap, flood)

    async def truncated() -> dict[str, Any] | None:
        answer = await get_outcome(client, order_id)
        body = answer.json()["outcomes"][0] if answer.status_code == 200 else {}
        return body if body.get("truncated") else None

    await until(truncated, "the truncation mark")

    async def decided() -> dict[str, Any] | None:
        body = (await get_outcome(client, order_id)).json()["outcomes"][0]
        return body if body["status"] == "attributed" else None

    # The flood of refunds never pushes out the decision, whichever topic is read first.
    outcome = await until(decided, "the decision beside the flood")
    assert outcome["decision"]["affiliate_id"] == "creator-ana"
    assert len(outcome["refunds"]) == MAX_EVENTS_PER_ORDER


async def test_poison_on_an_indexed_topic_is_dead_lettered_and_the_index_goes_on(
    client: httpx.AsyncClient, api: Any, campaigns: Any, infra: Any, topics: Any
) -> None:
    poison_key = new_id("poison")
    await produce(
        infra.kafka_bootstrap,
        [
            (ORDERS.name, poison_key, b"\xff not json"),
            (CONVERSIONS.name, poison_key, b'{"type": "OrderPlaced", "event_id": "x"}'),
        ],
    )
    order_id = new_id("o")
    await place_order(api, campaigns.shop.campaign_id, order_id)

    async def visible() -> bool:
        return (await get_outcome(client, order_id)).status_code == 200

    await until(visible, "an order after the poison")

    async def letters() -> list[DeadLetter]:
        await topics.settle()
        found = []
        for key, value in topics.records.get("afflux.dlq", []):
            for event in decode_record(value):
                mine = isinstance(event, DeadLetter) and event.consumer == GROUP
                if mine and poison_key in ((key or b"").decode(), event.key):
                    found.append(event)
        # A record read again after a rebalance is dead-lettered again: wait for both
        # topics' letters, not for any two.
        return (
            found
            if {letter.source_topic for letter in found} >= {ORDERS.name, CONVERSIONS.name}
            else []
        )

    found = await until(letters, "both dead letters")
    assert {letter.source_topic for letter in found} == {ORDERS.name, CONVERSIONS.name}
    assert all(letter.reason for letter in found)


async def test_an_event_the_index_cannot_store_is_dead_lettered_and_later_orders_are_indexed(
    client: httpx.AsyncClient, api: Any, campaigns: Any, infra: Any, topics: Any
) -> None:
    """A conversion timed beyond the calendar (written straight to the topic) cannot be
    counted in the brand's days: it used to be retried as if Redis were away, forever,
    and no later order was indexed while /healthz said ok. It then passed the event
    contract and was refused when indexed; event times now stop at the end of 9999, so
    it is refused as it is read."""
    beyond = conversion(campaigns.shop.campaign_id, new_id("far"), "anna").model_copy(
        update={"occurred_at": 10**30}
    )
    await produce(infra.kafka_bootstrap, [on(CONVERSIONS.name, beyond)])
    order_id = new_id("o")
    await place_order(api, campaigns.shop.campaign_id, order_id)

    found = await indexed_after_dead_letter(
        client, topics, order_id, beyond.order_id, "the event the index cannot store"
    )
    assert found.source_topic == CONVERSIONS.name
    assert "occurred_at" in found.reason, found.reason
    assert found.error_class == "ValidationError"


async def test_an_order_past_the_apis_bounds_written_to_the_topic_is_dead_lettered_not_kept(
    client: httpx.AsyncClient, api: Any, campaigns: Any, infra: Any, topics: Any
) -> None:
    """The worker refuses such an order; the index kept its 300 KB customer id for the
    400 days of its retention, answering it as received."""
    shop = campaigns.shop.campaign_id
    oversized = OrderPlaced(
        event_id=new_id("order-ev"),
        occurred_at=int(time.time() * 1000),
        order_id=new_id("huge"),
        campaign_id=shop,
        merchant_id="merchant-a",
        kind="sale",
        amount_minor=4_999,
        currency="EUR",
        customer_id="c" * 300_000,
    )
    await produce(infra.kafka_bootstrap, [on(ORDERS.name, oversized)])
    order_id = new_id("o")
    await place_order(api, shop, order_id)

    found = await indexed_after_dead_letter(
        client, topics, order_id, oversized.order_id, "the oversized order"
    )
    assert "customer_id" in found.reason, found.reason
    assert (await get_outcome(client, oversized.order_id)).status_code == 404


async def test_refused_copies_of_an_order_never_push_out_the_copy_taken_nor_its_answer(
    client: httpx.AsyncClient, api: Any, campaigns: Any, infra: Any
) -> None:
    """Sixty copies written to the wrong partition, each refused by the worker (its letter
    on afflux.dlq), then the copy taken and its answer: letters counted with the answers
    filled the order's bound and the answer was never stored (it read refused for good)."""
    shop = campaigns.shop.campaign_id
    order_id = new_id("o")
    await place_order(api, shop, order_id)
    records = []
    for n in range(60):
        copy = OrderPlaced(
            event_id=f"{order_id}-copy-{n}",
            occurred_at=int(time.time() * 1000),
            order_id=order_id,
            campaign_id=shop,
            merchant_id="merchant-a",
            amount_minor=4_999,
            currency="EUR",
            visitor_id="v-elsewhere",
        )
        records.append(on(ORDERS.name, copy))
        letter = DeadLetter(
            event_id=f"dl-{order_id}-{n}",
            occurred_at=int(time.time() * 1000),
            source_topic=ORDERS.name,
            source_partition=0,
            source_offset=n,
            consumer="afflux-attribution",
            reason="key_mismatch: a OrderPlaced on orders is keyed by its visitor_id …",
            error_class="Rejected",
            key=order_id,
            value=copy.model_dump_json(),
        )
        records.append((DLQ.name, order_id, encode(letter)))
    records.append(on(CONVERSIONS.name, conversion(shop, order_id, "creator-ana")))
    await produce(infra.kafka_bootstrap, records)

    async def decided() -> dict[str, Any] | None:
        answer = await get_outcome(client, order_id)
        body = answer.json()["outcomes"][0] if answer.status_code == 200 else {}
        refused = len(body.get("refusals", ()))
        return body if body.get("status") == "attributed" and refused == 60 else None

    outcome = await until(decided, "the answer beside sixty refused copies")
    assert outcome["decision"]["affiliate_id"] == "creator-ana"
    assert outcome["refused_reason"] is None
    assert outcome["truncated"] is False
