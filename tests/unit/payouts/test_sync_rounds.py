"""The creators' running sums are synced in rounds: creators who only lose first, those
who lose and gain next (the net falling, then not), those who only gain last, so that an
order moved from one creator to another is not seen credited to both (docs/payouts.md,
"Running sums across slots")."""

from __future__ import annotations

import orjson
import pytest

from afflux.payouts.creator_balance import outbox_items, sync_rounds

pytestmark = pytest.mark.unit

DEC_1 = 1_796_083_200_000


def shard(affiliate: str) -> str:
    return f"shard-of-{affiliate}:"


def rounds_of(*rows: list[object]) -> list[set[str]]:
    """The creators of each round for one period write of ``rows``
    ([creator, currency, seq, approve_at, amount, reversed])."""
    box = {b"1": orjson.dumps(list(rows))}
    items = outbox_items("shop", "2026-11", box, shard)
    return [
        {entry[0] for payload in round_.values() for entry in orjson.loads(payload)}
        for round_ in sync_rounds(items)
    ]


def test_a_creator_losing_an_order_goes_first_even_when_a_new_sale_outweighs_it() -> None:
    # Order 1 (10.00) moves from ana to ben in the write that brings ana a 20.00 sale.
    rounds = rounds_of(
        ["ana", "EUR", 1, DEC_1, -1_000, 1_000],
        ["ana", "EUR", 2, DEC_1, 2_000, 0],
        ["ben", "EUR", 3, DEC_1, 1_000, 0],
    )
    assert rounds == [{"ana"}, {"ben"}]


def test_a_creator_receiving_an_order_and_a_refund_goes_after_the_one_losing_it() -> None:
    # Order 1 moves from ana to ben in the write that also refunds 2.00 of a sale of ben's.
    rounds = rounds_of(
        ["ana", "EUR", 1, DEC_1, -1_000, 1_000],
        ["ben", "EUR", 2, DEC_1, 1_000, 0],
        ["ben", "EUR", 3, DEC_1, -200, 200],
    )
    assert rounds == [{"ana"}, {"ben"}]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([["ana", "EUR", 1, DEC_1, 500, 0]], [{"ana"}]),  # only gains: one round
        ([["ana", "EUR", 1, DEC_1, -500, 500]], [{"ana"}]),  # only a loss: one round
        (
            [["ana", "EUR", 1, DEC_1, -500, 500], ["ben", "EUR", 2, DEC_1, 500, 0]],
            [{"ana"}, {"ben"}],
        ),
        (  # both lose and gain: the falling net first
            [
                ["ana", "EUR", 1, DEC_1, -1_000, 1_000],
                ["ana", "EUR", 2, DEC_1, 200, 0],
                ["ben", "EUR", 3, DEC_1, 1_000, 0],
                ["ben", "EUR", 4, DEC_1, -200, 200],
            ],
            [{"ana"}, {"ben"}],
        ),
    ],
)
def test_rounds_hold_the_losers_then_the_rest(
    rows: list[list[object]], expected: list[set[str]]
) -> None:
    assert rounds_of(*rows) == expected
