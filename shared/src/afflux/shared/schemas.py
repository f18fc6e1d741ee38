"""JSON Schemas of the wire contract, for producers and consumers in other languages.

``export(directory)`` writes one ``<Name>.schema.json`` per event in
``EVENT_TYPES``, ``Record.schema.json`` (a record value: one event or a packed
array), ``CampaignFile.schema.json`` (campaign terms files and the terms
carried by ``CampaignTermsPublished``) and a ``README.md`` describing the
envelope, the topics and how to produce. ``stale(directory)`` names the files
that differ from what this build would write; a unit test keeps them current.
Run ``afflux schemas export`` after changing an event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from afflux.shared import topics
from afflux.shared.campaign_file import CampaignFile
from afflux.shared.core.upcasters import CURRENT_VERSIONS
from afflux.shared.event_docs import readme_text
from afflux.shared.events import EVENT_TYPES, AnyEvent, Envelope

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
CAMPAIGN_FILE = "CampaignFile.schema.json"
RECORD = "Record.schema.json"

EVENT_TOPICS: dict[str, tuple[topics.Topic, ...]] = {
    "ClickRecorded": (topics.CLICKS,),
    "OrderPlaced": (topics.ORDERS,),
    "LeadConfirmed": (topics.ORDERS, topics.CONVERSIONS),
    "SurveyAnswered": (topics.ORDERS,),
    "OrderRefunded": (topics.REFUNDS,),
    "SubscriptionRenewed": (topics.REFUNDS,),  # keyed by the first order, beside its refunds
    "ConversionAttributed": (topics.CONVERSIONS,),
    "ConversionReversed": (topics.REVERSALS,),
    "OrderUnattributed": (topics.UNMATCHED,),
    "RefundUnmatched": (topics.UNMATCHED,),
    "CampaignTermsPublished": (topics.CAMPAIGNS,),
    "PayoutIssued": (topics.PAYOUTS,),
    "ContentPublished": (topics.CONTENT,),
    "ContentStats": (topics.CONTENT,),
    "ContentReleased": (topics.CONTENT,),
    "ConversionReviewed": (topics.REVIEWS,),
    "DeadLetter": (topics.DLQ,),
}
"""Where each event travels (LeadConfirmed is re-emitted on conversions for payouts)."""
HOME_TOPICS: dict[str, frozenset[str]] = {
    name: frozenset(t.name for t in ts) for name, ts in EVENT_TOPICS.items()
}
WRONG_TOPIC = "wrong_topic"


def wrong_topic(event_name: str, topic: str) -> str:
    """Why an event read on ``topic`` is refused ('' when it travels there): an order
    written to ``clicks``, or a conversion to ``content``, would be used as if its topic's
    producer had made it."""
    if topic in HOME_TOPICS.get(event_name, ()):
        return ""
    return f"{WRONG_TOPIC}: {event_name} does not travel on {topic!r}"


def event_name(model: type[Envelope]) -> str:
    return model.__name__


def _require_type(schema: dict[str, Any]) -> None:
    """``type`` has a default in Python but is the discriminator on the wire: required."""
    properties = schema.get("properties", {})
    if "type" in properties and "type" not in schema.get("required", []):
        schema["required"] = ["type", *schema.get("required", [])]


# Events whose key is not their topic's rule for every event on it: the orders topic's
# rule names each of its events.
_ORDER_KEY = "visitor_id, else the click's visitor, else order_id"
EVENT_KEYS = {
    "OrderPlaced": _ORDER_KEY,
    "LeadConfirmed": f"its order's key ({_ORDER_KEY} of the order)",
    "SurveyAnswered": f"its order's key ({_ORDER_KEY} of the order)",
}


def event_schema(model: type[Envelope]) -> dict[str, Any]:
    """The JSON Schema of one event, with its topics and current schema_version."""
    schema = model.model_json_schema()
    _require_type(schema)
    name = event_name(model)
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = f"{name}.schema.json"
    schema["x-afflux-topics"] = [t.name for t in EVENT_TOPICS[name]]
    schema["x-afflux-key"] = EVENT_KEYS.get(name, EVENT_TOPICS[name][0].key)
    schema["x-afflux-schema-version"] = CURRENT_VERSIONS.get(name, 1)
    return schema


def record_schema() -> dict[str, Any]:
    """A record value: one event object, or a packed array of events of one partition."""
    adapter: TypeAdapter[Any] = TypeAdapter(AnyEvent | list[AnyEvent])
    schema = adapter.json_schema()
    for definition in schema.get("$defs", {}).values():
        if definition.get("title") in EVENT_TOPICS:
            _require_type(definition)
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = RECORD
    schema["title"] = "afflux record value"
    schema["description"] = "One event, or a JSON array of events that share the record's key."
    return schema


def campaign_file_schema() -> dict[str, Any]:
    """The terms file of ``afflux campaigns apply``; under ``terms``, the PUT body."""
    schema = CampaignFile.model_json_schema()
    schema["title"] = "afflux campaign terms file"
    return schema


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def rendered() -> dict[str, str]:
    """File name → text of every file under docs/events/."""
    models: list[type[BaseModel]] = list(EVENT_TYPES)
    files = {f"{m.__name__}.schema.json": _dump(event_schema(m)) for m in EVENT_TYPES}
    files[RECORD] = _dump(record_schema())
    files[CAMPAIGN_FILE] = _dump(campaign_file_schema())
    files["README.md"] = readme_text(
        [(m.__name__, [t.name for t in EVENT_TOPICS[m.__name__]]) for m in models]
    )
    return files


def stale(directory: Path) -> list[str]:
    """Files under ``directory`` that are missing, different, or no longer produced."""
    wanted = rendered()
    out = []
    for name, text in sorted(wanted.items()):
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    out.extend(sorted(p.name for p in directory.glob("*.schema.json") if p.name not in wanted))
    return out


def export(directory: Path) -> list[Path]:
    """Write every file (and remove schemas of events that no longer exist)."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = rendered()
    for path in directory.glob("*.schema.json"):
        if path.name not in wanted:
            path.unlink()
    written = []
    for name, text in sorted(wanted.items()):
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
