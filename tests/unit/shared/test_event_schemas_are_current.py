"""docs/events/ holds the JSON Schemas other languages produce and consume with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from afflux.shared import schemas
from afflux.shared.core.clock import MAX_EVENT_TIME_MS
from afflux.shared.events import EVENT_TYPES, AnyEvent, ClickRecorded
from afflux.shared.topics import ALL_TOPICS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
EVENTS_DIR = ROOT / "docs/events"


def test_docs_events_match_the_models() -> None:
    assert schemas.stale(EVENTS_DIR) == [], "docs/events is stale: run ./afflux schemas export"


def test_every_event_has_a_schema_and_a_topic() -> None:
    names = {model.__name__ for model in EVENT_TYPES}
    assert set(schemas.EVENT_TOPICS) == names
    files = schemas.rendered()
    assert {f"{name}.schema.json" for name in names} <= set(files)


def test_readme_lists_every_topic() -> None:
    readme = schemas.rendered()["README.md"]
    assert [t.name for t in ALL_TOPICS if f"| `{t.name}` |" not in readme] == []


def test_type_is_required_and_event_time_accepts_both_shapes() -> None:
    schema = schemas.event_schema(ClickRecorded)
    assert schema["required"][0] == "type"
    assert schema["properties"]["type"]["const"] == "ClickRecorded"
    shapes = schema["properties"]["occurred_at"]["anyOf"]
    assert {"type": "integer", "minimum": 0, "maximum": MAX_EVENT_TIME_MS} in shapes
    assert {"type": "string", "format": "date-time"} in shapes


def test_legacy_campaign_schema_path_still_resolves() -> None:
    legacy = ROOT / "docs/campaigns.schema.json"
    moved = EVENTS_DIR / schemas.CAMPAIGN_FILE
    assert legacy.read_text(encoding="utf-8") == moved.read_text(encoding="utf-8")


def test_record_schema_admits_single_and_packed_values() -> None:
    record = json.loads(schemas.rendered()[schemas.RECORD])
    assert len(record["anyOf"]) == 2
    event = {
        "event_id": "e1",
        "type": "OrderRefunded",
        "occurred_at": "2026-01-01T00:00:00Z",
        "refund_id": "r1",
        "order_id": "o1",
        "campaign_id": "c1",
        "amount_minor": 100,
        "currency": "EUR",
    }
    parsed = TypeAdapter(AnyEvent).validate_python(event)
    assert parsed.occurred_at == 1_767_225_600_000
