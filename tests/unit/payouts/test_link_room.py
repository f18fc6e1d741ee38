"""How many links a creator may make for itself in a campaign, and which of its links
it may deactivate: the portal's decisions, without the clicks service."""

from __future__ import annotations

from typing import Any

import pytest

from afflux.payouts.portal.link_room import deactivation_refusal, made_in, room_refusal


def link(code: str, campaign: str = "shop", active: bool = True) -> dict[str, Any]:
    return {"code": code, "campaign_id": campaign, "active": active}


def test_links_made_in_a_campaign_count_deactivated_ones_and_no_other_campaigns() -> None:
    links = [link("a"), link("b", active=False), link("c", "other")]
    assert made_in(links, "shop") == 2
    assert made_in(links, "other") == 1
    assert made_in(links, "none") == 0


@pytest.mark.parametrize(
    ("made", "others_making", "most", "allowed"),
    [
        (0, 0, 1, True),
        (3, 0, 4, True),  # the last room
        (4, 0, 4, False),  # none left
        (5, 0, 4, False),  # a brand made more than the bound: still none
        (3, 1, 4, False),  # another request takes the last room
        (2, 1, 4, True),  # room for both
        (0, 3, 4, True),
        (0, 4, 4, False),
    ],
)
def test_one_more_link_fits_only_beside_those_made_and_being_made(
    made: int, others_making: int, most: int, allowed: bool
) -> None:
    assert (room_refusal(made, others_making, most) is None) is allowed


def test_a_full_campaign_says_how_many_were_made_and_what_to_do() -> None:
    assert room_refusal(4, 2, 4) == (
        "you have made 4 links in this campaign, the most a creator may make here "
        "(4; deactivated links count too): ask the brand for another"
    )
    assert room_refusal(3, 1, 4) == (
        "another link of yours is being made in this campaign right now; try again"
    )


@pytest.mark.parametrize(
    ("links", "code", "named", "refusal"),
    [
        ([link("a"), link("b")], "a", False, None),
        ([link("a"), link("b", active=False)], "a", True, None),  # the terms name it
        (
            [link("a"), link("b", active=False), link("c", "other")],
            "a",
            False,
            "code: 'a' is your last active link in campaign 'shop', and you belong to it "
            "only through a link: make another link there first",
        ),
        ([link("a", active=False), link("b")], "a", False, "code: link 'a' is already deactivated"),
        ([link("a")], "zz", False, "code: no link 'zz' of yours"),
    ],
)
def test_a_creator_may_deactivate_its_own_active_links_but_not_its_only_way_in(
    links: list[dict[str, Any]], code: str, named: bool, refusal: str | None
) -> None:
    assert deactivation_refusal(links, code, named) == refusal
