"""A renewal order id sent again with another renewal number, amount or first order is a
409 naming the field and what was accepted (in another currency, a 422 as any renewal in
it), on the real broker and Redis.
Before, each was answered "200 duplicate" though only the first body was produced: the
merchant read renewals 3 to 21, or a corrected amount, as recorded, and the creator was
never paid for them. The same renewal sent again stays the idempotent duplicate."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.orders.claims import ClaimStore, NewOrder
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.campaign_publish import publish_terms

pytestmark = pytest.mark.integration
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
async def switched(infra: Any, orders_app: Any) -> str:
    """A campaign of merchant-a paid in EUR (a campaign's currency never changes)."""
    campaign = f"orders-renew-{uuid.uuid4().hex[:8]}"
    terms = CampaignTerms.model_validate(
        {"campaign_id": campaign, "merchant_id": "merchant-a", "currency": "EUR"}
    )
    await publish_terms(infra.kafka_bootstrap, [(terms, 0)])
    directory = orders_app.state.directory
    for _ in range(200):
        if campaign in directory:
            break
        await asyncio.sleep(0.05)
    return campaign


def renewal(campaign: str, first: str, renewal_id: str, **changes: Any) -> dict[str, Any]:
    """Renewal 2 of ``first``, 20.00 EUR, two hours old."""
    body: dict[str, Any] = {
        "order_id": first,
        "renewal_number": 2,
        "renewal_order_id": renewal_id,
        "campaign_id": campaign,
        "occurred_at": int(time.time() * 1000) - 2 * HOUR_MS,
        "amount_minor": 2000,
        "currency": "EUR",
    }
    return body | changes


def renewals_of(events: list[dict[str, Any]], renewal_id: str) -> list[tuple[Any, ...]]:
    return [
        (e["order_id"], e["renewal_number"], e["amount_minor"], e["currency"])
        for e in events
        if e.get("renewal_order_id") == renewal_id
    ]


@pytest.mark.parametrize(
    ("changes", "field", "recorded"),
    [
        ({"renewal_number": 3}, "renewal_number", "renewal_number 2"),
        ({"amount_minor": 999_999}, "amount_minor", "amount_minor 2000"),
        ({"amount_minor": 5}, "amount_minor", "amount_minor 2000"),
        # another subscription's renewal: the id is taken, as a refund id by another order
        ({"order_id": "another-subscription"}, "renewal_order_id", "a renewal of order sub-"),
    ],
    ids=["renewal_number", "higher_amount", "lower_amount", "first_order"],
)
async def test_a_renewal_sent_again_with_other_content_is_a_conflict_naming_the_field(
    api: Any,
    switched: str,
    topics: Any,
    changes: dict[str, Any],
    field: str,
    recorded: str,
) -> None:
    first, renewal_id = api.new_id("sub"), api.new_id("renewal")
    body = renewal(switched, first, renewal_id)
    accepted = await api.post("/v1/renewals", body)
    assert accepted.status_code == 202, accepted.text
    before = await topics.settle()

    again = await api.post("/v1/renewals", body | changes)

    assert again.status_code == 409, again.text
    [detail] = again.json()["detail"]
    assert detail["field"] == field
    assert recorded in detail["reason"], detail["reason"]
    assert renewal_id in detail["reason"]
    assert await topics.written_since(before) == {}
    # The renewal as accepted is still the idempotent duplicate, and nothing else of the
    # id is on the topic.
    retried = await api.post("/v1/renewals", body)
    assert (retried.status_code, retried.json()["status"]) == (200, "duplicate"), retried.text
    assert await topics.written_since(before) == {}


async def test_a_renewal_sent_again_in_another_currency_is_refused_never_a_duplicate(
    api: Any, switched: str, topics: Any
) -> None:
    """Its campaign is paid in one currency for good, so the copy in USD is refused as any
    renewal in USD would be; the claim's own currency check stays behind it (below)."""
    first, renewal_id = api.new_id("sub"), api.new_id("renewal")
    body = renewal(switched, first, renewal_id)
    assert (await api.post("/v1/renewals", body)).status_code == 202
    before = await topics.settle()

    again = await api.post("/v1/renewals", body | {"currency": "USD"})

    assert again.status_code == 422, again.text
    assert again.json()["detail"][0]["field"] == "currency"
    assert await topics.written_since(before) == {}


async def test_an_identical_renewal_sent_again_is_a_duplicate(
    api: Any, switched: str, topics: Any
) -> None:
    first, renewal_id = api.new_id("sub"), api.new_id("renewal")
    body = renewal(switched, first, renewal_id)
    before = await topics.settle()

    answers = [await api.post("/v1/renewals", body) for _ in range(3)]

    assert [(a.status_code, a.json()["status"]) for a in answers] == [
        (202, "accepted"),
        (200, "duplicate"),
        (200, "duplicate"),
    ]
    await topics.settle()
    assert renewals_of(topics.since(before, "refunds"), renewal_id) == [(first, 2, 2000, "EUR")]


async def test_twenty_renewal_numbers_sent_at_once_under_one_id_take_it_once(
    api: Any, switched: str, topics: Any
) -> None:
    """The requests that find the first one's claim in flight wait for it to settle, then
    are held to what it recorded: none is answered as a duplicate of it."""
    first, shared = api.new_id("sub"), api.new_id("renewal")
    before = await topics.settle()

    answers = await asyncio.gather(
        *(
            api.post("/v1/renewals", renewal(switched, first, shared, renewal_number=number))
            for number in range(2, 22)
        )
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [202] + [409] * 19, [a.text for a in answers]
    [taken] = [a for a in answers if a.status_code == 202]
    await topics.settle()
    [(_, number, _, _)] = renewals_of(topics.since(before, "refunds"), shared)
    for refused in (a for a in answers if a.status_code == 409):
        [detail] = refused.json()["detail"]
        assert detail["field"] == "renewal_number"
        assert f"renewal_number {number}" in detail["reason"], detail["reason"]
    assert taken.json()["renewal_order_id"] == shared
    # The numbers refused under the shared id were never taken: each is accepted under
    # its own renewal order id.
    other = 3 if number == 2 else 2
    own = await api.post(
        "/v1/renewals", renewal(switched, first, f"{shared}-{other}", renewal_number=other)
    )
    assert own.status_code == 202, own.text


@pytest.fixture
async def claims(infra: Any) -> AsyncIterator[ClaimStore]:
    redis: Redis = Redis.from_url(infra.redis_url.rsplit("/", 1)[0] + "/2")
    try:
        yield ClaimStore(redis, f"afx:renew-{uuid.uuid4().hex[:8]}", pending_ms=5_000, ttl_s=60)
    finally:
        await redis.aclose()


def renewal_claim(number: int = 2, amount: int = 2000, currency: str = "EUR") -> NewOrder:
    return NewOrder(
        "c", "sub-1-r", "sub-1", amount, "renewal", renewal_number=number, currency=currency
    )


async def test_a_renewal_claim_written_anew_by_a_retried_done_mark_keeps_its_number(
    claims: ClaimStore,
) -> None:
    """A claim Redis lost is written again from the renewal's own fields
    (``ClaimStore.mark_done``), so a later number under its id is still a conflict."""
    await claims.mark_done([renewal_claim()])
    now = int(time.time() * 1000)

    other = await claims.reserve_renewal(renewal_claim(number=3), now)
    same = await claims.reserve_renewal(renewal_claim(), now)

    assert (other.status, other.field, other.recorded) == ("conflict", "renewal_number", 2)
    assert same.status == "duplicate"


async def test_a_renewal_claim_kept_before_its_number_was_compares_its_amount_only(
    claims: ClaimStore,
) -> None:
    """Claims are kept 400 days: one written before the number and currency were kept
    beside it is not a conflict for them (nothing to compare), but still for its amount."""
    key = claims.order_key("c", "sub-1-r")
    await claims.redis.hset(
        key, mapping={"state": "done", "pkey": "sub-1", "amount": "2000", "kind": "renewal"}
    )
    now = int(time.time() * 1000)

    number = await claims.reserve_renewal(renewal_claim(number=3, currency="USD"), now)
    amount = await claims.reserve_renewal(renewal_claim(amount=2001), now)

    assert number.status == "duplicate"
    assert (amount.status, amount.field, amount.recorded) == ("conflict", "amount_minor", 2000)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "sub-1-r"),  # lost with the claim: written again
        ("sub-1-r", "sub-1-r"),  # kept: as it was
        ("sub-1-other", "sub-1-other"),  # taken by another id while it was gone: left to it
    ],
    ids=["lost", "kept", "taken_meanwhile"],
)
async def test_a_retried_done_mark_writes_a_lost_renewal_number_again_and_only_then(
    claims: ClaimStore, before: str | None, after: str
) -> None:
    """Redis that lost a renewal's claim lost its number's key with it: the claim alone
    written anew let the same number be accepted again under another renewal order id."""
    key = claims.renewal_number_key("c", "sub-1", 2)
    if before is not None:
        await claims.redis.set(key, before, ex=60)
    sale = NewOrder("c", "o-1", "v-1", 100, "sale")

    for _ in range(2):  # a mark retried twice writes the same
        await claims.mark_done([renewal_claim(), sale])

    assert await claims.redis.get(key) == after.encode()
    assert 0 < await claims.redis.ttl(key) <= 60
    assert await claims.redis.keys(f"{claims.prefix}:rn:*") == [key.encode()]  # none for a sale
    late = NewOrder("c", "sub-1-late", "sub-1", 2000, "renewal", renewal_number=2, currency="EUR")
    taken = await claims.reserve_renewal(late, int(time.time() * 1000))
    assert (taken.status, taken.taken_by) == ("number_taken", after)
