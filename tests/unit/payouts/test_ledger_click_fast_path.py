"""The ledger reads records of clicks through the fast decoder (``afflux.shared.click_decode``)
and places them exactly as through the general path: the same click items in the batch,
the same dead letters with the same reasons and item numbers, the same items kept for a
batch applied one by one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

import afflux.payouts.consumer as consumer_module
from afflux.payouts.consumer import LedgerConsumer
from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.click_decode import DecodedClick
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished, ClickRecorded, ContentPublished
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.wire import encode

pytestmark = pytest.mark.unit

NOV_15 = 1_794_700_800_000
DAY = 86_400_000


class RecordingConsumer(LedgerConsumer):
    """Never started, never connected: its dead letters are kept here, not produced."""

    letters: list[tuple[str, str, int | None]]

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        reason: str,
        error_class: str = "Rejected",
        item: int | None = None,
    ) -> None:
        self.letters.append((reason, error_class, item))


def _consumer() -> RecordingConsumer:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "plan": {"click": {"per_click_minor": 5, "paid_click_cap": 100}},
        }
    )
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id="camp",
            versions=(TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),),
        )
    )
    redis: Redis[bytes] = Redis(host="127.0.0.1", port=1)  # never asked: clicks only place
    consumer = RecordingConsumer(
        bootstrap="127.0.0.1:1",
        group_id="g",
        instance_id=None,
        store=LedgerStore(redis, Keys("afx:test:")),
        directory=directory,
        producer=None,  # type: ignore[arg-type]
        metrics=PayoutsMetrics(),
    )
    consumer.letters = []
    return consumer


def click(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev-{n}",
        "type": "ClickRecorded",
        "occurred_at": NOV_15 + n,
        "click_id": f"c-{n}",
        "link_code": "lnk",
        "affiliate_id": f"creator-{n % 3}",
        "campaign_id": "camp",
        "visitor_id": f"v-{n}",
        **changes,
    }


CASES: dict[str, bytes] = {
    "one_click": orjson.dumps(click(1)),
    "packed_with_flags_and_content": orjson.dumps(
        [
            click(1, utm={"utm_content": "youtube:v-1"}),
            click(2, flags=["bot"], is_bot=True),
            click(3, is_duplicate=True),
            click(4, flags=["datacenter_ip"], is_duplicate=True),
        ]
    ),
    "packed_with_a_campaign_without_terms": orjson.dumps(
        [click(1), click(2, campaign_id="nowhere"), click(3)]
    ),
    "one_click_of_a_campaign_without_terms": orjson.dumps(click(1, campaign_id="nowhere")),
    "one_array_of_one_click": orjson.dumps([click(7)]),
    "spaces_before_the_array": b"  \n" + orjson.dumps([click(1), click(2)]),
    "packed_with_a_click_past_its_record": orjson.dumps(
        [click(1), click(2, occurred_at=NOV_15 + 60 * DAY), click(3)]
    ),
}


async def placed(
    value: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch, stamped: int = NOV_15
) -> Any:
    consumer = _consumer()
    consumer.clock = lambda: NOV_15
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(consumer_module, "decoded_clicks", lambda value: None)
        record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
            "clicks", 0, 5, stamped, 0, b"k", value, None, 1, len(value), []
        )
        batch = Batch()
        items = await consumer.placed(record, batch)
        again = Batch()
        for item in items:
            consumer.placement.place(item.event, again)
    await consumer.consumer.stop()
    await consumer.store.redis.aclose()
    kinds = {type(item.event) for item in items}
    return (
        batch.clicks,
        again.clicks,
        [(i.index, i.occurred_at) for i in items],
        consumer.letters,
    ), kinds


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_record_of_clicks_is_placed_as_the_general_path_places_it(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, fast_kinds = await placed(CASES[name], True, monkeypatch)
    general, general_kinds = await placed(CASES[name], False, monkeypatch)
    assert fast == general
    assert fast_kinds <= {DecodedClick}
    assert general_kinds <= {ClickRecorded}
    assert fast[0] == fast[1]  # placed again one by one: the same items


async def test_a_click_of_a_campaign_without_terms_is_dead_lettered_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (clicks, _, items, letters), _ = await placed(
        CASES["packed_with_a_campaign_without_terms"], True, monkeypatch
    )
    assert [c.click_id for c in clicks] == ["c-1", "c-3"]
    assert [index for index, _ in items] == [0, 2]
    assert letters == [("campaign 'nowhere' has no terms", "Rejected", 1)]


async def test_an_odd_click_takes_the_general_path_and_keeps_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = orjson.dumps(
        [click(1), click(2, occurred_at="2026-11-15T00:00:00Z"), click(3, flags=["Bad"])]
    )
    (clicks, _, items, letters), kinds = await placed(value, True, monkeypatch)
    assert kinds == {ClickRecorded}
    assert [c.click_id for c in clicks] == ["c-1", "c-2"]
    assert [index for index, _ in items] == [0, 1]
    assert len(letters) == 1
    reason, error_class, index = letters[0]
    assert index == 2
    assert error_class == "ValidationError"
    assert "flags" in reason


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    ("stamped", "why"),
    [
        (NOV_15, "after the record's timestamp"),
        # a producer stamped the record as far ahead: the consumer's own clock tells
        (NOV_15 + 60 * DAY, "after this consumer's clock"),
    ],
)
async def test_a_click_dated_past_its_record_or_the_clock_is_dead_lettered_not_paid(
    stamped: int, why: str, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the attribution worker and the oracle leave it out: paid per click here, a click
    written straight to the topic 60 days ahead was paid in a period to come."""
    value = orjson.dumps([click(1), click(2, occurred_at=NOV_15 + 60 * DAY), click(3)])
    (clicks, _, items, letters), _ = await placed(value, fast, monkeypatch, stamped)
    assert [c.click_id for c in clicks] == ["c-1", "c-3"]
    assert [index for index, _ in items] == [0, 2]
    [(reason, error_class, index)] = letters
    assert (error_class, index) == ("Rejected", 1)
    assert reason.startswith("event_time_in_future")
    assert why in reason


async def test_a_publication_past_the_consumers_clock_is_dead_lettered_though_stamped_alike() -> (
    None
):
    """A content's times are held to this consumer's clock as well as to its record's
    timestamp, which the producer sets."""
    consumer = _consumer()
    consumer.clock = lambda: NOV_15
    ahead = NOV_15 + 365 * DAY
    value = encode(
        ContentPublished(
            event_id="pub-1",
            occurred_at=ahead,
            content_id="p1",
            platform="tiktok",
            affiliate_id="creator-1",
            campaign_id="camp",
            kind="post",
            url="https://tiktok.example/p1",
            published_at=ahead,
        )
    )
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        "content", 0, 5, ahead, 0, b"k", value, None, 1, len(value), []
    )
    assert await consumer.placed(record, Batch()) == []
    await consumer.consumer.stop()
    await consumer.store.redis.aclose()
    [(reason, error_class, _)] = consumer.letters
    assert error_class == "Rejected"
    assert reason.startswith("event_time_in_future")
    assert "after this consumer's clock" in reason
