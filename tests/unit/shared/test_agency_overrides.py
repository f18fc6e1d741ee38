"""Agency overrides in the terms: chains, levels, cycles refused, and the mirrored split
(afflux.shared.core.overrides)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from afflux.orders import campaigns_cli
from afflux.shared.core.overrides import AgencyOverrides, MirroredPart, mirror, share_of
from afflux.shared.core.terms import CampaignTerms

pytestmark = pytest.mark.unit


def overrides(levels: int = 1, **agencies: tuple[str, str]) -> AgencyOverrides:
    return AgencyOverrides.model_validate(
        {
            "levels": levels,
            "agencies": {m: {"agency_id": a, "share_percent": s} for m, (a, s) in agencies.items()},
        }
    )


@dataclass(frozen=True)
class ChainCase:
    name: str
    levels: int
    chain: tuple[tuple[int, str, Decimal], ...]


THREE_DEEP = {"ana": ("north", "10"), "north": ("group", "5"), "group": ("holding", "2")}
CHAIN_CASES = [
    # The default: only the creator's own agency earns.
    ChainCase("one level", 1, ((1, "north", Decimal(10)),)),
    # Two levels: the agency's agency earns its own share of the creator's pay.
    ChainCase("two levels", 2, ((1, "north", Decimal(10)), (2, "group", Decimal(5)))),
    # Three levels: the most allowed.
    ChainCase(
        "three levels",
        3,
        ((1, "north", Decimal(10)), (2, "group", Decimal(5)), (3, "holding", Decimal(2))),
    ),
]


@pytest.mark.parametrize("case", CHAIN_CASES, ids=lambda c: c.name)
def test_an_agency_chain_stops_at_the_configured_level(case: ChainCase) -> None:
    assert overrides(case.levels, **THREE_DEEP).chain("ana") == case.chain


def test_a_creator_without_an_agency_has_no_chain() -> None:
    assert overrides(3, **THREE_DEEP).chain("bob") == ()


@dataclass(frozen=True)
class RefusedCase:
    name: str
    data: dict[str, object]
    message: str


REFUSED = [
    # A member that is its own agency.
    RefusedCase(
        "self",
        {"agencies": {"ana": {"agency_id": "ana", "share_percent": "10"}}},
        "ana -> ana",
    ),
    # Two agencies that belong to each other, reached from a creator.
    RefusedCase(
        "two-cycle",
        {
            "agencies": {
                "ana": {"agency_id": "north", "share_percent": "10"},
                "north": {"agency_id": "south", "share_percent": "5"},
                "south": {"agency_id": "north", "share_percent": "5"},
            }
        },
        "north -> south -> north",
    ),
    # Levels beyond three.
    RefusedCase("four levels", {"levels": 4}, "levels"),
    # Zero levels.
    RefusedCase("zero levels", {"levels": 0}, "levels"),
    # A share of 0 earns nothing: refused rather than silently kept.
    RefusedCase(
        "zero share", {"agencies": {"ana": {"agency_id": "n", "share_percent": "0"}}}, "share"
    ),
    # More than the whole commission.
    RefusedCase(
        "share above 100",
        {"agencies": {"ana": {"agency_id": "n", "share_percent": "100.01"}}},
        "share",
    ),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_bad_override_settings_are_refused_naming_the_field(case: RefusedCase) -> None:
    with pytest.raises(ValidationError) as caught:
        AgencyOverrides.model_validate(case.data)
    assert case.message in str(caught.value)


def test_a_cycle_in_campaign_terms_names_the_overrides_field() -> None:
    with pytest.raises(ValidationError) as caught:
        CampaignTerms.model_validate(
            {
                "campaign_id": "c",
                "merchant_id": "m",
                "currency": "EUR",
                "overrides": {
                    "agencies": {
                        "a": {"agency_id": "b", "share_percent": "1"},
                        "b": {"agency_id": "a", "share_percent": "1"},
                    }
                },
            }
        )
    error = caught.value.errors()[0]
    assert error["loc"] == ("overrides",)
    assert "agencies" in error["msg"]
    assert "a -> b -> a" in error["msg"]


@dataclass(frozen=True)
class ShareCase:
    name: str
    amount: int
    percent: str
    share: int


SHARES = [
    # 10 % of 125 = 12.5: a half rounds down, never past the share.
    ShareCase("half", 125, "10", 12),
    # 10 % of 129 = 12.9: down too.
    ShareCase("above half", 129, "10", 12),
    # Exact: nothing to round.
    ShareCase("exact", 120, "10", 12),
    # 50 % of 1 unit: nothing (half up paid each of two 50 % levels a whole unit).
    ShareCase("half of one unit", 1, "50", 0),
    # A negative running sum rounds down too, so the share never exceeds it either.
    ShareCase("negative", -125, "10", -13),
    # A fractional percent, exactly: 124.875.
    ShareCase("fractional percent", 999, "12.5", 124),
]


@pytest.mark.parametrize("case", SHARES, ids=lambda c: c.name)
def test_a_share_is_rounded_once_down(case: ShareCase) -> None:
    assert share_of(case.amount, Decimal(case.percent)) == case.share


def test_mirrored_parts_add_up_to_the_share_of_what_the_line_pays() -> None:
    # accrual 125, refund -25 on the same date, clawback -33 later: the line pays 67.
    # The running sums 125, 100, 67 give 12, 10, 6: each part takes back at least its
    # share, so the override never stays above the share of what is left.
    components = {("accrual", 100): 125, ("refund", 100): -25, ("clawback:r1", 200): -33}
    parts = mirror(components, Decimal(10))
    assert parts == (
        MirroredPart("accrual", 100, 12),
        MirroredPart("refund", 100, -2),
        MirroredPart("clawback:r1", 200, -4),
    )
    assert sum(p.amount_minor for p in parts) == share_of(67, Decimal(10))


def test_campaigns_apply_refuses_a_cycle_with_exit_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text(
        "campaigns:\n"
        "  - terms:\n"
        "      campaign_id: c1\n"
        "      merchant_id: m\n"
        "      currency: EUR\n"
        "      overrides:\n"
        "        agencies:\n"
        '          ana: {agency_id: north, share_percent: "10"}\n'
        '          north: {agency_id: ana, share_percent: "5"}\n'
    )
    assert campaigns_cli.main(["apply", str(path)]) == 2  # before any broker is asked
    error = capsys.readouterr().err
    assert "campaigns.0.terms.overrides" in error
    assert "ana -> north -> ana" in error
