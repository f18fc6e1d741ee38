"""kill -9 of the webhook sender mid-stream loses no event: every event still reaches the
endpoint, a redelivered one under the same webhook id. The sender runs alone as a
process (``python -m afflux.payouts.webhooks``) on the session's broker and Redis."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from test_webhooks import Program, conversion, new_program, produce, until
from webhook_receiver import Receiver

from afflux.cli.processes import Child
from afflux.payouts.webhooks import signing
from afflux.payouts.webhooks.policy import Endpoint, webhook_id
from afflux.payouts.webhooks.redis_store import WebhookStore
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.campaign_publish import publish_terms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDIS_DB = 13


async def publish(bootstrap: str, program: Program) -> None:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": program.campaign,
            "merchant_id": program.merchant,
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    await publish_terms(bootstrap, [(terms, 0)])


async def test_kill_9_of_the_sender_mid_stream_loses_no_event(infra: Any) -> None:
    program = new_program()
    await publish(infra.kafka_bootstrap, program)
    redis_url = f"{infra.redis_url.rsplit('/', 1)[0]}/{REDIS_DB}"
    redis: Redis[bytes] = Redis.from_url(redis_url)
    receiver = Receiver(answer_after_s=0.01).start()
    secret = signing.secret_from_bytes(uuid.uuid4().bytes * 2)
    endpoint = Endpoint(
        "ep-kill",
        "merchant",
        program.merchant,
        receiver.base_url + "/m",
        ("conversion.attributed",),
        secret,
        0,
    )
    receiver.secrets["/m"] = secret
    env = {
        "AFFLUX_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "AFFLUX_REDIS_URL": redis_url,
        "AFFLUX_WEBHOOKS_GROUP_ID": f"webhooks-kill-{uuid.uuid4().hex[:8]}",
        "AFFLUX_WEBHOOKS_CONCURRENCY": "2",
        "AFFLUX_WEBHOOKS_TIMEOUT_S": "1",
        "AFFLUX_WEBHOOKS_RETRY_BASE_S": "0.05",
        "AFFLUX_WEBHOOKS_RETRY_CAP_S": "0.2",
    }
    argv = [sys.executable, "-m", "afflux.payouts.webhooks"]
    log = infra.work_dir / "logs" / f"webhooks-{program.campaign}.log"
    sender: Child | None = None
    try:
        await redis.flushdb()
        await WebhookStore(redis).add(endpoint)
        first = [conversion(program, n) for n in range(300)]
        await produce(infra.kafka_bootstrap, first)
        sender = Child("webhooks", argv, log, env=env).start()
        await until(lambda: len(receiver.ids("/m")) >= 40, 60, "the first deliveries")
        sender.kill()
        at_kill = len(receiver.ids("/m"))
        assert at_kill < len(first), "the kill must land mid-stream"

        second = [conversion(program, n) for n in range(300, 400)]
        await produce(infra.kafka_bootstrap, second)
        sender = Child("webhooks", argv, log, env=env).start()
        expected = {webhook_id("ep-kill", e.event_id) for e in [*first, *second]}
        await until(lambda: receiver.ids("/m") == expected, 120, "every event after the kill")
        assert receiver.unverified == []
        # Each arrival's id is the one derived from its event: a redelivery is recognisable.
        for arrival in receiver.received("/m"):
            assert arrival.webhook_id == webhook_id("ep-kill", arrival.data["event_id"])
    finally:
        if sender is not None:
            sender.stop()
        receiver.stop()
        await redis.aclose()
