"""A later version of a campaign applies from its publication on (``backdated_version``).

Backdated, it changed the terms of orders already decided and of lines already approved
or paid: the live ledger kept the period terms it had loaded, while a rebuild, the
oracle and the what-if priced the whole period by the new version (a probe backdated a
version to its campaign's first instant with a cap of 100 after 4,400 had been paid)."""

from __future__ import annotations

import pytest

from afflux.shared.core.terms import CampaignTerms, TermsVersion, backdated_version

pytestmark = pytest.mark.unit

NOW = 1_796_000_000_000
FIRST_FROM = NOW - 30 * 86_400_000  # the first version started a month ago


def terms(cookie_days: int = 30) -> CampaignTerms:
    return CampaignTerms(
        campaign_id="c", merchant_id="m", currency="EUR", cookie_window_days=cookie_days
    )


HISTORY = (TermsVersion(version=1, effective_from=FIRST_FROM, published_at=0, terms=terms()),)


@pytest.mark.parametrize(
    ("history", "new", "effective_from", "refused"),
    [
        pytest.param((), terms(), FIRST_FROM, False, id="a first version may start in the past"),
        pytest.param(HISTORY, terms(), FIRST_FROM, False, id="the latest again: no change"),
        pytest.param(HISTORY, terms(7), NOW, False, id="a change from now on"),
        pytest.param(HISTORY, terms(7), NOW + 1, False, id="a change from a time to come"),
        pytest.param(HISTORY, terms(7), NOW - 1, True, id="a change one ms before now"),
        pytest.param(HISTORY, terms(7), FIRST_FROM, True, id="a correction of the first instant"),
        pytest.param(HISTORY, terms(), NOW - 1, True, id="the same terms moved into the past"),
    ],
)
def test_a_later_version_may_not_start_before_now(
    history: tuple[TermsVersion, ...], new: CampaignTerms, effective_from: int, refused: bool
) -> None:
    reason = backdated_version(history, new, effective_from, NOW)
    assert (reason is not None) == refused, reason
    if reason is not None:
        assert "is before now" in reason
        assert "only a campaign's first version may start in the past" in reason
