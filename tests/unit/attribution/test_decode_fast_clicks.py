"""The clicks fast path accepts exactly what ``ClickRecorded`` accepts, with the same values.

Every case is decoded twice: by ``decode_items`` (which tries the fast path first) and
by the general item-by-item path alone. They must give the same events, the same
refusals with the same reasons, and the same raw items for dead letters.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from event_fields import fields
from recording_runtime import recording_runtime, ten_percent_sale

from afflux.attribution.decode import (
    DecodedClick,
    decode_items,
    decode_items_one_by_one,
    item_of,
)
from afflux.attribution.stage import Owned, Record
from afflux.shared.events import DeadLetter
from afflux.shared.topics import CLICKS, DLQ
from afflux.shared.wire import decode_record

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "event_id": "ev-1",
    "type": "ClickRecorded",
    "schema_version": 1,
    "occurred_at": 1_793_491_200_000,
    "click_id": "c-1",
    "link_code": "lnk",
    "affiliate_id": "anna",
    "campaign_id": "camp",
    "visitor_id": "v-1",
}


def outcome(items: list[Any], value: bytes) -> list[tuple[Any, ...]]:
    """What the stage sees of each item: event fields, reason, the dead letter's item."""
    return [
        (
            index,
            fields(event),
            reason,
            item_of(value, index, event) if raw is None and event is not None else raw,
            error_class,
        )
        for index, event, reason, raw, error_class in items
    ]


def assert_paths_agree(value: bytes) -> list[tuple[Any, ...]]:
    fast = outcome(decode_items(value), value)
    general = outcome(decode_items_one_by_one(value), value)
    assert fast == general
    return fast


