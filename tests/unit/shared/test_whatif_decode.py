"""The what-if decoder reads a record value the way the consumers do: a packed record is
split into its events without parsing those of other campaigns, and whatever the shape,
the campaign's log is the one its events give one by one."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.events import ClickRecorded, ContentPublished, Envelope, OrderPlaced
from afflux.shared.whatif_decode import LogReader
from afflux.shared.wire import encode, encode_packed

pytestmark = pytest.mark.unit

AT = 1_793_491_200_000


def click(n: int, campaign: str = "camp", user_agent: str = "Mozilla/5.0") -> ClickRecorded:
    return ClickRecorded(
        event_id=f"e-c{n}",
        occurred_at=AT + n,
        click_id=f"v{n}.k",
        link_code="l",
        affiliate_id=f"creator-{n % 3}",
        campaign_id=campaign,
        visitor_id=f"v{n}",
        user_agent=user_agent,
    )


def order(n: int, campaign: str = "camp") -> OrderPlaced:
    return OrderPlaced(
        event_id=f"e-o{n}",
        occurred_at=AT + 1000 + n,
        order_id=f"o{n}",
        campaign_id=campaign,
        merchant_id="m",
        amount_minor=1000,
        currency="EUR",
        visitor_id=f"v{n}",
    )


def one_by_one(events: list[Envelope]) -> CampaignLog:
    reader = LogReader(CampaignLog("camp"))
    for event in events:
        reader.item(event.model_dump(mode="json"))
    return reader.log


MIXED: list[Envelope] = [
    e for n in range(6) for e in (click(n), click(n, "other"), order(n), order(n, "other"))
]
# A user agent holding what looks like an item boundary and another campaign's event:
# inside a JSON string its quotes are escaped, so it is never split there.
INJECTED = '},{"event_id":"x","type":"OrderPlaced","campaign_id":"camp","order_id":"fake"'


@dataclass(frozen=True)
class Case:
    name: str
    values: tuple[bytes, ...]
    events: int  # every event read, of any campaign


CASES = [
    # one packed record of both campaigns' clicks and orders
    Case("packed", (encode_packed(MIXED),), len(MIXED)),
    # each event a record of its own
    Case("single", tuple(encode(e) for e in MIXED), len(MIXED)),
    # not the compact shape (spaces after the separators): parsed whole, same log
    Case(
        "spaced",
        (json.dumps([e.model_dump(mode="json") for e in MIXED]).encode(),),
        len(MIXED),
    ),
    # a click whose user agent looks like a boundary: one event, never a fake order
    Case(
        "boundary_in_a_string",
        (encode_packed([click(9, user_agent=INJECTED), *MIXED]),),
        len(MIXED) + 1,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_records_give_the_log_their_events_give_one_by_one(case: Case) -> None:
    reader = LogReader(CampaignLog("camp"))
    for value in case.values:
        reader.record(value)
    expected = list(MIXED)
    if case.name == "boundary_in_a_string":
        expected = [click(9, user_agent=INJECTED), *MIXED]
    assert reader.log == one_by_one(expected)
    assert reader.events == case.events
    assert reader.skipped == 0
    assert "fake" not in reader.log.order_ids


def test_a_tombstone_or_a_bad_record_is_skipped_and_counted() -> None:
    reader = LogReader(CampaignLog("camp"))
    reader.record(None)
    reader.record(b'[{"event_id":"x", "campaign_id":"camp"')
    reader.record(b'{"event_id":"e","type":"OrderPlaced","campaign_id":"camp"}')  # no order_id
    assert reader.skipped == 3
    assert reader.log.events == 0


def test_a_content_first_published_for_another_campaign_claims_nothing_here() -> None:
    """A content never moves across campaigns: the worker and the ledger refuse another
    campaign's publication of it, so its handle names nobody there in the what-if too."""

    def published(n: int, campaign: str, creator: str, by: str) -> ContentPublished:
        return ContentPublished(
            event_id=f"p{n}", occurred_at=1_793_491_200_000 + n, content_id="c2",
            platform="ig", affiliate_id=creator, campaign_id=campaign, kind="post",
            url="https://ig.example/c2", published_at=1_793_491_200_000 + n, handle="h",
            reported_by=by,
        )  # fmt: skip

    reader = LogReader(log=CampaignLog(campaign_id="A"))
    for event in (published(0, "B", "y", "merchant"), published(1, "A", "z", "admin")):
        reader.content_record(encode(event), event.occurred_at)

    assert reader.log.handle_claims == set()


@pytest.mark.parametrize("make", [click, order])
def test_a_packed_record_past_the_bound_counts_for_nothing_as_the_worker_refuses_it(
    make: object,
) -> None:
    events = [make(n) for n in range(201)]  # type: ignore[operator]
    reader = LogReader(CampaignLog("camp"))
    reader.record(encode_packed(events))
    at_the_bound = LogReader(CampaignLog("camp"))
    at_the_bound.record(encode_packed(events[:200]))

    assert (reader.events, reader.skipped) == (0, 1)
    assert at_the_bound.events == 200
