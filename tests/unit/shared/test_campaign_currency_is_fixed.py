"""A campaign's currency is its first version's for good (``currency_change``)."""

from __future__ import annotations

import pytest

from afflux.shared.core.terms import CampaignTerms, TermsVersion, currency_change

pytestmark = pytest.mark.unit


def terms(currency: str) -> CampaignTerms:
    return CampaignTerms(campaign_id="c", merchant_id="m", currency=currency)


def versions(*currencies: str) -> tuple[TermsVersion, ...]:
    return tuple(
        TermsVersion(version=n, effective_from=n, published_at=n, terms=terms(c))
        for n, c in enumerate(currencies, start=1)
    )


@pytest.mark.parametrize(
    ("history", "new", "paid_in"),
    [
        pytest.param((), "JPY", None, id="a new campaign chooses its currency"),
        pytest.param(("EUR",), "EUR", None, id="the same currency"),
        pytest.param(("EUR", "EUR"), "EUR", None, id="the same over versions"),
        pytest.param(("EUR",), "JPY", "EUR", id="another currency"),
        pytest.param(("EUR", "JPY"), "EUR", "JPY", id="a history mixed before the rule"),
        pytest.param(("EUR", "JPY"), "USD", "EUR, JPY", id="neither of a mixed history"),
    ],
)
def test_terms_keep_the_campaigns_currency(
    history: tuple[str, ...], new: str, paid_in: str | None
) -> None:
    reason = currency_change(versions(*history), terms(new))
    if paid_in is None:
        assert reason is None
    else:
        assert reason == (
            f"campaign 'c' is paid in {paid_in}: a campaign's currency never changes"
            f" (terms in {new} need a new campaign)"
        )
