"""A survey answer must name someone: a handle of only spaces and @, or a handle or an
affiliate id with a control or other invisible character, is refused, on the survey
route and on an order, since an order keeps its first answer for good and a later, real
answer would be a 409."""

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
    Case("dee\u200bstyle", True),  # a zero-width space: looks like deestyle, names nobody
    Case("@\ufeffdeestyle", True),  # a byte order mark
    Case("dee\x85style", True),  # a C1 control
    Case("ดี สไตล์", False),  # not ASCII, with a space inside
    Case("@jose\u0301", False),  # a buyer's keyboard may decompose: a handle, as typed
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: ascii(c.handle)[:24])
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


@pytest.mark.parametrize(
    ("affiliate_id", "refused"),
    [
        ("dee", False),
        ("créatrice-7", False),  # letters of any script
        ("dee\u200b", True),  # looks like dee, names nobody
        ("\u2060dee", True),  # a word joiner
        ("de\x9fe", True),  # a C1 control
        ("cre\u0301atrice-7", True),  # not NFC: looks like créatrice-7, names nobody
    ],
    ids=ascii,
)
def test_a_survey_affiliate_id_is_visible_or_refused(affiliate_id: str, refused: bool) -> None:
    def survey() -> object:
        return SurveyRequest.model_validate({"campaign_id": "c", "affiliate_id": affiliate_id})

    def order() -> object:
        return OrderRequest.model_validate(
            {
                "order_id": "o",
                "campaign_id": "c",
                "occurred_at": 1,
                "survey": {"affiliate_id": affiliate_id},
            }
        )

    for build, field in ((survey, "affiliate_id"), (order, "survey")):
        if not refused:
            build()
            continue
        with pytest.raises(ValidationError) as refusal:
            build()
        error = refusal.value.errors()[0]
        assert error["loc"][0] == field
        assert "affiliate_id: contains U+" in error["msg"] or "(NFC)" in error["msg"]
