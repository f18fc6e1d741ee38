"""A creator has a part in a campaign whose published terms name it, in any version: a
version still to come that drops its coupon must not hide the campaign from it first."""

from __future__ import annotations

import asyncio

import pytest

from afflux.payouts.queries import creators_campaign
from afflux.payouts.store import Keys, LedgerStore
from afflux.shared.core.access import Principal
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory

pytestmark = pytest.mark.unit

NOW = 1_796_601_600_000  # 2026-12-07


class NoLedger:
    """A store that must not be read: a creator the terms name needs no ledger."""

    def pipeline(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("the creator's ledger was read")


def _terms(coupons: dict[str, str]) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": "10"}}},
            "coupons": coupons,
        }
    )


def _directory(*versions: tuple[int, dict[str, str]]) -> CampaignDirectory:
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id="camp",
            versions=tuple(
                TermsVersion(version=n, effective_from=start, published_at=0, terms=_terms(c))
                for n, (start, c) in enumerate(versions, start=1)
            ),
        )
    )
    return directory


@pytest.mark.parametrize(
    "versions",
    [
        ((0, {"ANA10": "ana"}),),
        ((0, {"ANA10": "ana"}), (NOW + 86_400_000, {})),  # a version to come drops it
        ((0, {}), (NOW + 86_400_000, {"ANA10": "ana"})),  # a version to come adds it
    ],
    ids=["named now", "named now, dropped later", "named later"],
)
def test_a_creator_named_by_any_version_has_a_part_in_the_campaign(
    versions: tuple[tuple[int, dict[str, str]], ...],
) -> None:
    store = LedgerStore(NoLedger(), Keys("afx:test:"))  # type: ignore[arg-type]
    asyncio.run(
        creators_campaign(store, _directory(*versions), Principal("creator", "ana"), "ana", "camp")
    )
