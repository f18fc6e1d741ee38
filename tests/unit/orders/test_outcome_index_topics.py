"""The order-outcome index takes every event that travels on a topic it reads."""

from __future__ import annotations

import pytest

from afflux.orders.outcome_index import CARRIED
from afflux.shared.schemas import EVENT_TOPICS

pytestmark = pytest.mark.unit

TRAVELLING = sorted((name, topic.name) for name, topics in EVENT_TOPICS.items() for topic in topics)


@pytest.mark.parametrize(("event", "topic"), [t for t in TRAVELLING if t[1] in CARRIED])
def test_an_event_that_travels_on_an_indexed_topic_is_taken_not_dead_lettered(
    event: str, topic: str
) -> None:
    # e.g. the worker forwards every LeadConfirmed to the conversions topic for the ledger:
    # an index that did not take it there dead-lettered each one as unexpected.
    assert event in {model.__name__ for model in CARRIED[topic]}
