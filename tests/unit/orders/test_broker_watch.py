"""What the orders service's sends say about the broker (/healthz's kafka check)."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from afflux.orders.broker_watch import SendState, SendWatch, verdict

pytestmark = pytest.mark.unit


def state(
    now: float,
    *,
    waiting: float | None = None,
    acknowledged: float | None = None,
    failed: float | None = None,
) -> SendState:
    return SendState(
        now=now,
        oldest_waiting=waiting,
        last_acknowledged=acknowledged,
        last_failed=failed,
        last_error="KafkaTimeoutError",
    )


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(state(100.0), "probe", id="never sent: ask the broker"),
        pytest.param(state(100.0, acknowledged=99.0), None, id="acknowledged a second ago"),
        pytest.param(state(100.0, acknowledged=95.0), None, id="acknowledged 5 s ago"),
        pytest.param(state(100.0, acknowledged=94.9), "probe", id="nothing for over 5 s"),
        pytest.param(state(100.0, acknowledged=99.9, waiting=98.0), None, id="a send waiting 2 s"),
        pytest.param(
            state(100.0, acknowledged=99.9, waiting=97.9),
            "a send has waited 2.1 s for the broker's acknowledgement",
            id="a send waiting over 2 s, however recent the last acknowledgement",
        ),
        pytest.param(
            state(100.0, acknowledged=90.0, failed=95.0),
            "the broker did not acknowledge a send 5.0 s ago (KafkaTimeoutError)",
            id="failed, nothing acknowledged since",
        ),
        pytest.param(
            state(100.0, acknowledged=96.0, failed=95.0), None, id="failed, then acknowledged"
        ),
        pytest.param(state(100.0, failed=89.9), "probe", id="an old failure: ask the broker again"),
    ],
)
def test_the_kafka_check_reads_the_sends_before_asking_the_broker(
    at: SendState, expected: str | None
) -> None:
    assert verdict(at) == expected


def test_a_cancelled_send_says_nothing_and_the_oldest_waiting_send_is_shown() -> None:
    now = [10.0]
    watch = SendWatch(clock=lambda: now[0])
    first = watch.begin()
    now[0] = 11.0
    second = watch.begin()
    assert watch.state().oldest_waiting == 10.0
    watch.abandon(first)
    assert watch.state().oldest_waiting == 11.0
    assert watch.state().last_acknowledged is None
    now[0] = 12.0
    watch.end(second, TimeoutError())
    after = watch.state()
    assert (after.oldest_waiting, after.last_failed, after.last_error) == (
        None,
        12.0,
        "TimeoutError",
    )


def test_a_record_refused_for_itself_is_neither_an_outage_nor_an_acknowledgement() -> None:
    """A record too large says nothing of the broker: counted as a failure, a quiet
    service said 503 for ten seconds; counted as an acknowledgement, it would hide one."""
    now = [5.0]
    watch = SendWatch(clock=lambda: now[0])
    watch.end(watch.begin(), MessageSizeTooLargeError())
    assert (watch.state().last_failed, watch.state().last_acknowledged) == (None, None)
    watch.end(watch.begin(), KafkaConnectionError())
    assert watch.state().last_failed == 5.0
