"""The text of docs/events/README.md, rendered with the live topic registry.

Kept beside ``afflux.shared.schemas`` so that the topics table can never drift
from ``afflux.shared.topics``: the staleness test compares the whole page.
"""

from __future__ import annotations

from collections.abc import Sequence

from afflux.shared.topics import ALL_TOPICS

_HEAD = """\
# Event contracts

Every afflux topic carries JSON, UTF-8. This folder holds the JSON Schema
(draft 2020-12) of every event, generated from the typed models in
`afflux.shared.events`; a unit test fails when a file here is stale.
Regenerate with:

```
./afflux schemas export
```

## Envelope

Each event is one flat JSON object: the envelope fields beside the payload.

| field | meaning |
|---|---|
| `event_id` | unique id; deterministic for derived events, so a redelivery is recognisable |
| `type` | the event name, for example `"OrderPlaced"`; required, it selects the schema |
| `schema_version` | integer, default 1; see *Schema evolution* |
| `occurred_at` | event time: integer UTC milliseconds, or RFC 3339 with a zone (normalised to ms) |

Consumers ignore fields they do not know, so fields can be added without
breaking anyone. Unknown `type` values and invalid events go to `afflux.dlq`
as a `DeadLetter` naming the reason; they never stop a consumer.

## Topics

Data topics share one partition count (`AFFLUX_TOPIC_PARTITIONS`, default 4)
so that records with the same key land on the same partition number in every
topic: the joins never look across partitions.

| topic | key | produced by | cleanup |
|---|---|---|---|
"""

_EVENTS_HEAD = """
## Events

| event | topics | schema |
|---|---|---|
"""

_TAIL = """
`Record.schema.json` describes a whole record value (one event or a packed
array, below). `CampaignFile.schema.json` describes a campaign terms file
(`afflux campaigns apply FILE.yaml`); each entry's `terms` is also the body of
`PUT /v1/campaigns/{id}` and an element of `CampaignTermsPublished.versions`.
See [campaigns.md](../campaigns.md).

## Packed records

A record value is either one event (a JSON object) or a **packed record**: a
JSON array of events that all share the record's partition. Producers pack to
cut the per-record cost on the consumers; every afflux consumer accepts both
shapes (`afflux.shared.wire.decode_record`). Pack only events whose keys map to
the same partition (the clicks and orders services pack by partition number
and use the first event's key as the record key). Producing one event per
record is always correct. In afflux one packer serves every producer:
`afflux.shared.wire.chunk_by_partition` (at most 200 events or 512 KiB per
record, events in their given order) and `afflux.shared.io.kafka.send_chunks`.

## Schema evolution

Fields are only ever added. When an event changes shape, its
`schema_version` is raised and a pure upcaster
(`afflux.shared.core.upcasters`, one function per step, tested against stored
old payloads) turns the old payload into the new one before validation. So a
consumer reads every version ever written, and replaying the topics from the
start still works. An event newer than the consumer understands (a
`schema_version` above its current one, listed as `x-afflux-schema-version` in
each schema) is dead-lettered rather than guessed at.

## Producing from another language

1. Validate the object against `<Event>.schema.json` (`type` and the
   required fields; money is integer minor units plus an ISO 4217 currency).
2. Choose `event_id` so that sending the same fact twice gives the same id
   (for example a hash of your own order id); consumers deduplicate on the
   business keys as well.
3. Key the record as the topic table says, UTF-8 encoded. Orders are keyed by
   `visitor_id`; an order with only a `click_id` is keyed by the visitor part
   of the click id (`<visitor_id>.<nonce>`: everything before the last dot);
   an order with neither by `order_id`.
4. Use the Kafka default partitioner, **murmur2** on the key bytes (the Java
   client's default). librdkafka clients (confluent-kafka, node-rdkafka, Go
   clients built on it) default to a CRC32 partitioner: set
   `partitioner=murmur2_random` or co-partitioned joins will miss.
5. Produce with `acks=all`. Delivery is at least once; effects are exactly
   once because every consumer is idempotent on event and business ids.

A minimal example with `kafka-python`:

```python
import json, time
from kafka import KafkaProducer

producer = KafkaProducer(bootstrap_servers="127.0.0.1:9092", acks="all")
order = {
    "event_id": "ord-1001",
    "type": "OrderPlaced",
    "schema_version": 1,
    "occurred_at": int(time.time() * 1000),
    "order_id": "1001",
    "campaign_id": "spring-sale",
    "merchant_id": "acme",
    "kind": "sale",
    "amount_minor": 4990,
    "currency": "EUR",
    "visitor_id": "v_42",
}
producer.send("orders", key=b"v_42", value=json.dumps(order).encode())
producer.flush()
```

Merchants that prefer HTTP use the signed orders API instead
([orders.md](../orders.md)), which validates and keys events the same way.
"""


def _topic_rows() -> str:
    rows = []
    for topic in ALL_TOPICS:
        cleanup = "compact" if topic.compacted else "delete"
        rows.append(f"| `{topic.name}` | {topic.key} | {topic.producer} | {cleanup} |\n")
    return "".join(rows)


def readme_text(events: Sequence[tuple[str, Sequence[str]]]) -> str:
    """The README, given each event's name and the topics it travels on."""
    event_rows = "".join(
        f"| `{name}` | {', '.join(f'`{t}`' for t in names)} | [{name}.schema.json]"
        f"({name}.schema.json) |\n"
        for name, names in events
    )
    return _HEAD + _topic_rows() + _EVENTS_HEAD + event_rows + _TAIL
