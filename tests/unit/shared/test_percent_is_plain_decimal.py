"""A percent in campaign terms given as text is plain ASCII decimal: ``Decimal`` alone
reads other scripts' digits and exponents, which rule texts would then show."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from afflux.shared.core.engagement_terms import EngagementValues
from afflux.shared.core.overrides import AgencyMembership
from afflux.shared.core.terms import Rate

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("given", "read"),
    [("8", Decimal(8)), ("12.5", Decimal("12.5")), ("0.0001", Decimal("0.0001")), (8, Decimal(8))],
)
def test_a_plain_percent_is_read_exactly(given: object, read: Decimal) -> None:
    assert Rate.model_validate({"percent": given}).percent == read


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("\u0665", "is not a plain decimal number"),  # Arabic-Indic five
        ("\uff15", "is not a plain decimal number"),  # fullwidth five
        ("1e1", "is not a plain decimal number"),
        (" 5", "is not a plain decimal number"),
        ("5.", "is not a plain decimal number"),
        ("-1", "greater than or equal to 0"),
        ("100.5", "less than or equal to 100"),
    ],
)
def test_a_percent_that_is_not_plain_decimal_text_is_refused_naming_it(
    given: str, reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason) as refused:
        Rate.model_validate({"percent": given})
    assert refused.value.errors()[0]["loc"] == ("percent",)


@pytest.mark.parametrize(
    ("model", "field", "data"),
    [
        (
            AgencyMembership,
            "share_percent",
            {"agency_id": "ag", "share_percent": "\u0661\u0660"},  # Arabic-Indic ten
        ),
        (EngagementValues, "like_minor", {"like_minor": "5e-1"}),
    ],
)
def test_every_decimal_of_campaign_terms_is_plain_text_or_refused(
    model: type[BaseModel], field: str, data: dict[str, object]
) -> None:
    with pytest.raises(ValidationError, match="is not a plain decimal number") as refused:
        model.model_validate(data)
    assert refused.value.errors()[0]["loc"][0] == field
