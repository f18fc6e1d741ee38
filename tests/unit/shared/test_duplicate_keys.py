"""A name given twice in one JSON object is found however the text is shaped."""

from __future__ import annotations

import pytest

from afflux.shared.core.duplicate_keys import first_duplicate_key

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "duplicate"),
    [
        (b'{"a":1,"b":2}', None),
        (b'{"a":1,"a":2}', "a"),
        (b'{"a" : 1 , "a" : 1}', "a"),  # the same value twice is still two names
        (b'{"items":[{"sku":"x","sku":"y"}]}', "sku"),  # nested in a list
        (b'{"a":{"b":1},"c":{"b":2}}', None),  # one name in two objects
        (b'{"t":"2026-12-01T10:00:00Z","u":"https://x.example/a:b"}', None),  # colons in strings
        (b'{"t":"2026-12-01T10:00:00Z","t":"2026-12-02T10:00:00Z"}', "t"),
        (b'{"amount_minor":1000000000000000000000000000000,"amount_minor":5}', "amount_minor"),
        (b'{"a":1,"\\u0061":2}', "a"),  # an escaped spelling of the same name
        (b'{"a":NaN,"a":1}', "a"),
        (b'{"a":', None),  # not JSON: the parser's own error says more
        (b"[" * 100_000 + b"]" * 100_000, None),
        (b"", None),
    ],
)
def test_first_duplicate_key(raw: bytes, duplicate: str | None) -> None:
    assert first_duplicate_key(raw) == duplicate
