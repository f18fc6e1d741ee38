"""Same winners, any arrival: the join, fed each seeded scenario's clicks and orders at
random broker delays (most within the margin, some seconds late, some hours late, so
clicks come after their orders were decided) and ticked at random intervals, nets to
the oracle's conversions once its corrections are counted: winner, rule, click and
amount of every order, from event times alone."""

from __future__ import annotations

import random

import pytest

from afflux.attribution.content_view import ContentBook
from afflux.attribution.handlers import Campaigns, JoinHandler
from afflux.attribution.metrics import AttributionMetrics
from afflux.oracle import attribute, generate, net_outcomes
from afflux.oracle.batch import NetOutcome
from afflux.shared.events import (
    CampaignTermsPublished,
    ClickRecorded,
    ConversionAttributed,
    Envelope,
    OrderPlaced,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.topics import CLICKS, ORDERS

pytestmark = pytest.mark.unit
SEEDS = range(40)
SAFE_MARGIN_MS = 100
HOUR_MS = 3_600_000


def broker_delay(rng: random.Random) -> int:
    draw = rng.random()
    if draw < 0.7:
        return rng.randint(0, 500)
    if draw < 0.9:
        return rng.randint(0, 10_000)
    return rng.randint(0, 6 * HOUR_MS)


def joined(seed: int) -> tuple[list[ConversionAttributed], dict[tuple[str, str], NetOutcome]]:
    """The join's conversions for scenario ``seed`` in a random arrival, and the oracle's."""
    scenario = generate(seed)
    directory = CampaignDirectory()
    for cid, versions in scenario.campaigns.items():
        directory.apply(
            CampaignTermsPublished(
                event_id=f"t-{cid}", occurred_at=0, campaign_id=cid, versions=tuple(versions)
            )
        )
    book = ContentBook()
    book.ready.set()
    handler = JoinHandler(
        Campaigns(directory), AttributionMetrics(), 400 * 24 * HOUR_MS, content=book
    )
    state = handler.new_state()
    inputs = [e for e in scenario.events if isinstance(e, ClickRecorded | OrderPlaced)]
    rng = random.Random(seed * 7 + 1)
    arrivals = sorted((e.occurred_at + broker_delay(rng), n, e) for n, e in enumerate(inputs))
    out: list[Envelope] = []
    ticked = 0
    for ts, _, event in arrivals:
        topic = CLICKS.name if isinstance(event, ClickRecorded) else ORDERS.name
        outputs, _ = handler.on_event(state, topic, event, ts)
        out += [e for _, _, e in outputs]
        if ts - ticked > rng.choice([25, 250, 1000]):
            out += [e for _, _, e in handler.due(state, ts - SAFE_MARGIN_MS)]
            ticked = ts
    out += [e for _, _, e in handler.due(state, arrivals[-1][0] + 10 * 24 * HOUR_MS)]
    conversions = [e for e in out if isinstance(e, ConversionAttributed)]
    return conversions, net_outcomes(attribute(inputs, scenario.campaigns).conversions)


@pytest.mark.parametrize("seed", SEEDS)
def test_join_nets_to_the_oracle_whatever_the_arrival_delays(seed: int) -> None:
    conversions, want = joined(seed)
    assert want, "the scenario must have conversions to compare"
    assert net_outcomes(conversions) == want


def test_the_delays_make_the_join_correct_decisions() -> None:
    """The seeds above would prove little if no click ever came after its order's decision."""
    assert any(c.supersedes for seed in SEEDS for c in joined(seed)[0])
