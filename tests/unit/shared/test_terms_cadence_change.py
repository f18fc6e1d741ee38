"""A version that changes the plan's period (month, week) must start where a period of
both cadences begins (``cadence_change``). Inside one, events before it fell in the
month and events after in a week that began before it: the two periods overlapped, each
with its own cap and base fee, and a creator capped at 10.00 a month was paid 20.00 for
four days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from afflux.shared.core.periods import cadence_change
from afflux.shared.core.terms import CampaignTerms, Period, TermsVersion, append_version

pytestmark = pytest.mark.unit


def at(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def terms(period: Period, percent: str = "10") -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": "c",
            "merchant_id": "m",
            "currency": "EUR",
            "plan": {"period": period, "sale": {"rate": {"percent": percent}}},
        }
    )


MONTHLY = (
    TermsVersion(version=1, effective_from=at("2026-01-01"), published_at=0, terms=terms("month")),
)
# 2027-02-01 is a Monday and the first of a month; 2026-11-18 a Wednesday.


@pytest.mark.parametrize(
    ("history", "new", "starts", "refused"),
    [
        pytest.param(
            MONTHLY, terms("week"), at("2027-02-01"), False, id="month to week at a Monday first"
        ),
        pytest.param(MONTHLY, terms("week"), at("2026-11-18"), True, id="month to week mid-week"),
        pytest.param(
            MONTHLY, terms("week"), at("2026-11-16"), True, id="month to week on a Monday mid-month"
        ),
        pytest.param(
            MONTHLY, terms("week"), at("2026-12-01"), True, id="month to week on a first mid-week"
        ),
        pytest.param(
            MONTHLY, terms("week"), at("2027-02-01") + 1, True, id="1 ms after a shared start"
        ),
        pytest.param(
            MONTHLY, terms("month", "12"), at("2026-11-18"), False, id="same cadence anywhere"
        ),
        pytest.param((), terms("week"), at("2026-11-18"), False, id="a first version"),
    ],
)
def test_a_change_of_cadence_must_start_where_both_cadences_begin_a_period(
    history: tuple[TermsVersion, ...], new: CampaignTerms, starts: int, refused: bool
) -> None:
    planned = append_version(history, new, starts, 0)

    reason = cadence_change(history, planned)

    assert (reason is not None) == refused, reason


def test_the_reason_names_the_change_and_where_it_would_overlap() -> None:
    planned = append_version(MONTHLY, terms("week"), at("2026-11-18"), 0)

    reason = cadence_change(MONTHLY, planned)

    assert reason is not None
    assert reason.startswith(
        "the plan's period changes from month to week at 2026-11-18T00:00:00.000+00:00,"
        " inside a month"
    )


def test_a_weekly_version_published_to_start_before_the_first_changes_cadence_twice() -> None:
    """The first version governs before every start, so a weekly one placed before it
    switches back to monthly at the first one's start, inside a week too."""
    first = (
        TermsVersion(
            version=1, effective_from=at("2099-06-03"), published_at=0, terms=terms("month")
        ),
    )
    planned = append_version(first, terms("week"), at("2099-06-01"), 0)

    reason = cadence_change(first, planned)

    assert reason is not None
    assert "from week to month at 2099-06-03" in reason


def test_a_history_that_already_switched_inside_a_period_does_not_block_later_versions() -> None:
    switched = append_version(MONTHLY, terms("week"), at("2026-11-18"), 0)  # an older stack's

    later = append_version(switched, terms("week", "12"), at("2026-12-09"), 0)

    assert cadence_change(switched, later) is None
