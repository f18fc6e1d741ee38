"""Which moves between the review queue's status sets a step makes
(``afflux.shared.core.journal.review_queue``)."""

from __future__ import annotations

import dataclasses

import pytest

from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.journal.records import LineRecord
from afflux.shared.core.journal.review_queue import moves, reviewed_during, status
from afflux.shared.core.periods import period_bounds
from afflux.shared.core.terms import CampaignTerms, TermsVersion

AT = 1_793_491_200_000


def _line(name: str, held: tuple[str, ...] = (), review: str | None = None) -> LineRecord:
    fact = ConversionFact(
        f"conv-{name}", f"ev-{name}", f"o-{name}", "ana", "sale", None, 10_000, "EUR", False,
        AT, 1,
    )  # fmt: skip
    decided = None if review is None else (review, f"r-{name}", "why", "merchant:m", AT)
    return LineRecord(f"line-{name}", "ana", "sale", conversion=fact, held=held, review=decided)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, "not_held"),
        (_line("a"), "not_held"),
        (_line("a", ("burst",)), "held"),
        (_line("a", ("burst",), "approve"), "approved"),
        (_line("a", ("burst",), "decline"), "declined"),
    ],
)
def test_a_lines_status_in_the_queue(record: LineRecord | None, expected: str) -> None:
    assert status(record) == expected


def test_a_new_line_is_added_to_its_status_set() -> None:
    stored: dict[str, str] = {}

    found = moves(stored, [_line("a", ("burst",))])

    assert found.added == {"held": [(AT, "conv-a")]}
    assert found.removed == {}
    assert stored == {"line-a": "held"}


def test_a_decided_line_leaves_the_held_set() -> None:
    stored = {"line-a": "held"}

    found = moves(stored, [_line("a", ("burst",), "decline")])

    assert found.added == {"declined": [(AT, "conv-a")]}
    assert found.removed == {"held": ["conv-a"]}
    assert stored == {"line-a": "declined"}


def test_a_line_whose_status_did_not_change_moves_nothing() -> None:
    stored = {"line-a": "held"}

    assert not moves(stored, [_line("a", ("burst",))])


def test_period_lines_and_override_lines_are_not_rows() -> None:
    click = LineRecord("line-click", "ana", "click")
    override = dataclasses.replace(_line("a", ("burst",)), override=("line-a", "ana", 1, "5"))

    assert not moves({}, [click, override])


def _terms_version(number: int, starts: int, reviewed: bool) -> TermsVersion:
    terms: dict[str, object] = {"campaign_id": "c", "merchant_id": "m", "currency": "EUR"}
    if reviewed:
        terms["review"] = {"hold_on": ["burst"]}
    return TermsVersion(
        version=number,
        effective_from=starts,
        published_at=0,
        terms=CampaignTerms.model_validate(terms),
    )


NOV, DEC = period_bounds("2026-11")[0], period_bounds("2026-12")[0]


@pytest.mark.parametrize(
    ("versions", "period", "reviewed"),
    [
        ([(1, 0, False), (2, DEC, True)], "2026-11", False),  # review from December on
        ([(1, 0, False), (2, DEC, True)], "2026-12", True),
        ([(1, 0, False), (2, DEC - 1, True)], "2026-11", True),  # its last millisecond
        ([(1, 0, True), (2, NOV, False)], "2026-11", False),  # review ended at its start
        ([(1, 0, True), (2, NOV + 1, False)], "2026-11", True),  # ... a ms into it
        ([(1, DEC, True)], "2026-11", True),  # the first version holds before its start
        ([], "2026-11", False),
    ],
)
def test_a_period_reviews_when_terms_in_force_in_it_do(
    versions: list[tuple[int, int, bool]], period: str, reviewed: bool
) -> None:
    made = [_terms_version(n, starts, r) for n, starts, r in versions]
    assert reviewed_during(made, period) is reviewed
