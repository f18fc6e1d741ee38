"""Which items of a poll go one by one when some of its campaign-periods were refused
(``consumer.suspect``): those of a refused period, and of a period that refused only
creators past the largest amount, only those creators' items (and items naming none)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.payouts.consumer import suspect
from afflux.payouts.store import Applied, PeriodsRefused
from afflux.shared.core.journal.bounds import CreatorSumOutOfRange

NOV = ("shop", "2026-11")
OCT = ("shop", "2026-10")


@dataclass(frozen=True)
class Sale:
    affiliate_id: str


@dataclass(frozen=True)
class Unnamed:
    event_id: str


def refused(cause: Exception) -> PeriodsRefused:
    return PeriodsRefused({NOV: cause}, Applied({}))


PAST = CreatorSumOutOfRange("anna past the bound", frozenset({"anna"}))


@pytest.mark.parametrize(
    ("event", "periods", "cause", "expected"),
    [
        (Sale("anna"), {OCT}, ValueError("corrupt line"), False),  # another period
        (Sale("anna"), {NOV}, ValueError("corrupt line"), True),
        (Sale("anna"), None, ValueError("corrupt line"), True),  # a lead confirmation
        (Sale("anna"), None, PAST, True),
        (Sale("anna"), {NOV}, PAST, True),
        (Sale("ben"), {NOV}, PAST, False),  # the period's other creators go on in one batch
        (Sale("ben"), {OCT, NOV}, PAST, False),
        (Unnamed("x"), {NOV}, PAST, True),
        (Sale("ben"), {NOV}, CreatorSumOutOfRange("no creators named"), True),
    ],
)
def test_an_item_goes_one_by_one_only_if_it_may_be_what_was_refused(
    event: object, periods: set[tuple[str, str]] | None, cause: Exception, expected: bool
) -> None:
    assert suspect(event, periods, refused(cause)) is expected
