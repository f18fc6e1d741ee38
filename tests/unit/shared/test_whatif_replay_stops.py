"""The what-if time limit covers the replay, not only the read: ``whatif`` asks its
``stop`` while it decides orders (every ``_CHECK_EVERY``) and before each
campaign-period is priced, and raises ``ReplayStopped`` once it holds, so a campaign
whose log was read just inside the limit is not then replayed for as long again. A
``stop`` that never holds changes nothing in the answer."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.shared.core.attribution import ClickTouch
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.diff import whatif
from afflux.shared.core.whatif.log import CampaignLog, LoggedOrder
from afflux.shared.core.whatif.replay import _CHECK_EVERY, ReplayStopped

pytestmark = pytest.mark.unit

DAY0 = 1_793_491_200_000
DAY = 86_400_000
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "camp",
        "merchant_id": "m",
        "currency": "EUR",
        "plan": {"period": "week", "sale": {"rate": {"percent": "10"}}},
    }
)
CURRENT = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)
DRAFT = TERMS.model_copy(update={"model": "first_click"})


def log_of(orders: int, days: int = 1) -> CampaignLog:
    log = CampaignLog("camp")
    for n in range(orders):
        at = DAY0 + (n % days) * DAY + n
        log.add_click(f"v{n}", ClickTouch(f"k{n}", f"c{n % 7}", "camp", at))
        log.add_order(LoggedOrder(f"o{n}", f"e{n}", f"v{n}", at + 1, 1_000, "EUR"))
    return log


@dataclass
class StopAfter:
    """Holds from its ``after``-th ask on; counts the asks."""

    after: int
    asked: int = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked >= self.after


@dataclass(frozen=True)
class Case:
    name: str
    orders: int
    days: int
    after: int  # the ask from which ``stop`` holds
    stopped: bool


CASES = [
    # Stop holds at once: no period is priced.
    Case("at the first period", 10, 1, 1, True),
    # Holds at the second period's ask (two weekly periods): stopped before the second.
    Case("between periods", 10, 14, 2, True),
    # Enough orders for one ask while deciding: stopped there.
    Case("while deciding orders", _CHECK_EVERY, 1, 1, True),
    # Never within the asks the replay makes: the answer as without a stop.
    Case("never", 50, 14, 10_000, False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_replay_stops_once_its_stop_holds(case: Case) -> None:
    log = log_of(case.orders, case.days)
    stop = StopAfter(case.after)
    if case.stopped:
        with pytest.raises(ReplayStopped):
            whatif(log, CURRENT, DRAFT, stop=stop)
        assert stop.asked == case.after
    else:
        assert whatif(log, CURRENT, DRAFT, stop=stop) == whatif(log, CURRENT, DRAFT)
        assert stop.asked > 0
