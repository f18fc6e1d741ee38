"""Decoding a record into events: the whole-record pass and the item-by-item path agree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from event_fields import fields

from afflux.attribution.decode import decode_items
from afflux.shared.events import ClickRecorded
from afflux.shared.wire import encode, encode_packed

pytestmark = pytest.mark.unit


def click(n: int) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{n}",
        occurred_at=1_793_491_200_000 + n,
        click_id=f"c-{n}",
        link_code="lnk",
        affiliate_id="anna",
        campaign_id="camp",
        visitor_id=f"v-{n}",
    )


def events(value: bytes | None) -> list[dict[str, Any] | None]:
    return [fields(event) for _, event, _, _, _ in decode_items(value)]


def test_a_valid_packed_record_gives_every_event_in_order() -> None:
    items = decode_items(encode_packed([click(1), click(2), click(3)]))

    assert [(index, fields(event), reason) for index, event, reason, _, _ in items] == [
        (0, fields(click(1)), ""),
        (1, fields(click(2)), ""),
        (2, fields(click(3)), ""),
    ]


def test_a_single_event_record_gives_that_event() -> None:
    assert events(encode(click(7))) == [fields(click(7))]


def test_one_bad_item_does_not_take_its_neighbours_with_it() -> None:
    bad = {"type": "ClickRecorded", "event_id": "ev-bad"}
    value = json.dumps(
        [click(1).model_dump(mode="json"), bad, click(2).model_dump(mode="json")]
    ).encode()

    items = decode_items(value)

    assert [fields(event) for _, event, _, _, _ in items] == [
        fields(click(1)),
        None,
        fields(click(2)),
    ]
    _, _, reason, raw, _ = items[1]
    assert reason.startswith("invalid event")
    assert raw == bad


def test_an_event_newer_than_this_build_is_refused_with_its_reason() -> None:
    newer = {**click(1).model_dump(mode="json"), "schema_version": 99}
    value = json.dumps([click(2).model_dump(mode="json"), newer]).encode()

    items = decode_items(value)

    assert fields(items[0][1]) == fields(click(2))
    assert items[1][1] is None
    assert "schema_version 99" in items[1][2]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty record value"),
        (b"{not json", "not JSON"),
        (b"42", "record must be a JSON object"),
    ],
)
def test_undecodable_values_give_their_reason(value: bytes | None, reason: str) -> None:
    ((_, event, why, _, _),) = decode_items(value)

    assert event is None
    assert why.startswith(reason)
