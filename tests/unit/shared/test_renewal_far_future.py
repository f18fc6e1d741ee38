"""A renewal whose first order (or whose limit) lies past year 9999: event times have no
upper bound in the schemas, so a record dated there reaches the renewal's limit. The
month arithmetic raised ``year ... is out of range`` (the worker dead-lettered the
renewal, and every what-if of the campaign failed with a 500), and the batch oracle's
looped for ever. Now a limit past year 9999 is never reached: the renewal earns, in the
core, the worker's decision, the what-if and the oracle alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest

from afflux.attribution.outputs import Converted
from afflux.attribution.renewals import decide
from afflux.oracle.batch import _months_after
from afflux.shared.core.attribution import ClickTouch
from afflux.shared.core.renewals import NEVER_MS, add_months, renewal_refusal
from afflux.shared.core.terms import CampaignTerms, RecurringCommission, TermsVersion
from afflux.shared.core.whatif.diff import whatif
from afflux.shared.core.whatif.log import CampaignLog, LoggedOrder, LoggedRenewal
from afflux.shared.events import ConversionAttributed, SubscriptionRenewed

pytestmark = pytest.mark.unit


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@dataclass(frozen=True)
class Case:
    name: str
    first: int
    months: int
    limit: int  # add_months(first, months)


CASES = [
    # The last month a datetime holds: the limit is a time.
    Case("into December 9999", ms("9999-06-15T00:00:00+00:00"), 6, ms("9999-12-15T00:00:00+00:00")),
    # One month further: past year 9999, never reached.
    Case("into January 10000", ms("9999-06-15T00:00:00+00:00"), 7, NEVER_MS),
    # The largest limit the terms allow from a first order in 9999.
    Case("1200 months from 9999", ms("9999-01-01T00:00:00+00:00"), 1200, NEVER_MS),
    # A first order itself past year 9999 (10^17 ms, year 3170843).
    Case("a first order in year 3170843", 10**17, 1, NEVER_MS),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_limit_past_year_9999_is_never_reached(case: Case) -> None:
    assert add_months(case.first, case.months) == case.limit
    assert _months_after(case.first, case.months) == case.limit  # the oracle's own
    recurring = RecurringCommission.model_validate(
        {"rate": {"percent": "10"}, "max_months": case.months}
    )
    a_day_on = case.first + 86_400_000  # a renewal the day after its first order earns
    assert renewal_refusal(recurring, case.first, 1, a_day_on) == ""
    if case.limit != NEVER_MS:  # and one at a limit that is a time does not
        assert renewal_refusal(recurring, case.first, 1, case.limit) == "renewal_beyond_limit"


TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "subs",
        "merchant_id": "m",
        "currency": "EUR",
        "plan": {
            "sale": {"rate": {"percent": "10"}},
            "recurring": {"rate": {"percent": "20"}, "max_months": 12},
        },
    }
)
VERSION = TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS)
FIRST_AT = ms("9999-06-15T00:00:00+00:00")
RENEWED_AT = FIRST_AT + 30 * 86_400_000


def test_the_worker_pays_a_renewal_whose_limit_is_past_year_9999() -> None:
    renewal = SubscriptionRenewed(
        event_id="r-1",
        occurred_at=RENEWED_AT,
        order_id="o-1",
        renewal_order_id="o-1:renewal-1",
        renewal_number=1,
        campaign_id="subs",
        merchant_id="m",
        amount_minor=1000,
        currency="EUR",
    )
    first = Converted("conv-o-1", "ana", 5000, "EUR", FIRST_AT)
    _, key, event = decide(renewal, first, "cookie", VERSION)
    assert isinstance(event, ConversionAttributed), event
    assert (key, event.affiliate_id, event.kind) == ("o-1:renewal-1", "ana", "renewal")


def test_a_whatif_with_such_a_renewal_answers() -> None:
    log = CampaignLog("subs")
    log.add_click("v", ClickTouch("k", "ana", "subs", FIRST_AT - 1000))
    log.add_order(LoggedOrder("o-1", "e-1", "v", FIRST_AT, 5000, "EUR"))
    log.add_renewal(LoggedRenewal("o-1", "o-1:renewal-1", 1, "e-r", RENEWED_AT, 1000, "EUR"))
    draft = TERMS.model_copy(update={"model": "first_click"})

    diff = whatif(log, (VERSION,), draft)

    assert diff.orders == 2  # the first order and its renewal, both decided
    assert diff.current_total_minor == diff.draft_total_minor == 500 + 200
