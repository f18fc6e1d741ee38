"""From consumed events to scheduled deliveries: the edge between the topics, the
campaign terms and the endpoint registry."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from afflux.payouts.webhooks.policy import (
    OwnerKind,
    event_type_of,
    owners_of,
    payload_for,
    subscribed,
)
from afflux.payouts.webhooks.policy import webhook_id as derive_webhook_id
from afflux.payouts.webhooks.redis_store import Job, WebhookStore, owner_token
from afflux.shared.events import Envelope
from afflux.shared.io.campaign_view import CampaignDirectory, UnknownCampaign

log = logging.getLogger(__name__)


def merchant_of(directory: CampaignDirectory, event: Envelope) -> str | None:
    """The merchant running the event's campaign, from the terms in force at its time."""
    campaign_id = getattr(event, "campaign_id", None)
    if not isinstance(campaign_id, str):
        return None
    try:
        return directory.at(campaign_id, event.occurred_at).terms.merchant_id
    except UnknownCampaign:
        return None


async def jobs_for(
    store: WebhookStore,
    directory: CampaignDirectory,
    events: Iterable[Envelope],
    *,
    now: int,
    only_endpoint: str | None = None,
) -> tuple[list[Job], dict[str, int]]:
    """One job per (event, endpoint subscribed to its type among its owners'), its body
    what that endpoint's owner may receive (``payload_for``); and the matched events by
    type (for the metrics)."""
    typed: list[tuple[Envelope, str, list[tuple[OwnerKind, str]]]] = []
    for event in events:
        event_type = event_type_of(event)
        if event_type is not None:
            typed.append((event, event_type, owners_of(event, merchant_of(directory, event))))
    registry = await store.endpoints_of(o for _, _, owners in typed for o in owners)
    jobs: list[Job] = []
    matched: dict[str, int] = {}
    for event, event_type, owners in typed:
        candidates = [e for owner in owners for e in registry.get(owner, [])]
        endpoints = {e.endpoint_id: e for e in subscribed(candidates, event_type)}
        if only_endpoint is not None:
            endpoints = {k: v for k, v in endpoints.items() if k == only_endpoint}
        if not endpoints:
            continue
        matched[event_type] = matched.get(event_type, 0) + 1
        data = event.model_dump(mode="json")
        bodies: dict[OwnerKind, str] = {}  # a merchant's body, a creator's (its view)
        for endpoint_id, endpoint in sorted(endpoints.items()):
            kind = endpoint.owner_kind
            if kind not in bodies:
                bodies[kind] = payload_for(kind, event_type, data).decode()
            jobs.append(
                Job(
                    webhook_id=derive_webhook_id(endpoint_id, event.event_id),
                    endpoint_id=endpoint_id,
                    event_type=event_type,
                    event_id=event.event_id,
                    body=bodies[kind],
                    enqueued_at=now,
                    owner=owner_token(endpoint.owner_kind, endpoint.owner_id),
                )
            )
    return jobs, matched
