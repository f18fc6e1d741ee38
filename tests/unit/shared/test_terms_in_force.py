"""Which version of a campaign's terms is in force at an event time, at every boundary."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from afflux.shared.core.terms import (
    CampaignTerms,
    NoTermsInForce,
    TermsTimeline,
    TermsVersion,
    terms_in_force,
)

pytestmark = pytest.mark.unit

TERMS = CampaignTerms(campaign_id="camp", merchant_id="m", currency="EUR")


def version(number: int, effective_from: int) -> TermsVersion:
    return TermsVersion(
        version=number, effective_from=effective_from, published_at=effective_from, terms=TERMS
    )


V1, V2 = version(1, 100), version(2, 200)
# v3 corrects v2 for the same instant; v4 is published later but takes effect earlier.
V3, V4 = version(3, 200), version(4, 150)


@dataclass(frozen=True)
class Case:
    name: str
    versions: tuple[TermsVersion, ...]
    at: int
    expected: int


CASES = [
    # a version is in force from exactly its effective_from ...
    Case("at_second_start", (V1, V2), 200, 2),
    # ... and not 1 ms before it: the previous one still is
    Case("one_ms_before_second", (V1, V2), 199, 1),
    # exactly at the first version's start
    Case("at_first_start", (V1, V2), 100, 1),
    # before the first version, the first applies
    Case("before_first", (V1, V2), 99, 1),
    Case("long_before_first", (V1, V2), 0, 1),
    # long after the last change, the last version stays in force
    Case("after_last", (V1, V2), 10**15, 2),
    # two versions with the same effective_from: the higher version number wins ...
    Case("same_start_higher_wins", (V1, V2, V3), 200, 3),
    # ... whatever order they are listed in
    Case("same_start_any_order", (V3, V2, V1), 200, 3),
    # ... and the one superseded at the same instant never applies, 1 ms before included
    Case("same_start_one_ms_before", (V1, V2, V3), 199, 1),
    # tied first versions: the correction applies from their instant on ...
    Case("at_tied_first", (V2, V3), 200, 3),
    # ... and before it the first published still does: what it decided stays decided
    Case("before_tied_first", (V2, V3), 199, 2),
    # a version published later to start before the first one's start takes over from
    # its own start, not the time before it (the first version judged that)
    Case("later_earlier_than_first_before_both", (V2, V4), 149, 2),
    Case("later_earlier_than_first_at_its_start", (V2, V4), 150, 4),
    Case("later_earlier_than_first_at_first_start", (V2, V4), 200, 2),
    # effective_from orders the versions, not their numbers (v4 sits between v1 and v2)
    Case("later_number_earlier_start", (V1, V2, V4), 150, 4),
    Case("later_number_one_ms_before", (V1, V2, V4), 149, 1),
    Case("later_number_superseded", (V1, V2, V4), 200, 2),
    # one version: in force at every time
    Case("single_before", (V2,), 0, 2),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_version_in_force_at_an_event_time(case: Case) -> None:
    assert terms_in_force(case.versions, case.at).version == case.expected


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_timeline_gives_the_version_in_force(case: Case) -> None:
    assert TermsTimeline.of(case.versions).at(case.at).version == case.expected


def test_the_timeline_agrees_with_the_rule_on_random_versions() -> None:
    rng = random.Random(7)
    for _ in range(300):
        starts = [rng.choice([0, 100, 150, 200, 10**12]) for _ in range(rng.randint(1, 6))]
        versions = [version(n + 1, start) for n, start in enumerate(starts)]
        rng.shuffle(versions)
        timeline = TermsTimeline.of(versions)
        for at in (0, 99, 100, 101, 149, 150, 199, 200, 201, 10**12 - 1, 10**12, 10**15):
            assert timeline.at(at) == terms_in_force(versions, at)


def test_a_timeline_needs_a_version() -> None:
    with pytest.raises(NoTermsInForce, match="no versions"):
        TermsTimeline.of(())


def test_a_list_gives_the_same_answer_as_a_tuple() -> None:
    assert terms_in_force([V1, V2, V3], 200) == V3


def test_a_campaign_without_versions_has_no_terms_in_force() -> None:
    with pytest.raises(NoTermsInForce, match="no versions"):
        terms_in_force((), 100)