def with_(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def without(name: str) -> dict[str, Any]:
    return {k: v for k, v in BASE.items() if k != name}


CASES: dict[str, dict[str, Any]] = {
    "plain": BASE,
    "defaults_left_out": without("schema_version"),
    "all_fields": with_(
        ip_hash="ab" * 32,
        user_agent="Mozilla",
        ua_family="Firefox",
        ua_version="120",
        referrer="https://example.com/a",
        sub_ids={"sub1": "x"},
        utm={"utm_source": "ig"},
        is_bot=True,
        is_duplicate=True,
        flags=["bot", "same_ip_burst"],
    ),
    "unknown_fields_ignored": with_(extra={"deep": [1, 2, {"x": None}]}, other=3.5),
    "referrer_null": with_(referrer=None),
    "id_200_chars": with_(click_id="c" * 200),
    "id_200_chars_beyond_ascii": with_(click_id="é" * 200),
    "id_200_astral_chars": with_(click_id="\U0001f600" * 200),
    "id_201_chars": with_(click_id="c" * 201),
    "id_empty": with_(visitor_id=""),
    "id_a_number": with_(affiliate_id=7),
    "id_null": with_(campaign_id=None),
    "id_missing": without("link_code"),
    "nul_in_id": with_(click_id="a\x00b"),
    "time_rfc3339": with_(occurred_at="2026-11-01T00:00:00Z"),
    "time_rfc3339_offset": with_(occurred_at="2026-11-01T01:00:00+01:00"),
    "time_zero": with_(occurred_at=0),
    "time_negative": with_(occurred_at=-1),
    "time_float": with_(occurred_at=1.0),
    "time_bool": with_(occurred_at=True),
    "time_beyond_64_bits": with_(occurred_at=2**70),
    "time_missing": without("occurred_at"),
    "schema_2": with_(schema_version=2),
    "schema_float": with_(schema_version=1.0),
    "schema_true": with_(schema_version=True),
    "schema_string": with_(schema_version="1"),
    "type_missing": without("type"),
    "type_other": with_(type="OrderPlaced"),
    "bool_as_int": with_(is_bot=1),
    "bool_as_string": with_(is_duplicate="true"),
    "flag_with_newline": with_(flags=["bot\n"]),
    "flag_upper": with_(flags=["Bot"]),
    "flag_33_chars": with_(flags=["a" * 33]),
    "flags_8": with_(flags=["a"] * 8),
    "flags_9": with_(flags=["a"] * 9),
    "flags_a_string": with_(flags="bot"),
    "sub_ids_number_value": with_(sub_ids={"sub1": 1}),
    "sub_ids_a_list": with_(sub_ids=["a"]),
    "utm_null": with_(utm=None),
    "ip_hash_null": with_(ip_hash=None),
    "ip_hash_128_chars": with_(ip_hash="a" * 128),
    "ip_hash_129_chars": with_(ip_hash="a" * 129),
    "user_agent_1024_chars": with_(user_agent="é" * 1024),
    "user_agent_1025_chars": with_(user_agent="a" * 1025),
    "ua_version_80_digits": with_(ua_version="9" * 80),  # as the redirect once wrote
    "ua_family_1025_chars": with_(ua_family="a" * 1025),
    "ua_version_1025_chars": with_(ua_version="a" * 1025),
    "referrer_2048_chars": with_(referrer="r" * 2048),
    "referrer_2049_chars": with_(referrer="r" * 2049),
    "utm_value_512_astral_chars": with_(utm={"utm_content": "\U0001f600" * 512}),
    "utm_value_513_chars": with_(utm={"utm_content": "a" * 513}),
    "utm_name_65_chars": with_(utm={"u" * 65: "a"}),
    "utm_16_params": with_(utm={f"utm_{n}": "a" for n in range(16)}),
    "utm_17_params": with_(utm={f"utm_{n}": "a" for n in range(17)}),
    "sub_ids_17": with_(sub_ids={f"sub{n}": "a" for n in range(17)}),
    "sub_ids_value_513_chars": with_(sub_ids={"sub1": "a" * 513}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_click_decodes_alike_on_both_paths(name: str) -> None:
    assert_paths_agree(json.dumps(CASES[name]).encode())


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_packed_record_with_one_odd_click_decodes_alike(name: str) -> None:
    value = json.dumps([BASE, CASES[name], with_(event_id="ev-2")]).encode()

    seen = assert_paths_agree(value)

    assert len(seen) == 3


def test_a_valid_record_takes_the_fast_path() -> None:
    packed = json.dumps([BASE, CASES["all_fields"]]).encode()

    assert all(isinstance(event, DecodedClick) for _, event, *_ in decode_items(packed))


def test_a_packed_record_of_more_clicks_than_any_producer_packs_is_one_refusal() -> None:
    at_the_bound = json.dumps([with_(event_id=f"ev-{n}") for n in range(200)]).encode()
    past_it = json.dumps([with_(event_id=f"ev-{n}") for n in range(201)]).encode()

    assert all(isinstance(event, DecodedClick) for _, event, *_ in decode_items(at_the_bound))
    [(_, event, reason, _, error_class)] = decode_items(past_it)
    assert (event, error_class) == (None, "UndecodableRecord")
    assert "at most 200 events; this one holds 201" in reason


def test_a_fast_path_item_s_dead_letter_carries_the_item_as_sent() -> None:
    value = json.dumps([BASE, with_(event_id="ev-2", extra={"kept": True})]).encode()
    (_, _, _, raw, _) = decode_items(value)[1]

    assert raw is None  # not kept: found again only for a dead letter
    assert item_of(value, 1, DecodedClick(**{**BASE, "event_id": "ev-2"})) == with_(
        event_id="ev-2", extra={"kept": True}
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id":"a","event_id":"b","type":"ClickRecorded","occurred_at":1,'
        b'"click_id":"c","link_code":"l","affiliate_id":"a","campaign_id":"k","visitor_id":"v"}',
        b'{"event_id":"a","event_id":"","type":"ClickRecorded","occurred_at":1,'
        b'"click_id":"c","link_code":"l","affiliate_id":"a","campaign_id":"k","visitor_id":"v"}',
        b'{"event_id":"\\ud83d\\ude00","type":"ClickRecorded","occurred_at":1,'
        b'"click_id":"c","link_code":"l","affiliate_id":"a","campaign_id":"k","visitor_id":"v"}',
        b'{"event_id":"\\ud800","type":"ClickRecorded","occurred_at":1,'
        b'"click_id":"c","link_code":"l","affiliate_id":"a","campaign_id":"k","visitor_id":"v"}',
        b"[" + json.dumps(BASE).encode() + b",]",
        b"[]",
        b'"ClickRecorded"',
        b'["ClickRecorded"]',
        json.dumps([BASE] * 3).encode() + b" ",
        b"[" + b"[" * 40 + b'"ClickRecorded"' + b"]" * 41,
    ],
)
def test_odd_bytes_decode_alike(raw: bytes) -> None:
    assert_paths_agree(raw)


MUTATIONS: list[Any] = [
    "",
    "x",
    "é",
    "a\n",
    "a" * 201,
    0,
    -1,
    1.5,
    True,
    None,
    [],
    {},
    ["bot"],
    {"k": "v"},
    2**64,
    "2026-11-01T00:00:00Z",
]


def test_randomly_mutated_packed_clicks_decode_alike() -> None:
    """Seeded: each record mutates, drops or adds a few fields of a few clicks."""
    names = [*BASE, "ip_hash", "referrer", "sub_ids", "utm", "is_bot", "flags", "new"]
    rng = random.Random(20261202)
    fast_taken = 0
    for _ in range(600):
        record = []
        for n in range(rng.randint(1, 4)):
            item = with_(event_id=f"ev-{n}")
            for _ in range(rng.choice([0, 0, 1, 2])):
                name = rng.choice(names)
                if rng.random() < 0.2:
                    item.pop(name, None)
                else:
                    item[name] = rng.choice(MUTATIONS)
            record.append(item)
        value = json.dumps(record).encode()
        assert_paths_agree(value)
        fast_taken += all(isinstance(e, DecodedClick) for _, e, *_ in decode_items(value))
    assert fast_taken > 100  # the fast path was really tried, not always refused


def test_a_refused_fast_path_click_is_dead_lettered_as_it_was_sent() -> None:
    """The join refuses the second click (stamped a year after its record): its dead
    letter holds that item exactly, unknown fields too, and its neighbour is applied."""
    sent: list[tuple[str, bytes | None]] = []
    rt = recording_runtime(sent, ten_percent_sale(), "fast")
    ts = BASE["occurred_at"]
    future = with_(event_id="ev-2", click_id="c-2", occurred_at=ts + 400 * 86_400_000, x=[1])
    value = json.dumps([BASE, future]).encode()
    assert all(isinstance(e, DecodedClick) for _, e, *_ in decode_items(value))

    async def run() -> None:
        rt.join.owned[0] = Owned(rt.join.new_state())
        await rt.join.handle(Record(CLICKS.name, 0, 0, b"v-1", value, ts))

    asyncio.run(run())
    [letter] = [e for t, v in sent if t == DLQ.name for e in decode_record(v)]
    assert isinstance(letter, DeadLetter)
    assert letter.reason.startswith("event_time_in_future")
    assert json.loads(letter.value) == future
    assert "c-1" in rt.join.owned[0].state.keys["v-1"].clicks


def test_a_packed_record_of_no_events_is_refused_not_dropped() -> None:
    ((index, event, reason, _, error_class),) = decode_items(b"[]")

    assert (index, event, error_class) == (0, None, "UndecodableRecord")
    assert reason.startswith("an empty array")


def test_a_refused_click_s_reason_is_one_line_naming_each_field() -> None:
    value = json.dumps(without("visitor_id") | {"affiliate_id": 7}).encode()

    ((_, event, reason, _, error_class),) = decode_items_one_by_one(value)

    assert (event, error_class) == (None, "ValidationError")
    assert "\n" not in reason
    assert reason == (
        "invalid event: ClickRecorded.affiliate_id: Input should be a valid string; "
        "ClickRecorded.visitor_id: Field required"
    )
