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

<!-- not run: rewrites docs/events/ (test_event_schemas_are_current.py compares them) -->
```bash
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
The `links` topic is not an event stream: it is the clicks service's record of its
tracking links, keyed by code and compacted, each value a link's state as one JSON
object with no envelope and no `type`: `code`, `affiliate_id`, `campaign_id`,
`destination_url`, `active` (false once deactivated) and `created_at` (UTC ms).
The clicks service restores its links from it after a Redis loss
([clicks.md](../clicks.md#links-survive-a-redis-loss)); read it as a table (the last
value per code), not through the schemas above.

A click's free text is bounded in its schema, since readers keep some of it: a
`ClickRecorded` holds at most 16 `utm` and 16 `sub_ids` entries (names up to 64
characters, values up to 512), a `user_agent`, `ua_family` and `ua_version` of 1,024
characters each, a `referrer` of 2,048 and an `ip_hash` of 128 (the clicks service
writes well inside these, and always has, so no click it wrote is refused on a
replay); an item past a bound is dead-lettered with the field and the reason
(`ValidationError`).

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

### Compressed campaigns records

A `campaigns` record holds its campaign's **whole** version history (the topic
is compacted by campaign), so a large coupon map repeated in every version would
fill the 1 MiB a record may hold after a few versions. A history whose JSON is
over 64 KiB therefore goes out as an **xz stream** of that JSON (the value
starts with the xz magic bytes `FD 37 7A 58 5A 00`; Python's `lzma.decompress`,
`xz -d`, or any liblzma reads it). Every afflux reader expands it within bounds
(`afflux.shared.wire.expand`): at most 16 MiB of JSON (`MAX_EXPANDED_BYTES`),
at most 32 MiB of decoder memory for its header, no bytes after its end, and
the JSON inside held to the same depth and number bounds as any record. Only a
single `CampaignTermsPublished` may be compressed: a compressed record on any
other topic, or holding anything else, is refused (dead-lettered where the
consumer dead-letters), since thousands of events in one record would pass
every per-record bound a consumer counts on. Smaller histories stay plain JSON.

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
   an order with neither by `order_id`. A `LeadConfirmed` or `SurveyAnswered`
   carries no visitor: key it exactly as its order was keyed (the attribution
   worker looks for the order on the confirmation's partition only; a
   confirmation whose order is on another partition is never paid, and since its
   body does not tell its order's key it cannot be dead-lettered for it). An
   order, refund or renewal on another partition than its key puts it on is
   dead-lettered as `key_mismatch`
   ([attribution](../attribution.md#dead-letters)); of a click record only the
   first click is checked (and every click when that one is misplaced), so pack
   clicks by partition: a misplaced click further on is taken but never joins an
   order (the ledger still pays and counts it per click, which needs no join).
4. Use the Kafka default partitioner, **murmur2** on the key bytes (the Java
   client's default). librdkafka clients (confluent-kafka, node-rdkafka, Go
   clients built on it) default to a CRC32 partitioner: set
   `partitioner=murmur2_random` or co-partitioned joins will miss.
5. Produce with `acks=all`. Delivery is at least once; effects are exactly
   once because every consumer is idempotent on event and business ids.
6. Date each event with its own time and let the producer stamp the record
   (Kafka `CreateTime`) when you send it. The attribution worker dead-letters an
   order, refund or renewal dated more than its campaign's backfill limit (the
   longest cookie window plus the longest lock; 60 days by default) plus 5
   minutes before its record's timestamp (`event_time_too_old`: seconds sent as
   milliseconds land in January 1970), and any event more than 5 minutes after
   it (`event_time_in_future`). To replay older history on purpose, mark its
   records with the header `afflux-backfill: 1`, as the orders service's admin
   backfill does. Money is in the campaign's currency, and a refund in its
   order's: another currency is dead-lettered (`currency_mismatch`).

### A worked example with confluent-kafka

Python with `confluent-kafka` (librdkafka; `pip install confluent-kafka`, no
afflux package needed): produce one order for `acme-fashion` of
`examples/campaigns.yaml` with creator-01's coupon `ANNA10` (a coupon wins
without a click), then read the attribution's answer back from `conversions`.
`AFFLUX_KAFKA_BOOTSTRAP` is the broker `afflux up` printed (its `broker` line).
It runs on the embedded broker (Tansu) and on Apache Kafka alike.

```python
import hashlib
import json
import os
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

bootstrap = os.environ.get("AFFLUX_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
order_id = f"o-{uuid.uuid4().hex[:12]}"
order = {
    "type": "OrderPlaced",
    "schema_version": 1,
    # derived from the order, so sending the same order twice gives the same id
    "event_id": hashlib.sha256(f"acme-fashion/{order_id}".encode()).hexdigest()[:32],
    "occurred_at": int(time.time() * 1000),
    "order_id": order_id,
    "campaign_id": "acme-fashion",
    "merchant_id": "merchant-acme",
    "kind": "sale",
    "amount_minor": 4999,
    "currency": "EUR",
    "coupon_code": "ANNA10",
}
producer = Producer(
    {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "partitioner": "murmur2_random",  # the Java client's partitioner (step 4)
    }
)
# no visitor_id and no click_id: keyed by order_id (step 3)
producer.produce("orders", key=order_id.encode(), value=json.dumps(order).encode())
if producer.flush(10) != 0:
    raise SystemExit("the broker did not acknowledge the order")

# Read every partition from the start, without joining a consumer group: a
# one-off reader needs no committed offsets and no rebalance.
consumer = Consumer(
    {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
)
partitions = consumer.list_topics("conversions", timeout=10).topics["conversions"].partitions
consumer.assign([TopicPartition("conversions", p, OFFSET_BEGINNING) for p in partitions])
conversion = None
deadline = time.monotonic() + 60  # the worker waits the campaign's grace (5 s) first
while conversion is None and time.monotonic() < deadline:
    record = consumer.poll(1.0)
    if record is None or record.error():
        continue
    value = json.loads(record.value())
    for event in value if isinstance(value, list) else [value]:  # one event or a packed record
        if event["type"] == "ConversionAttributed" and event["order_id"] == order_id:
            conversion = event
consumer.close()
if conversion is None:
    raise SystemExit(f"no conversion of {order_id} on conversions within 60 s")
print(conversion["affiliate_id"], conversion["reason"], conversion["conversion_id"])
```

It prints `creator-01 coupon conv_...`. An order no creator earned is answered
on `attribution.unmatched` instead (`OrderUnattributed`, with its `reason`).
A long-lived consumer subscribes with its own `group.id` instead, and commits;
on the embedded broker its first group join is slow (about 20 s until the first
record in one run on the development machine, against 6 s by assignment), since
Tansu rebalances on every join
([testing.md](../testing.md#what-kafka-found-and-the-embedded-broker-work-arounds)).

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
