"""A campaign's merchant is its first version's for good (``merchant_change``)."""

from __future__ import annotations

import pytest

from afflux.shared.core.terms import CampaignTerms, TermsVersion, merchant_change

pytestmark = pytest.mark.unit


def terms(merchant_id: str) -> CampaignTerms:
    return CampaignTerms(campaign_id="c", merchant_id=merchant_id, currency="EUR")


def versions(*merchants: str) -> tuple[TermsVersion, ...]:
    return tuple(
        TermsVersion(version=n, effective_from=n, published_at=n, terms=terms(m))
        for n, m in enumerate(merchants, start=1)
    )


@pytest.mark.parametrize(
    ("history", "new", "belongs_to"),
    [
        pytest.param((), "m-b", None, id="a new campaign chooses its merchant"),
        pytest.param(("m-a",), "m-a", None, id="the same merchant"),
        pytest.param(("m-a", "m-a"), "m-a", None, id="the same over versions"),
        pytest.param(("m-a",), "m-b", "m-a", id="another merchant"),
        pytest.param(("m-a", "m-b"), "m-a", "m-b", id="a history mixed before the rule"),
        pytest.param(("m-a", "m-b"), "m-c", "m-a, m-b", id="neither of a mixed history"),
    ],
)
def test_terms_keep_the_campaigns_merchant(
    history: tuple[str, ...], new: str, belongs_to: str | None
) -> None:
    reason = merchant_change(versions(*history), terms(new))
    if belongs_to is None:
        assert reason is None
    else:
        assert reason == (
            f"campaign 'c' belongs to {belongs_to}: a campaign's merchant never changes"
            f" (terms of {new} need a new campaign)"
        )
