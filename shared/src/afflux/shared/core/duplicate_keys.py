"""Finding a name given twice in one JSON object.

JSON parsers disagree on ``{"amount_minor": 1, "amount_minor": 100000}``: most keep
the last value, some the first, some refuse it. A merchant's own systems and afflux
could then read different amounts or order ids from the same signed bytes, so an
ingested body that names a field twice is refused instead of guessed at.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


class _Duplicate(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def repeated_name_reason(name: str) -> str:
    """What a refusal of a body naming ``name`` twice says."""
    return f"malformed JSON: the name {name!r} appears twice in one object"


def first_duplicate_key(raw: bytes) -> str | None:
    """The first name that appears twice in one object of the JSON text ``raw``, else
    None (also when ``raw`` is not JSON: its parser's own error says more).

    Fast when there is none: every key is followed by exactly one ``:`` outside
    strings, so when ``raw`` holds no more colons than the parsed value has keys,
    no key was dropped. Otherwise (a colon in a string, such as an RFC 3339 time or
    a URL, or a text the fast parser refuses) the slower exact check decides.
    """
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    else:
        if raw.count(b":") == _key_count(parsed):
            return None
    try:
        json.loads(raw, object_pairs_hook=_refuse_duplicates)
    except _Duplicate as duplicate:
        return duplicate.name
    except (ValueError, RecursionError):
        return None
    return None


def _key_count(value: Any) -> int:
    count = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += len(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _Duplicate(name)
            seen.add(name)
    return found
