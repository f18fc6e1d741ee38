"""The order-outcome answer shows the live conversion's rule and the survey answer the
attribution uses: the order's own, else the first one given later."""

from __future__ import annotations

import pytest

from afflux.orders.outcome import order_outcome, outcome_json
from afflux.shared.events import (
    ConversionAttributed,
    OrderPlaced,
    SurveyAnswer,
    SurveyAnswered,
)

pytestmark = pytest.mark.unit

AT = 1_793_491_200_000


def placed(survey: SurveyAnswer | None = None) -> OrderPlaced:
    return OrderPlaced(
        event_id="ev-o",
        occurred_at=AT,
        order_id="o1",
        campaign_id="c",
        merchant_id="m",
        amount_minor=100,
        currency="EUR",
        visitor_id="v",
        survey=survey,
    )


def later(n: int, **answer: str) -> SurveyAnswered:
    return SurveyAnswered(
        event_id=f"ev-s{n}",
        occurred_at=AT + n,
        order_id="o1",
        campaign_id="c",
        answer=SurveyAnswer.model_validate(answer),
    )


LIVE = ConversionAttributed(
    event_id="conv",
    occurred_at=AT,
    conversion_id="conv",
    order_id="o1",
    campaign_id="c",
    affiliate_id="ana",
    reason="livestream",
    model="last_click",
    window_ms=0,
    terms_version=1,
    amount_minor=100,
    currency="EUR",
    order_event_id="ev-o",
    live_stream_id="tiktok:s1",
)


def test_the_rule_and_an_answer_given_later_are_shown() -> None:
    body = outcome_json(order_outcome("c", "o1", [placed(), later(2, handle="@b"), LIVE]))
    assert body["rule"] == "livestream"
    assert body["decision"]["live_stream_id"] == "tiktok:s1"
    assert body["survey"] == {"affiliate_id": None, "handle": "@b", "given": "later"}


def test_the_orders_own_answer_wins_over_a_later_one() -> None:
    own = SurveyAnswer(affiliate_id="dee")
    body = outcome_json(order_outcome("c", "o1", [later(1, handle="x"), placed(own)]))
    assert body["survey"] == {"affiliate_id": "dee", "handle": None, "given": "with_order"}
    assert body["rule"] is None


def test_the_first_later_answer_is_the_one_shown() -> None:
    events = [placed(), later(5, handle="second"), later(1, handle="first")]
    assert outcome_json(order_outcome("c", "o1", events))["survey"]["handle"] == "first"


def test_no_answer_shows_none() -> None:
    assert outcome_json(order_outcome("c", "o1", [placed()]))["survey"] is None
