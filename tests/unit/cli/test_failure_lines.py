"""Which failures a command reports in one line (an operator can act on them) and which
stay tracebacks (a defect: an event built wrong, a bench's recovery check timing out)."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from afflux.cli.failures import failure_line
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.io.kafka import BrokerUnreachable

pytestmark = pytest.mark.unit


class Event(BaseModel):
    occurred_at: int


def _error_of(build: object) -> ValidationError:
    try:
        build()  # type: ignore[operator]
    except ValidationError as exc:
        return exc
    raise AssertionError("no validation error")


def test_unreachable_servers_and_bad_settings_are_one_line() -> None:
    settings = _error_of(lambda: PayoutsSettings(_env_file=None, ledger_compact_grace_days="x"))
    lines = [
        failure_line(BrokerUnreachable("cannot reach the Kafka broker at 127.0.0.1:1")),
        failure_line(KafkaConnectionError("Unable to bootstrap")),
        failure_line(RedisConnectionError("Connection refused")),
        failure_line(settings),
    ]
    assert [(line or "")[:35] for line in lines] == [
        "cannot reach the Kafka broker at 12",
        "cannot reach the broker (AFFLUX_KAF",
        "cannot reach Redis (AFFLUX_REDIS_UR",
        "invalid settings (PayoutsSettings):",
    ]
    assert "ledger_compact_grace_days" in (lines[3] or "")


@pytest.mark.parametrize(
    "defect",
    [
        _error_of(lambda: Event(occurred_at="soon")),  # type: ignore[arg-type]
        TimeoutError("no output within 600 s of the restart"),
        KeyError("x"),
    ],
    ids=["an event built wrong", "a recovery check timing out", "a plain bug"],
)
def test_a_defect_stays_a_traceback(defect: Exception) -> None:
    assert failure_line(defect) is None
