"""The payouts app in this process over a ledger store a test filled itself, answering
through an in-process HTTP client with the admin token (who may read what:
test_access_*)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pydantic import SecretStr

from afflux.payouts.app import create_app
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.io.redis_client import connect_ready

HOUR = 3_600_000
DAY = 24 * HOUR
NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def sale_fact(name: str, affiliate: str, at: int, **changes: Any) -> ConversionFact:
    """A 100.00 EUR sale attributed to ``affiliate`` at ``at`` under terms version 1 (ids
    from ``name``), with ``changes`` to any field."""
    fields: dict[str, Any] = {
        "conversion_id": f"conv-{name}",
        "event_id": f"ev-{name}",
        "order_id": f"order-{name}",
        "affiliate_id": affiliate,
        "kind": "sale",
        "action": None,
        "amount_minor": 10_000,
        "currency": "EUR",
        "new_customer": False,
        "occurred_at": at,
        "terms_version": 1,
    }
    return ConversionFact(**(fields | changes))


def first_version(terms: dict[str, Any]) -> TermsVersion:
    """A campaign's first terms version, in force since the epoch."""
    return TermsVersion(
        version=1,
        effective_from=0,
        published_at=0,
        terms=CampaignTerms.model_validate(terms),
    )


def directory_of(versions: Iterable[TermsVersion]) -> CampaignDirectory:
    """A campaign view holding each campaign's one version, loaded (ready)."""
    directory = CampaignDirectory()
    for version in versions:
        cid = version.terms.campaign_id
        directory.apply(
            CampaignTermsPublished(
                event_id=cid, occurred_at=0, campaign_id=cid, versions=(version,)
            )
        )
    directory.ready.set()
    return directory


@asynccontextmanager
async def payouts_http(
    store: LedgerStore,
    directory: CampaignDirectory,
    bootstrap: str,
    token: str,
    clock: Callable[[], int],
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app reading ``store`` with the campaigns of ``directory`` at
    ``clock``; its producer (payout runs) on ``bootstrap``."""
    app = create_app(
        PayoutsSettings(
            _env_file=None,
            admin_token=SecretStr(token),
            kafka_bootstrap=bootstrap,
            redis_url="redis://unused",
        ),
        clock=clock,
    )
    producer = new_producer(bootstrap)
    await producer.start()
    app.state.store, app.state.producer, app.state.directory = store, producer, directory
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://payouts",
            headers={"authorization": f"Bearer {token}"},
        ) as http:
            yield http
    finally:
        await producer.stop()


@asynccontextmanager
async def ledger_and_http(
    redis_url: str,
    versions: Iterable[TermsVersion],
    bootstrap: str,
    token: str,
    clock: Callable[[], int],
) -> AsyncIterator[tuple[LedgerStore, httpx.AsyncClient]]:
    """A ledger store on ``redis_url`` (plain or cluster) and ``payouts_http`` over it,
    with the campaigns of ``versions``."""
    client = await connect_ready(redis_url)
    store = LedgerStore(client)  # type: ignore[arg-type]
    try:
        async with payouts_http(store, directory_of(versions), bootstrap, token, clock) as http:
            yield store, http
    finally:
        await client.aclose()  # type: ignore[union-attr]


def reviewed_batch(
    campaign: str, period_of: Callable[[int], str], *conversions: ConversionFact
) -> Batch:
    """The conversions of a campaign with review terms, each in the period of its time,
    with the review index entries the consumer writes for them."""
    return Batch(
        conversions=[(campaign, period_of(c.occurred_at), c) for c in conversions],
        review_index={
            c.conversion_id: [
                campaign,
                period_of(c.occurred_at),
                c.order_id,
                c.affiliate_id,
                c.occurred_at,
            ]
            for c in conversions
        },
    )
