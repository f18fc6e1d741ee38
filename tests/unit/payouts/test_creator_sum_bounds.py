"""A creator's sums in a campaign-period, and what one write adds to them, stay within
the largest amount afflux carries (``bounds.out_of_range``): the ledger refuses the
item that would take them past it."""

from __future__ import annotations

import pytest

from afflux.shared.core.journal.bounds import creators_out_of_range, out_of_range
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.money import MAX_AMOUNT_MINOR as MOST


def posting(amount: int, creator: str = "ana", at: int = 1, component: str = "base") -> Posting:
    return Posting(
        posting_id=f"p-{creator}-{amount}-{at}-{component}",
        seq=1,
        line_id="l",
        affiliate_id=creator,
        campaign_id="shop",
        period="2026-11",
        currency="EUR",
        kind="accrual",
        line_kind="sale",
        component=component,
        amount_minor=amount,
        approve_at=at,
        occurred_at=0,
        rule="r",
        terms_version=1,
    )


@pytest.mark.parametrize(
    ("postings", "stored", "beyond"),
    [
        ([posting(MOST)], {}, None),  # the largest amount itself
        ([posting(MOST), posting(1, at=2)], {}, "its added would be"),
        ([posting(1)], {"total|ana": MOST}, "its total would be"),
        ([posting(-1)], {"total|ana": -MOST}, "its total would be"),
        ([posting(-1, component="refund")], {"reversed|ana": MOST}, "its reversed would be"),
        ([posting(MOST), posting(-MOST, component="refund")], {}, None),
        ([posting(1)], {"total|ben": MOST}, None),  # another creator's sum
        ([posting(MOST, "ana"), posting(MOST, "ben")], {}, None),  # each its own
        # A cap cut at another time nets the total, not what one time adds.
        (
            [posting(MOST), posting(MOST), posting(-MOST, at=2, component="cap_cut")],
            {},
            "its amount approved at 1 would grow by",
        ),
    ],
)
def test_a_write_fits_only_within_the_largest_amount_per_creator(
    postings: list[Posting], stored: dict[str, int], beyond: str | None
) -> None:
    refusal = out_of_range(postings, stored, "shop 2026-11")
    if beyond is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert beyond in refusal
        assert refusal.startswith("creator 'ana' in shop 2026-11: ")
        assert refusal.endswith(f"beyond {MOST} (the largest amount afflux carries)")


def test_every_creator_past_the_bound_is_named_with_the_first_reason_first() -> None:
    postings = [posting(MOST, "cy"), posting(1, "cy", at=2), posting(1, "ben"), posting(1)]
    stored = {"total|ana": MOST, "reversed|ben": 0}

    refusals = creators_out_of_range(postings, stored, "shop 2026-11")

    assert [creator for creator, _ in refusals] == ["ana", "cy"]
    assert refusals[0][1] == out_of_range(postings, stored, "shop 2026-11")
    assert "its added would be" in refusals[1][1]
