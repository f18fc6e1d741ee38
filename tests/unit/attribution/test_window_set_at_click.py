"""A click's cookie lasts as long as the terms it was set under said: a later version
lengthening the window counts the clicks made under it, not cookies already expired.

Before, only the terms at the order counted, so a click older than the old window
won under a longer new one when the worker still held it, and lost when it had been
pruned under the old, shorter horizon (live): a replay, knowing every version from
the start, kept it and paid another creator, and the batch reference agreed with the
replay, not with the running worker."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.attribution.content_view import ContentBook
from afflux.attribution.handlers import Campaigns, JoinHandler
from afflux.attribution.join import JoinPartition
from afflux.attribution.metrics import AttributionMetrics
from afflux.oracle import attribute
from afflux.oracle.batch import admitted
from afflux.shared.core.attribution import (
    Attributed,
    ClickTouch,
    OrderTouch,
    choose,
    click_windows,
)
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ClickRecorded,
    ConversionAttributed,
    Envelope,
    OrderPlaced,
    OrderUnattributed,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.topics import CLICKS, ORDERS

pytestmark = pytest.mark.unit

DAY = 86_400_000
T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def version(n: int, at: int, window_days: int, **overrides: int) -> TermsVersion:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "cookie_window_days": window_days,
            "window_overrides_days": overrides,
            "lock_days": 30,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    return TermsVersion(version=n, effective_from=at, published_at=at, terms=terms)


@dataclass(frozen=True)
class Case:
    name: str
    versions: tuple[TermsVersion, ...]
    click_day: int
    order_day: int
    winner: str | None  # "alice", or None: outside_window
    who: str = "alice"


SEVEN_THEN_SIXTY = (version(1, 0, 7), version(2, T0 + 60 * DAY, 60))
CASES = [
    Case("a cookie expired under the old window stays expired", SEVEN_THEN_SIXTY, 10, 61, None),
    Case("a cookie alive when the window grows keeps its 7 days", SEVEN_THEN_SIXTY, 55, 63, None),
    Case("a cookie 7 days old set under the old window counts", SEVEN_THEN_SIXTY, 55, 62, "alice"),
    Case("a click set under the longer window lasts 60 days", SEVEN_THEN_SIXTY, 60, 120, "alice"),
    Case("one ms later than 60 days it has expired", SEVEN_THEN_SIXTY, 60, 120, None),
    Case(
        "a shorter window applies to cookies set before it",
        (version(1, 0, 30), version(2, T0 + 20 * DAY, 7)),
        10, 25, None,
    ),
    Case(
        "a creator's longer override counts from when it is in force",
        (version(1, 0, 7), version(2, T0 + 60 * DAY, 7, alice=60)),
        10, 61, None,
    ),
    Case(
        "an override in force at the click keeps the cookie for its length",
        (version(1, 0, 7, alice=60), version(2, T0 + 60 * DAY, 60)),
        10, 61, "alice",
    ),
]  # fmt: skip


def _order_day_ms(case: Case) -> int:
    extra = 1 if case.name.startswith("one ms later") else 0
    return T0 + case.order_day * DAY + extra


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_click_counts_while_its_cookie_lasts_under_the_terms_it_was_set_under(
    case: Case,
) -> None:
    order = OrderTouch("o-1", "camp", _order_day_ms(case))
    click = ClickTouch("c-1", case.who, "camp", T0 + case.click_day * DAY)
    at_order = max(
        (v for v in case.versions if v.effective_from <= order.at), key=lambda v: v.effective_from
    )
    decision = choose(order, [click], at_order.terms, click_window=click_windows(case.versions))
    got = decision.affiliate_id if isinstance(decision, Attributed) else decision.reason
    assert got == (case.winner or "outside_window")


V1, V2 = SEVEN_THEN_SIXTY


def _click(visitor: str, creator: str, at: int) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{visitor}-{at}",
        occurred_at=at,
        click_id=f"{visitor}.{at}",
        link_code="l",
        affiliate_id=creator,
        campaign_id="camp",
        visitor_id=visitor,
    )


def _order(visitor: str, at: int) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-o-{visitor}",
        occurred_at=at,
        order_id=f"o-{visitor}",
        campaign_id="camp",
        merchant_id="m",
        amount_minor=10_000,
        currency="EUR",
        visitor_id=visitor,
    )


def _worker(replay: bool) -> tuple[CampaignDirectory, JoinHandler, JoinPartition]:
    """A join worker knowing V1 alone (live: V2 is published on day 60) or both (a
    replay, which reads the whole campaigns topic first)."""
    directory = CampaignDirectory()
    known = (V1, V2) if replay else (V1,)
    directory.apply(
        CampaignTermsPublished(event_id="t1", occurred_at=0, campaign_id="camp", versions=known)
    )
    book = ContentBook()
    book.ready.set()
    handler = JoinHandler(Campaigns(directory), AttributionMetrics(), 400 * DAY, content=book)
    return directory, handler, handler.new_state()


def _run(replay: bool) -> tuple[dict[str, str | None], list[tuple[Envelope, int]]]:
    """The worker over 61 days of traffic, pruning as it goes; V2 (60-day window) is
    published on day 60 (live) or known from the start (a replay). Per order: its
    winner, or None."""
    directory, handler, state = _worker(replay)
    records: list[tuple[Envelope, int]] = []
    out: list[Envelope] = []

    def send(topic: str, event: ClickRecorded | OrderPlaced) -> None:
        records.append((event, event.occurred_at))
        produced, refused = handler.on_event(state, topic, event, event.occurred_at)
        assert not refused
        out.extend(e for _, _, e in produced)

    send(CLICKS.name, _click("v1", "alice", T0 + 10 * DAY))  # expires on day 17
    send(CLICKS.name, _click("v2", "bob", T0 + 58 * DAY))  # expires on day 65
    for day in range(11, 61):  # other traffic moves the watermark; pruning as usual
        other = _click(f"other{day}", "carl", T0 + day * DAY)
        send(CLICKS.name, other)
        out.extend(e for _, _, e in handler.due(state, other.occurred_at))
        handler.prune(state, other.occurred_at)
    directory.apply(
        CampaignTermsPublished(
            event_id="t2", occurred_at=T0 + 60 * DAY, campaign_id="camp", versions=(V1, V2)
        )
    )
    for visitor in ("v1", "v2"):
        send(ORDERS.name, _order(visitor, T0 + 61 * DAY))
    out.extend(e for _, _, e in handler.due(state, T0 + 63 * DAY))
    return _winners(out), records


def _winners(events: list[Envelope]) -> dict[str, str | None]:
    """Per order: its creator, or None. (Why nobody may differ: a click the worker has
    pruned is no click at all to it, ``no_click``, where the reference, holding every
    click, says ``outside_window``.)"""
    return {
        e.order_id: e.affiliate_id if isinstance(e, ConversionAttributed) else None
        for e in events
        if isinstance(e, ConversionAttributed | OrderUnattributed)
    }


def test_a_lengthened_window_decides_the_same_live_as_in_a_replay_and_in_the_reference() -> None:
    live, records = _run(replay=False)
    replayed, _ = _run(replay=True)
    versions = {"camp": (V1, V2)}
    reference = attribute(admitted(records, 300_000, versions), versions)
    expected = {"o-v1": None, "o-v2": "bob"}
    assert live == expected
    assert replayed == expected
    assert _winners([*reference.conversions, *reference.unmatched]) == expected


def _late_report(replay: bool) -> tuple[list[str], list[Envelope], list[tuple[Envelope, int]]]:
    """Alice's click on day 10, her sale on day 12 reported by the merchant on day 61,
    after V2 (a longer window, so a longer backfill limit) was published on day 60.
    What the worker dead-lettered, what it produced, and every record read."""
    directory, handler, state = _worker(replay)
    records: list[tuple[Envelope, int]] = []
    out: list[Envelope] = []
    dead: list[str] = []

    def send(topic: str, event: ClickRecorded | OrderPlaced, ts: int) -> None:
        records.append((event, ts))
        produced, refused = handler.on_event(state, topic, event, ts)
        dead.extend([refused] if refused else [])
        out.extend(e for _, _, e in produced)

    click = _click("v1", "alice", T0 + 10 * DAY)
    send(CLICKS.name, click, click.occurred_at)
    for day in range(11, 61):
        other = _click(f"other{day}", "carl", T0 + day * DAY)
        send(CLICKS.name, other, other.occurred_at)
        out.extend(e for _, _, e in handler.due(state, other.occurred_at))
        handler.prune(state, other.occurred_at)
    directory.apply(
        CampaignTermsPublished(
            event_id="t2", occurred_at=T0 + 60 * DAY, campaign_id="camp", versions=(V1, V2)
        )
    )
    send(ORDERS.name, _order("v1", T0 + 12 * DAY), T0 + 61 * DAY)
    out.extend(e for _, _, e in handler.due(state, T0 + 63 * DAY))
    return dead, out, records


def test_a_longer_version_does_not_reopen_late_reports_of_orders_before_it() -> None:
    """V1 (7-day window, 30-day lock) takes late reports up to 37 days old; V2 (60 days)
    counted for every order widened that to 90 at once, so a day-12 sale reported on day
    61 was taken: unattributed live (its click pruned under V1's horizon), alice's in a
    replay and in the reference. An order before V2 is held to V1's limit everywhere."""
    live_dead, live_out, records = _late_report(replay=False)
    replay_dead, replay_out, _ = _late_report(replay=True)
    versions = {"camp": (V1, V2)}
    reference = attribute(admitted(records, 300_000, versions), versions)

    assert [d.split(":")[0] for d in live_dead] == ["event_time_too_old"]
    assert [d.split(":")[0] for d in replay_dead] == ["event_time_too_old"]
    assert _winners(live_out) == _winners(replay_out) == {}
    assert _winners([*reference.conversions, *reference.unmatched]) == {}
