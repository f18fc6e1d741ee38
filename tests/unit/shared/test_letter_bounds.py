"""A dead letter always fits a producer's request: each text it repeats is cut by its
encoded size, and a cut text names the original's size and digest."""

from __future__ import annotations

import hashlib

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    ProducerClosed,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from afflux.shared.core.letter_bounds import (
    KEY_BUDGET_BYTES,
    VALUE_BUDGET_BYTES,
    bounded_text,
    encoded_size,
)
from afflux.shared.events import DeadLetter
from afflux.shared.io.kafka import broker_away, dead_letter
from afflux.shared.io.redis_client import redis_away
from afflux.shared.wire import encode

pytestmark = pytest.mark.unit

ONE_MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("", 0),
        ("abc", 3),
        ("\x01", 6),  # a control character becomes \u0001
        ('"\\', 4),  # a quote and a backslash are escaped with one backslash each
        ("\n", 2),
        ("é", 2),  # UTF-8, not \u escapes
        ("😀", 4),
    ],
)
def test_encoded_size_counts_json_escapes_and_utf8_bytes(text: str, size: int) -> None:
    assert encoded_size(text) == size


@pytest.mark.parametrize(
    "text",
    ["", "order-1", "é" * 50, "\x01" * (100 // 6)],
)
def test_a_text_within_its_budget_is_kept_as_it_is(text: str) -> None:
    assert bounded_text(text, 100) == text


@pytest.mark.parametrize(
    "text",
    [
        "a" * 101,
        "\x01" * 17,  # 102 bytes once escaped, though only 17 characters
        "é" * 51,
        "😀" * 26,
        "a" * 10 + "\x01" * 1000,
    ],
)
def test_a_text_over_its_budget_is_cut_to_it_and_names_the_original(text: str) -> None:
    whole = text.encode()
    cut = bounded_text(text, 100)
    assert encoded_size(cut) <= 100
    marker = f" …[cut: {len(whole)} bytes, sha256 {hashlib.sha256(whole).hexdigest()[:16]}]"
    assert cut.endswith(marker)
    assert text.startswith(cut.removesuffix(marker))


def test_the_cut_keeps_the_longest_prefix_that_fits() -> None:
    text = "ab" * 1000
    cut = bounded_text(text, 200)
    kept = cut[: cut.index(" …[cut:")]
    marker_size = encoded_size(cut) - encoded_size(kept)
    assert encoded_size(kept) == 200 - marker_size


def test_a_letter_of_a_huge_control_byte_key_and_value_fits_one_request() -> None:
    letter = dead_letter(
        consumer="afflux-payouts",
        topic="clicks",
        partition=0,
        offset=7,
        key=b"\x01" * 1_500_000,
        value=b"\x00" * 10_000_000,
        reason="x" * 100_000,
    )
    record_key = (letter.key or "").encode()
    assert len(encode(letter)) + len(record_key) < ONE_MIB
    assert encoded_size(letter.key or "") <= KEY_BUDGET_BYTES
    assert encoded_size(letter.value) <= VALUE_BUDGET_BYTES
    assert "…[cut: 1500000 bytes, sha256 " in (letter.key or "")


def test_a_letter_read_back_from_the_topic_is_unchanged() -> None:
    letter = dead_letter(
        consumer="c", topic="t", partition=0, offset=1, key=b"\x01" * 5000, value=b"v", reason="r"
    )
    assert DeadLetter.model_validate_json(encode(letter)) == letter


@pytest.mark.parametrize(
    ("failure", "away"),
    [
        (KafkaConnectionError(), True),
        (NotLeaderForPartitionError(), True),
        (KafkaTimeoutError(), True),
        (TimeoutError(), True),
        (ConnectionRefusedError(), True),
        (MessageSizeTooLargeError(), False),  # the letter itself: no retry cures it
        (ProducerClosed(), False),
        (ValueError("bad"), False),
    ],
)
def test_a_send_is_retried_only_while_the_broker_is_away(
    failure: BaseException, away: bool
) -> None:
    assert broker_away(failure) is away


@pytest.mark.parametrize(
    ("failure", "away"),
    [
        (RedisConnectionError("refused"), True),
        (RedisTimeoutError("slow"), True),
        (ReadOnlyError("replica"), True),
        (ResponseError("BUSY Redis is busy running a script"), True),
        (OSError("reset"), True),
        (ResponseError("ERR Error running script: user_script:1: bad"), False),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind"), False),
        (OverflowError("date value out of range"), False),
    ],
)
def test_redis_writes_are_retried_only_while_redis_is_away(
    failure: BaseException, away: bool
) -> None:
    assert redis_away(failure) is away
