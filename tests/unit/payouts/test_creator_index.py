"""The creator index: one creator's campaign-periods are exactly one lexicographic range
of its shard, whatever characters the ids hold."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.payouts.keys import (
    Keys,
    creator_index_member,
    creator_index_pair,
    creator_index_range,
)

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    asked: str
    other: str


CASES = [
    Case("abc", "abcd"),  # a longer id with the asked one as its prefix
    Case("abcd", "abc"),  # a shorter one
    Case("abc", 'abc"'),  # a quote right after the prefix
    Case("abc", "abc,"),  # the separator itself in an id
    Case("abc", "abc-"),  # the character the upper bound is made of
    Case("abc", "abc\\"),  # an escape
    Case("abc", "ab\u00ff"),  # non-ASCII
    Case("a|b", "a"),  # the legacy separator
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.asked!r}-vs-{c.other!r}")
def test_a_creators_range_holds_its_members_and_no_other_creators(case: Case) -> None:
    low, high = creator_index_range(case.asked)
    assert low.startswith(b"[")
    assert high.startswith(b"(")

    def inside(member: bytes) -> bool:
        return low[1:] <= member < high[1:]

    assert inside(creator_index_member(case.asked, "camp|x", "2026-11"))
    assert inside(creator_index_member(case.asked, "", ""))
    assert not inside(creator_index_member(case.other, "camp", "2026-11"))


def test_a_member_gives_back_its_campaign_and_period() -> None:
    member = creator_index_member("creator-1", "camp|with|bars", "2026-W09")
    assert creator_index_pair(member) == ("camp|with|bars", "2026-W09")


def test_a_creator_always_lands_in_the_same_shard() -> None:
    keys = Keys()
    assert keys.creator_index("creator-1") == keys.creator_index("creator-1")
    assert len({keys.creator_index(f"creator-{n}") for n in range(1000)}) == 64
