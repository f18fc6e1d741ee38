"""What-if through the real topics: a campaign's events produced as afflux producers
produce them (keyed, packed), read back by ``run_whatif`` on the session broker, give the
diff the replay gives for the same events in memory; nothing is written to any topic and
the events bound refuses a read past it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from afflux.bench.feed import produce
from afflux.oracle import generate
from afflux.shared.core.terms import CommissionPlan, TermsVersion
from afflux.shared.core.whatif.diff import whatif
from afflux.shared.core.whatif.log import EVER, CampaignLog
from afflux.shared.events import Envelope
from afflux.shared.io.whatif_source import ReplayBounds, ReplayRefused, read_to_end, run_whatif
from afflux.shared.topics import ALL_TOPICS
from afflux.shared.whatif_decode import LogReader

pytestmark = pytest.mark.integration

CAMPAIGN = "whatif-it-fashion"
PLAN = CommissionPlan.model_validate(
    {
        "sale": {"rate": {"percent": "8"}},
        "tiers": [{"from_sales": 3, "rate": {"percent": "10"}}],
        "lead_minor": 300,
        "click": {"per_click_minor": 7},
    }
)


def scenario() -> tuple[list[Envelope], tuple[TermsVersion, ...]]:
    """The seeded scenario's fashion campaign under a campaign id of this test alone."""
    found = generate(23, visitors=150, prefix="wit")
    versions = tuple(
        v.model_copy(
            update={"terms": v.terms.model_copy(update={"campaign_id": CAMPAIGN, "plan": PLAN})}
        )
        for v in found.campaigns["acme-fashion"]
    )
    events = [
        e.model_copy(update={"campaign_id": CAMPAIGN})
        for e in found.events
        if getattr(e, "campaign_id", None) == "acme-fashion"
    ]
    return events, versions


async def records_on_every_topic(bootstrap: str) -> int:
    loop = asyncio.get_running_loop()
    names = [t.name for t in ALL_TOPICS]
    return await read_to_end(bootstrap, names, lambda _: None, deadline=loop.time() + 60)


def test_whatif_from_the_topics_equals_the_replay_in_memory(infra: Any) -> None:
    events, versions = scenario()
    draft = versions[-1].terms.model_copy(update={"model": "first_click"})
    # The session broker holds other tests' records, poison among them, which the read
    # counts as skipped whatever their campaign: this campaign's events add none.
    _, earlier = asyncio.run(
        run_whatif(infra.kafka_bootstrap, versions, draft, EVER, ReplayBounds())
    )
    asyncio.run(produce(infra.kafka_bootstrap, events, infra.partitions, pack=50))
    before = asyncio.run(records_on_every_topic(infra.kafka_bootstrap))

    diff, reader = asyncio.run(
        run_whatif(infra.kafka_bootstrap, versions, draft, EVER, ReplayBounds())
    )

    memory = LogReader(CampaignLog(CAMPAIGN))
    for event in events:
        memory.item(event.model_dump(mode="json"))
    expected = whatif(memory.log, versions, draft)
    assert reader.log.events == memory.log.events > 0
    assert reader.skipped == earlier.skipped
    assert diff.as_dict() == expected.as_dict()
    assert not diff.empty, "first click moves some of the scenario's orders"
    assert asyncio.run(records_on_every_topic(infra.kafka_bootstrap)) == before  # nothing written


def test_a_read_past_the_events_bound_is_refused(infra: Any) -> None:
    events, versions = scenario()
    asyncio.run(produce(infra.kafka_bootstrap, events[:20], infra.partitions))
    with pytest.raises(ReplayRefused, match="more than 5 events"):
        asyncio.run(
            run_whatif(
                infra.kafka_bootstrap, versions, versions[-1].terms, EVER, ReplayBounds(5, 30)
            )
        )
