"""The journal step keeps each creator's reach counters (its contents' latest snapshots
summed) and engagement pay beside the other KPI counters, by the difference a batch
makes: a larger snapshot adds, a smaller one takes back, a stale one changes nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.engagement import ContentEvent, Publication, Snapshot
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "shoes",
        "merchant_id": "m",
        "currency": "EUR",
        "plan": {"engagement": {"values": {"like_minor": "1"}, "minimum_interactions": 100}},
    }
)
VERSIONS = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)


def published(content: str, creator: str = "ana") -> Publication:
    return Publication(
        f"instagram:{content}", creator, "shoes", "post", NOV_1 + MS_PER_DAY, content
    )


def snap(content: str, hour: int, likes: int, views: int = 1_000) -> Snapshot:
    key = f"instagram:{content}"
    return Snapshot(
        key, NOV_1 + hour * 3_600_000, views, 2 * views, likes, 5, 1, 2, 10_000, f"{key}@{hour}"
    )


def counters(*batches: tuple[ContentEvent, ...]) -> list[Counter[str]]:
    """The KPI counters after each batch."""
    state = PeriodState("shoes", "2026-11", "EUR", VERSIONS)
    total: Counter[str] = Counter()
    out = []
    for batch in batches:
        total.update(state.step(StepInput(content=batch)).kpis)
        out.append(Counter({k: v for k, v in total.items() if v}))
    return out


def test_a_snapshot_counts_its_contents_reach_and_its_pay() -> None:
    [after] = counters((published("C1"), snap("C1", 1, likes=300)))
    assert after == Counter(
        {
            "contents|ana": 1,
            "views|ana": 1_000,
            "impressions|ana": 2_000,
            "likes|ana": 300,
            "comments|ana": 5,
            "shares|ana": 1,
            "saves|ana": 2,
            "followers|ana": 10_000,
            "engagement_pay|ana": 300,
            "commission|ana": 300,
            "commission|ana|2026-11-02": 300,
        }
    )


def test_a_later_snapshot_replaces_the_earlier_and_a_drop_takes_back() -> None:
    grown, dropped, stale = counters(
        (published("C1"), snap("C1", 1, likes=300), snap("C1", 2, likes=400, views=1_500)),
        (snap("C1", 3, likes=250),),
        (snap("C1", 2, likes=900),),  # older than the latest: ignored
    )
    assert (grown["likes|ana"], grown["views|ana"], grown["contents|ana"]) == (400, 1_500, 1)
    assert (dropped["likes|ana"], dropped["views|ana"], dropped["contents|ana"]) == (250, 1_000, 1)
    assert dropped["engagement_pay|ana"] == dropped["commission|ana"] == 250
    assert stale == dropped


def test_contents_of_several_creators_add_up_per_creator() -> None:
    [after] = counters(
        (
            published("C1"),
            published("C2"),
            published("C3", creator="ben"),
            snap("C1", 1, likes=10),
            snap("C2", 1, likes=20),
            snap("C3", 1, likes=40),
        )
    )
    assert (after["contents|ana"], after["likes|ana"], after["followers|ana"]) == (2, 30, 20_000)
    assert (after["contents|ben"], after["likes|ben"]) == (1, 40)
    assert after["engagement_pay|ana"] == 0  # below the minimum of 100 per content


def test_a_publication_without_stats_has_no_reach_yet() -> None:
    [after] = counters((published("C1"),))
    assert not any(name.startswith(("contents|", "views|")) for name in after)
