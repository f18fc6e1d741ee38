"""From consumed events to scheduled deliveries: the edge between the topics, the
campaign terms and the endpoint registry."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from afflux.payouts.webhooks.policy import (
    DEFAULT_MAX_BODY_BYTES,
    Endpoint,
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


@dataclass(frozen=True)
class Routed:
    jobs: list[Job]
    matched: dict[str, int]  # events that matched an endpoint, by type (for the metrics)
    # (index in the events given, what it raised): an event no job could be made of is
    # the caller's to dead-letter; the others' jobs are made all the same.
    failed: list[tuple[int, Exception]] = field(default_factory=list)


async def jobs_for(
    store: WebhookStore,
    directory: CampaignDirectory,
    events: Sequence[Envelope],
    *,
    now: int,
    only_endpoint: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Routed:
    """One job per (event, endpoint subscribed to its type among its owners'), its body
    what that endpoint's owner may receive (``payload_for``). Each event on its own: one
    that raises (a body that cannot be built) is reported in ``failed``, never stopping
    the rest."""
    failed: list[tuple[int, Exception]] = []
    typed: list[tuple[int, Envelope, str, list[tuple[OwnerKind, str]]]] = []
    for n, event in enumerate(events):
        try:
            event_type = event_type_of(event)
            if event_type is not None:
                owners = owners_of(event, merchant_of(directory, event))
                typed.append((n, event, event_type, owners))
        except Exception as exc:
            failed.append((n, exc))
    registry = await store.endpoints_of(o for *_, owners in typed for o in owners)
    routed = Routed([], {}, failed)
    for n, event, event_type, owners in typed:
        try:
            jobs, matched = _jobs_of(
                event, event_type, owners, registry, now, only_endpoint, max_body_bytes
            )
        except Exception as exc:
            failed.append((n, exc))
            continue
        routed.jobs.extend(jobs)
        if matched:
            routed.matched[event_type] = routed.matched.get(event_type, 0) + 1
    return routed


def _jobs_of(
    event: Envelope,
    event_type: str,
    owners: list[tuple[OwnerKind, str]],
    registry: Mapping[tuple[OwnerKind, str], list[Endpoint]],
    now: int,
    only_endpoint: str | None,
    max_body_bytes: int,
) -> tuple[list[Job], bool]:
    jobs: list[Job] = []
    candidates = [e for owner in owners for e in registry.get(owner, [])]
    endpoints = {e.endpoint_id: e for e in subscribed(candidates, event_type)}
    if only_endpoint is not None:
        endpoints = {k: v for k, v in endpoints.items() if k == only_endpoint}
    if not endpoints:
        return jobs, False
    data = event.model_dump(mode="json")
    bodies: dict[OwnerKind, str] = {}  # a merchant's body, a creator's (its view)
    for endpoint_id, endpoint in sorted(endpoints.items()):
        kind = endpoint.owner_kind
        if kind not in bodies:
            bodies[kind] = payload_for(kind, event_type, data, max_body_bytes).decode()
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
    return jobs, True
