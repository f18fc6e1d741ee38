"""The payouts process's what-if bounds on the session broker (``payouts.whatif``): one
replay at a time (a second at once is a 429, and the first still answers), a read past
``AFFLUX_WHATIF_MAX_EVENTS`` is a 413, and neither a refusal nor a finished replay keeps
the process's one replay slot: the next replay runs. Counted in
``afflux_whatif_replays_total`` by outcome. A merchant whose replay just ended waits as
long as it took while another waits, so that one goes first."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from afflux.bench.feed import produce
from afflux.payouts import whatif
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.whatif import replay_draft
from afflux.payouts.whatif_turns import Turns
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.diff import WhatIfDiff
from afflux.shared.core.whatif.log import EVER
from afflux.shared.events import ClickRecorded
from afflux.shared.io.http.problems import Problem

pytestmark = pytest.mark.integration

CAMPAIGN = "whatif-bounds-it"
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": CAMPAIGN,
        "merchant_id": "m",
        "currency": "EUR",
        "plan": {"sale": {"rate": {"percent": "10"}}},
    }
)
VERSIONS = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)
DRAFT = TERMS.model_copy(update={"model": "first_click"})


def anyone() -> str:
    """A principal of its own: each replay here is the first of whoever asks it."""
    return f"merchant:{uuid.uuid4().hex}"


def settings(infra: Any, **bounds: Any) -> PayoutsSettings:
    return PayoutsSettings(kafka_bootstrap=infra.kafka_bootstrap, **bounds)


def outcomes(metrics: PayoutsMetrics) -> dict[str, float]:
    return {
        s.labels["outcome"]: s.value
        for m in metrics.whatif.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


@pytest.fixture(autouse=True)
def fresh_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A waiter refused in another test counts no more here."""
    monkeypatch.setattr(whatif, "_TURNS", Turns())


@pytest.fixture(scope="module")
def clicks_on_the_topic(infra: Any) -> None:
    clicks = [
        ClickRecorded(
            event_id=f"wb-{n}",
            occurred_at=1_793_491_200_000 + n,
            click_id=f"wb-click-{n}",
            link_code="l",
            affiliate_id="ana",
            campaign_id=CAMPAIGN,
            visitor_id=f"wb-v{n}",
        )
        for n in range(20)
    ]
    asyncio.run(produce(infra.kafka_bootstrap, clicks, infra.partitions))


def test_a_second_replay_at_once_is_refused_and_the_first_still_answers(
    infra: Any, clicks_on_the_topic: None
) -> None:
    metrics = PayoutsMetrics()

    async def both() -> list[Any]:
        return await asyncio.gather(
            replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, anyone()),
            replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, anyone()),
            return_exceptions=True,
        )

    first, second = asyncio.run(both())
    assert isinstance(second, Problem), second
    assert second.status == 429
    assert "another what-if is running" in second.reason
    assert not isinstance(first, BaseException), first
    assert first.campaign_id == CAMPAIGN
    assert outcomes(metrics) == {"busy": 1.0, "done": 1.0}


def test_a_read_past_the_events_bound_is_a_413_and_frees_the_slot(
    infra: Any, clicks_on_the_topic: None
) -> None:
    metrics = PayoutsMetrics()
    small = settings(infra, whatif_max_events=5)
    with pytest.raises(Problem) as refused:
        asyncio.run(replay_draft(small, metrics, VERSIONS, DRAFT, EVER, anyone()))
    assert refused.value.status == 413
    assert "more than 5 events" in refused.value.reason

    # The slot is free again: the same replay within the bound runs to its answer.
    diff = asyncio.run(replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, anyone()))
    assert diff.campaign_id == CAMPAIGN
    assert outcomes(metrics) == {"too_large": 1.0, "done": 1.0}


def test_a_broker_that_is_away_is_a_503_and_frees_the_slot(infra: Any) -> None:
    metrics = PayoutsMetrics()
    away = PayoutsSettings(kafka_bootstrap="127.0.0.1:1", whatif_time_limit_s=2)
    with pytest.raises(Problem) as refused:
        asyncio.run(replay_draft(away, metrics, VERSIONS, DRAFT, EVER, anyone()))
    assert refused.value.status == 503
    diff = asyncio.run(replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, anyone()))
    assert diff.campaign_id == CAMPAIGN


def test_a_campaign_with_more_events_than_may_be_held_is_a_413(
    infra: Any, clicks_on_the_topic: None
) -> None:
    metrics = PayoutsMetrics()
    small = settings(infra, whatif_max_campaign_events=5)
    with pytest.raises(Problem) as refused:
        asyncio.run(replay_draft(small, metrics, VERSIONS, DRAFT, EVER, anyone()))
    assert refused.value.status == 413
    assert "more than 5 events to hold in memory" in refused.value.reason
    # Another campaign's events do not count: a bound the 20 clicks fit in answers.
    diff = asyncio.run(
        replay_draft(
            settings(infra, whatif_max_campaign_events=20), metrics, VERSIONS, DRAFT, EVER, anyone()
        )
    )
    assert diff.campaign_id == CAMPAIGN
    assert outcomes(metrics) == {"too_large": 1.0, "done": 1.0}


def test_a_merchant_whose_replay_just_ended_waits_while_another_does(
    infra: Any, clicks_on_the_topic: None
) -> None:
    """One merchant's key in a loop held the one slot: another tenant's what-ifs were
    refused 19 times in 20."""
    metrics = PayoutsMetrics()
    hog, other = anyone(), anyone()

    async def at_once() -> list[Any]:
        return await asyncio.gather(
            replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, hog),
            replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, other),
            return_exceptions=True,
        )

    ran, busy = asyncio.run(at_once())
    assert not isinstance(ran, BaseException), ran
    assert isinstance(busy, Problem)
    assert "another what-if is running" in busy.reason
    with pytest.raises(Problem) as refused:
        asyncio.run(replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, hog))
    assert refused.value.status == 429
    assert "others are waiting for a what-if: your next may start in" in refused.value.reason
    assert refused.value.headers is not None
    assert int(refused.value.headers["Retry-After"]) >= 1

    diff = asyncio.run(replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, other))
    assert diff.campaign_id == CAMPAIGN
    # The waiter had its turn: the first goes again at once.
    diff = asyncio.run(replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, hog))
    assert diff.campaign_id == CAMPAIGN
    assert outcomes(metrics) == {"done": 3.0, "busy": 2.0}


def test_a_request_gone_before_its_replay_started_frees_the_slot(infra: Any) -> None:
    """A cancelled ``to_thread`` whose thread had not started never ran the replay that
    frees the slot: every later what-if of the process answered 429 for good."""
    metrics = PayoutsMetrics()

    async def scenario() -> WhatIfDiff:
        loop = asyncio.get_running_loop()
        busy = ThreadPoolExecutor(max_workers=1)
        loop.set_default_executor(busy)
        unblock = threading.Event()
        loop.run_in_executor(busy, unblock.wait)  # the one worker is taken
        gone = asyncio.create_task(
            replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, anyone())
        )
        await asyncio.sleep(0.2)  # past the slot's check, queued behind the worker
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        unblock.set()
        return await replay_draft(settings(infra), metrics, VERSIONS, DRAFT, EVER, anyone())

    diff = asyncio.run(scenario())
    assert diff.campaign_id == CAMPAIGN
