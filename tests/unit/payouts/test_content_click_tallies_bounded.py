"""Clicks per content are counted for a bounded number of contents per creator.

The visitor's URL names the content (``utm_content``), and the ledger keeps a field per
(creator, content) in the period's click tallies for good (compaction keeps them): a
visitor naming a new content on every click grew the hash by one field per click, and
every load of the period and every KPI read fetched them all. A creator's clicks get at
most ``MAX_CONTENTS`` contents of their own per period, each a content's name
(``<platform>:<content_id>``); the rest are counted apart, never dropped.
"""

from __future__ import annotations

import pytest

from afflux.payouts.tallies import MAX_CONTENTS, ClickItem, count_clicks
from afflux.payouts.views import content_clicks
from afflux.shared.core.engagement import ContentState, Publication

pytestmark = pytest.mark.unit


def _published(key: str, affiliate: str) -> ContentState:
    publication = Publication(key, affiliate, "shop", "post", 0, f"p-{key}", None, False)
    return ContentState(key, publication)


def _click(n: int, content: str, affiliate: str = "anna") -> ClickItem:
    return ClickItem("shop", "2026-11", f"k{n}", affiliate, 1_793_491_200_000 + n, (), content)


@pytest.mark.parametrize(
    ("content", "own_field"),
    [
        ("instagram:P1", True),
        ("tiktok:7291é", True),
        ("yt:" + "a" * 200, True),
        ("yt:" + "a" * 201, False),
        ("instagram:", False),
        (":P1", False),
        ("Instagram:P1", False),
        ("instagram:P1/x", False),
        ("instagram:P1\n", False),
        ("instagram:P 1", False),
        ("just-a-campaign-name", False),
    ],
)
def test_only_a_contents_name_gets_a_field_of_its_own(content: str, own_field: bool) -> None:
    tally: dict[str, str] = {}

    touched, _ = count_clicks(tally, [_click(1, content)])

    assert (f"c|anna|{content}" in tally) is own_field
    assert tally.get("co|anna") == (None if own_field else "1")
    assert touched >= {name for name in tally if name.startswith(("c|", "co|", "cn|"))}


def test_a_creators_contents_past_the_bound_are_counted_apart() -> None:
    tally: dict[str, str] = {}
    clicks = [_click(n, f"instagram:P{n}") for n in range(MAX_CONTENTS + 50)]
    clicks += [_click(10_000, "instagram:P0"), _click(10_001, f"instagram:P{MAX_CONTENTS}")]

    count_clicks(tally, clicks)

    per_content = content_clicks(tally)["anna"]
    assert len(per_content) == MAX_CONTENTS
    assert per_content["instagram:P0"] == 2  # a content with a field keeps counting
    assert f"instagram:P{MAX_CONTENTS}" not in per_content
    assert tally["co|anna"] == "51"  # 50 past the bound, and one more click on one of them
    assert tally["cn|anna"] == str(MAX_CONTENTS)
    assert int(tally["u|anna"]) == sum(per_content.values()) + int(tally["co|anna"])


def test_the_bound_is_per_creator() -> None:
    tally: dict[str, str] = {}
    clicks = [_click(n, f"instagram:P{n}") for n in range(MAX_CONTENTS)]

    count_clicks(tally, [*clicks, _click(5_000, "instagram:B1", affiliate="ben")])

    assert content_clicks(tally)["ben"] == {"instagram:B1": 1}
    assert "co|anna" not in tally
    assert "co|ben" not in tally


def test_a_published_content_gets_its_field_whatever_made_up_names_took_the_bound() -> None:
    """Visitors naming 1,000 made-up contents took every place: the creator's real
    content then had no CTR."""
    tally: dict[str, str] = {}
    made_up = [_click(n, f"instagram:FAKE{n}") for n in range(MAX_CONTENTS)]
    real = [_click(5_000 + n, "instagram:REAL") for n in range(3)]

    published = {"instagram:REAL": _published("instagram:REAL", "anna")}

    count_clicks(tally, [*made_up, *real], published)

    assert content_clicks(tally)["anna"]["instagram:REAL"] == 3
    assert tally["cn|anna"] == str(MAX_CONTENTS)  # the made-up ones' places only
    assert "co|anna" not in tally
    count_clicks(tally, [_click(9_000, "instagram:FAKE-MORE")], published)
    assert tally["co|anna"] == "1"


def test_another_creators_published_contents_do_not_add_to_a_creators_bound() -> None:
    """Every content published in the period passed the bound on any creator's links: a
    visitor naming 3,000 of another creator's contents gave one creator 4,000 fields."""
    tally: dict[str, str] = {}
    theirs = {f"instagram:P{n}": _published(f"instagram:P{n}", "ben") for n in range(50)}
    made_up = [_click(n, f"instagram:FAKE{n}") for n in range(MAX_CONTENTS)]
    naming_theirs = [_click(5_000 + n, key) for n, key in enumerate(theirs)]

    count_clicks(tally, [*made_up, *naming_theirs], theirs)

    assert len(content_clicks(tally)["anna"]) == MAX_CONTENTS
    assert tally["co|anna"] == "50"
