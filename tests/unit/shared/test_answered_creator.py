"""A survey answer names a creator its links could have, or one the terms name."""

from __future__ import annotations

import pytest

from afflux.shared.core.terms import CampaignTerms, answered_creator_problem

pytestmark = pytest.mark.unit

TERMS = CampaignTerms(campaign_id="c", merchant_id="m", currency="EUR", coupons={"OLA": "José"})


@pytest.mark.parametrize(
    ("affiliate_id", "names_someone"),
    [
        pytest.param("creator-07", True, id="a link id"),
        pytest.param("agency:north@eu_1.x", True, id="every character links take"),
        pytest.param("José", True, id="outside the pattern, named by a coupon"),
        pytest.param("Jose ", False, id="edge space"),
        pytest.param("Josè", False, id="outside the pattern, named by nothing"),
        pytest.param("cr-\u0430", False, id="Cyrillic lookalike"),
    ],
)
def test_an_answered_creator_is_a_link_id_or_named_by_the_terms(
    affiliate_id: str, names_someone: bool
) -> None:
    problem = answered_creator_problem(TERMS, affiliate_id)
    assert (problem is None) is names_someone
