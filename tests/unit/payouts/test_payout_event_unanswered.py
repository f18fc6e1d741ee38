"""A payout run stopped at a payout's event says whom to wait for: the broker when the
event was not sent, Redis when it was sent but not marked sent (Redis failing was
answered "run again once the broker answers" while the broker was fine)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from afflux.payouts import run
from afflux.payouts.run import BROKER, REDIS, RunStopped, Unanswered

pytestmark = pytest.mark.unit

RECORD = {
    "payout_id": "payout_1",
    "affiliate_id": "anna",
    "campaign_id": "shop",
    "currency": "EUR",
    "period": "2026-12",
    "amount_minor": 1000,
    "as_of": 0,
    "line_ids": [],
}


async def _fails(*_: Any) -> None:
    raise ConnectionError("Connection closed by server.")


async def _fine(*_: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("send", "mark", "who", "what"),
    [
        (_fails, _fine, BROKER, "a payout event was not sent (ConnectionError"),
        (_fine, _fails, REDIS, "a payout event was sent but not marked sent (ConnectionError"),
    ],
    ids=["broker", "redis"],
)
def test_the_run_names_the_component_that_did_not_answer(
    monkeypatch: pytest.MonkeyPatch, send: Any, mark: Any, who: str, what: str
) -> None:
    monkeypatch.setattr(run, "send_event", send)
    monkeypatch.setattr(run.payout_records, "mark_emitted", mark)

    with pytest.raises(Unanswered) as unanswered:
        asyncio.run(run._emit(None, None, RECORD))  # type: ignore[arg-type]

    assert unanswered.value.who == who
    stopped = RunStopped([], unanswered.value)
    assert str(stopped).startswith(what)
    assert stopped.unanswered == who
