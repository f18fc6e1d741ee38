"""The join's stored clicks keep one "flagged" verdict; rows from before it still load."""

from __future__ import annotations

import json

import pytest

from afflux.attribution.join import decode_state, encode_state

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("row", "flagged"),
    [
        (["v_a.1", "anna", "shop", 5, False, 7], False),  # current: [.., flagged, arrived]
        (["v_a.1", "anna", "shop", 5, True, 7], True),
        (["v_a.1", "anna", "shop", 5, False, False, 7], False),  # older: is_bot, is_duplicate
        (["v_a.1", "anna", "shop", 5, True, False, 7], True),
        (["v_a.1", "anna", "shop", 5, False, True, 7], True),
    ],
)
def test_stored_click_rows_load_with_their_flag(row: list[object], flagged: bool) -> None:
    state = decode_state(json.dumps({"c": [row]}).encode())
    touch, arrived = state.clicks["v_a.1"]
    assert (touch.flagged, touch.at, arrived) == (flagged, 5, 7)
    again = decode_state(encode_state(state))
    assert again.clicks["v_a.1"][0].flagged is flagged


def test_a_snapshot_of_clicks_is_written_byte_for_byte_as_before() -> None:
    """The changelog's bytes are those every worker wrote and reads back: rows as arrays in
    arrival order, the IP hashes of the clicks that have one beside them."""
    state = decode_state(
        json.dumps(
            {
                "c": [["v_a.1", "anna", "shop", 5, False, 7], ["v_a.2", "bob", "shop", 6, True, 9]],
                "i": {"v_a.2": "9f86d0"},
            }
        ).encode()
    )
    assert encode_state(state) == (
        b'{"c":[["v_a.1","anna","shop",5,false,7],["v_a.2","bob","shop",6,true,9]],'
        b'"i":{"v_a.2":"9f86d0"}}'
    )
    del state.clicks["v_a.2"]
    assert encode_state(state) == b'{"c":[["v_a.1","anna","shop",5,false,7]]}'
