"""The payouts app in process on a real Redis, with two merchants, two campaigns and two
creators of known figures and one key each: what the access tests ask as each role.

The app's lifespan (Kafka: the ledger consumer, the campaign follower) is not run; the
values it would put on ``app.state`` are put there from the same classes, and the
ledger is written by ``LedgerStore.apply``, as the consumer writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from redis.asyncio import Redis

from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, START, plan_versions
from afflux.payouts.app import create_app
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.http.principals import AccessStore

ADMIN_TOKEN = "admin-token-for-the-access-tests-0123456789"
PORTAL = "https://portal.test"  # the app's own address (payouts_public_url)
OTHER_CAMPAIGN = "camp-other"
MERCHANT, OTHER_MERCHANT = "m", "m-other"  # plan_versions() names merchant "m"
CREATOR, OTHER_CREATOR = "ana", "ben"


def _versions_of(
    campaign: str, merchant: str, coupons: dict[str, str] | None = None
) -> tuple[TermsVersion, ...]:
    """``coupons`` name the creators who belong to the campaign (a creator key publishes
    content only there; no clicks service here to tell its links)."""
    update = {"campaign_id": campaign, "merchant_id": merchant, "coupons": coupons or {}}
    return tuple(
        v.model_copy(update={"terms": v.terms.model_copy(update=update)}) for v in plan_versions()
    )


def _sale(n: int, affiliate: str) -> ConversionFact:
    return ConversionFact(
        f"conv-{affiliate}-{n}", f"ev-{affiliate}-{n}", f"o-{affiliate}-{n}", affiliate, "sale",
        None, 10_000, "EUR", False, START + n * 60_000, 1,
    )  # fmt: skip


@dataclass
class AccessWorld:
    app: FastAPI
    creator_key: str
    other_creator_key: str
    merchant_key: str
    other_merchant_key: str
    revoked_key: str


async def build_world(redis: Redis[bytes], redis_url: str, **settings_: Any) -> AccessWorld:
    """``settings_``: further ``PayoutsSettings`` fields."""
    settings = PayoutsSettings(
        admin_token=ADMIN_TOKEN, redis_url=redis_url, payouts_public_url=PORTAL, **settings_
    )
    app = create_app(settings)
    versions = {CAMPAIGN: _versions_of(CAMPAIGN, MERCHANT, {"ANA10": CREATOR})}
    versions[OTHER_CAMPAIGN] = _versions_of(OTHER_CAMPAIGN, OTHER_MERCHANT)
    for campaign, vs in versions.items():
        app.state.directory.apply(
            CampaignTermsPublished(
                event_id=f"terms-{campaign}", occurred_at=0, campaign_id=campaign, versions=vs
            )
        )
    store = LedgerStore(redis)
    batch = Batch(
        conversions=[
            (CAMPAIGN, PERIOD, _sale(1, CREATOR)),
            (OTHER_CAMPAIGN, PERIOD, _sale(1, OTHER_CREATOR)),
        ]
    )
    await store.apply(batch, lambda cid: versions[cid], lambda _: "EUR")
    access = AccessStore(redis)
    app.state.store, app.state.access = store, access
    _, creator_key = await access.issue("creator", CREATOR, START)
    _, other_creator_key = await access.issue("creator", OTHER_CREATOR, START)
    _, merchant_key = await access.issue("merchant", MERCHANT, START)
    _, other_merchant_key = await access.issue("merchant", OTHER_MERCHANT, START)
    revoked, revoked_key = await access.issue("creator", CREATOR, START)
    await access.revoke(revoked.key_id, START + 1)
    return AccessWorld(
        app, creator_key, other_creator_key, merchant_key, other_merchant_key, revoked_key
    )


def http_client(world: AccessWorld, **options: Any) -> httpx.AsyncClient:
    """A client of ``world``'s app in process, at the app's own address."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(world.app), base_url=PORTAL, **options)


async def post(world: AccessWorld, path: str, body: Any, bearer: str) -> httpx.Response:
    """``body`` (JSON; None: no body) POSTed to ``path`` with the bearer token ``bearer``."""
    async with http_client(world) as http:
        return await http.post(path, json=body, headers={"authorization": f"Bearer {bearer}"})


async def own_content(world: AccessWorld, content_id: str, campaign: str, creator: str) -> None:
    """The content ``insta:{content_id}`` as published over HTTP by ``creator`` in
    ``campaign``: its identity claimed, and its publication on the topic."""
    store = world.app.state.store
    await store.redis.hset(
        store.keys.ledger("content_owner"),
        f"insta:{content_id}",
        orjson.dumps([campaign, creator]),
    )
    await sent_to_topic(world, content_id)


async def sent_to_topic(world: AccessWorld, content_id: str) -> None:
    """The publication of ``insta:{content_id}`` (of the identity claimed now) acknowledged
    by the broker, as the route marks it (this world has none: its publications answer
    503 past every check)."""
    store = world.app.state.store
    key = f"insta:{content_id}"
    owner = await store.redis.hget(store.keys.ledger("content_owner"), key)
    await store.redis.hset(store.keys.ledger("content_sent"), key, owner)
