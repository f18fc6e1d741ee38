"""The agencies up one creator's chain never earn together more than the creator's whole
pay: each share was at most 100 %, but three levels of 100 % made the brand pay 300 % of
the commission in overrides. Terms whose earning shares sum past 100 % are refused at
configuration, naming ``overrides`` and the chain."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from afflux.shared.core.overrides import AgencyOverrides
from afflux.shared.core.terms import CampaignTerms

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    name: str
    levels: int
    shares: tuple[str, ...]  # ana's agency's share, then up the chain
    refused: bool


CASES = [
    # Three levels of 100 %: 300 % of the creator's pay.
    Case("three levels of 100", 3, ("100", "100", "100"), True),
    # Exactly the whole pay over three levels: taken.
    Case("sum exactly 100", 3, ("50", "30", "20"), False),
    # One ten-thousandth of a percent past it: refused.
    Case("sum 100.0001", 3, ("50", "30", "20.0001"), True),
    # Only the earning levels count: on ana's pay, the third agency earns nothing at two
    # levels (160 % over three; north's own chain is 100 %).
    Case("a share beyond the levels", 2, ("60", "40", "60"), False),
    # Two levels of 60 %: refused.
    Case("two levels of 60", 2, ("60", "60"), True),
    # One level of 100 %: the whole pay, as before.
    Case("one level of 100", 1, ("100", "100"), False),
]

CHAIN = ("ana", "north", "group", "holding")


def overrides(case: Case) -> dict[str, object]:
    return {
        "levels": case.levels,
        "agencies": {
            CHAIN[i]: {"agency_id": CHAIN[i + 1], "share_percent": share}
            for i, share in enumerate(case.shares)
        },
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_shares_earned_on_one_creators_pay_sum_to_at_most_100_percent(case: Case) -> None:
    if not case.refused:
        taken = AgencyOverrides.model_validate(overrides(case))
        assert sum(share for _, _, share in taken.chain("ana")) <= 100
        return
    with pytest.raises(ValidationError) as caught:
        AgencyOverrides.model_validate(overrides(case))
    assert "ana's pay (ana -> north" in str(caught.value)
    assert "more than the whole of it" in str(caught.value)


def test_an_agency_that_is_also_a_creator_is_bounded_on_its_own_chain() -> None:
    # ana's chain sums to 60, but north's own chain (north -> group -> holding) to 130.
    with pytest.raises(ValidationError) as caught:
        AgencyOverrides.model_validate(
            {
                "levels": 2,
                "agencies": {
                    "ana": {"agency_id": "north", "share_percent": "10"},
                    "north": {"agency_id": "group", "share_percent": "50"},
                    "group": {"agency_id": "holding", "share_percent": "80"},
                },
            }
        )
    assert "group's pay (group -> holding" not in str(caught.value)
    assert "north's pay (north -> group -> holding, 2 levels) sum to 130%" in str(caught.value)


def test_campaign_terms_refuse_the_chain_naming_the_overrides_field() -> None:
    with pytest.raises(ValidationError) as caught:
        CampaignTerms.model_validate(
            {
                "campaign_id": "c",
                "merchant_id": "m",
                "currency": "EUR",
                "overrides": overrides(CASES[0]),
            }
        )
    error = caught.value.errors()[0]
    assert error["loc"] == ("overrides",)
    assert "sum to 300%" in error["msg"]
