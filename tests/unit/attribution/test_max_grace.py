"""How long a refund waits for its order's outcome counts the longest grace of every
version of every campaign (docs/attribution.md): an order placed under an earlier
version waits for that version's grace, even after a later version shortened it."""

from __future__ import annotations

import pytest

from afflux.attribution.handlers import Campaigns
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory

pytestmark = pytest.mark.unit


def _version(n: int, grace_s: int) -> TermsVersion:
    terms = CampaignTerms.model_validate(
        {"campaign_id": "shop", "merchant_id": "m", "currency": "EUR", "grace_seconds": grace_s}
    )
    return TermsVersion(version=n, effective_from=n * 1_000, published_at=n, terms=terms)


@pytest.mark.parametrize(
    ("graces", "longest_ms"), [((60,), 60_000), ((600, 5), 600_000), ((5, 600), 600_000)]
)
def test_the_refund_wait_counts_the_longest_grace_of_any_version(
    graces: tuple[int, ...], longest_ms: int
) -> None:
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id="shop",
            versions=tuple(_version(n, g) for n, g in enumerate(graces, start=1)),
        )
    )
    assert Campaigns(directory).max_grace_ms() == longest_ms
