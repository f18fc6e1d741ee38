"""A survey answer's handle must name someone: one of only spaces and @ (or with a control
character) is refused, on the survey route and on an order, since an order keeps its
first answer for good and a later, real answer would be a 409."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from afflux.orders.rules import OrderRequest, SurveyRequest

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    handle: str
    refused: bool


CASES = [
    Case("@DeeStyle", False),
    Case("deestyle", False),
    Case("d", False),  # one character is a handle
    Case("x" * 100, False),  # the longest
    Case("x" * 101, True),  # one longer
    Case("@", True),  # only the @
    Case(" @@ ", True),  # spaces and @
    Case("   ", True),  # only spaces
    Case("dee\nstyle", True),  # a control character
    Case("dee\x00", True),
    Case("ดี สไตล์", False),  # not ASCII, with a space inside
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c.handle)[:24])
def test_a_survey_handle_names_someone_or_is_refused(case: Case) -> None:
    def survey() -> object:
        return SurveyRequest.model_validate({"campaign_id": "c", "handle": case.handle})

    def order() -> object:
        return OrderRequest.model_validate(
            {
                "order_id": "o",
                "campaign_id": "c",
                "occurred_at": 1,
                "survey": {"handle": case.handle},
            }
        )

    for build, field in ((survey, "handle"), (order, "survey")):
        if not case.refused:
            build()
            continue
        with pytest.raises(ValidationError) as refused:
            build()
        assert refused.value.errors()[0]["loc"][0] == field
