"""Which campaigns a creator belongs to, for what a creator key may do on its own: make
a tracking link (the portal's links page) or publish a new content (``POST
/v1/content``).

A creator belongs to a campaign whose terms in force name it (a coupon, a survey
handle, a cookie-window override, an agency membership:
``afflux.shared.core.terms.names_creator``) or in which it has an active tracking
link. Links live in the clicks service, asked server-to-server (``AFFLUX_CLICKS_URL``,
with the admin token) only when the terms do not answer already. A deactivated link
or an old posting does not count: a brand ends a creator's part in its program by
deactivating its links and taking it out of the terms, and the creator must not come
back through the portal's link form or a content of its own. Without this, any
creator key could publish a live stream into any campaign and claim its orders, or a
post into a campaign that pays engagement and be paid for it.
"""

from __future__ import annotations

from typing import Any

import httpx

from afflux.payouts.settings import PayoutsSettings
from afflux.shared.core.terms import names_creator
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.tls import tls_context

TIMEOUT_S = 5.0


class LinksUnavailable(Exception):
    """The clicks service could not say which links a creator has."""


def links_api(settings: PayoutsSettings) -> tuple[str, dict[str, str]]:
    """The clicks service's links URL and the headers (the admin token) it is asked
    with; LinksUnavailable when ``AFFLUX_CLICKS_URL`` is not set."""
    base = settings.clicks_url.rstrip("/")
    if not base:
        raise LinksUnavailable("AFFLUX_CLICKS_URL is not set")
    return f"{base}/v1/links", {"Authorization": f"Bearer {settings.admin_token_value() or ''}"}


def clicks_client() -> httpx.AsyncClient:
    """A client for the clicks service's links API."""
    return httpx.AsyncClient(verify=tls_context(), timeout=TIMEOUT_S)


async def creator_links(settings: PayoutsSettings, affiliate_id: str) -> list[dict[str, Any]]:
    """The creator's tracking links, deactivated ones too, from the clicks service."""
    url, headers = links_api(settings)
    try:
        async with clicks_client() as http:
            answer = await http.get(url, params={"affiliate_id": affiliate_id}, headers=headers)
    except httpx.HTTPError as exc:
        raise LinksUnavailable(f"the clicks service did not answer: {exc}") from None
    if answer.status_code != 200:
        raise LinksUnavailable(f"the clicks service answered {answer.status_code}")
    try:
        links = answer.json()["links"]
        if not isinstance(links, list) or not all(
            isinstance(link, dict) and "campaign_id" in link and "active" in link for link in links
        ):
            raise ValueError("links not a list of links")
    except (ValueError, KeyError, TypeError) as exc:
        raise LinksUnavailable(f"the clicks service's answer could not be read: {exc}") from None
    return links


def named_in(directory: CampaignDirectory, affiliate_id: str) -> set[str]:
    """The campaigns whose terms in force name the creator."""
    return {
        campaign
        for campaign in directory.campaign_ids()
        if names_creator(directory.latest(campaign).terms, affiliate_id)
    }


def creator_campaigns(
    directory: CampaignDirectory, affiliate_id: str, links: list[dict[str, Any]]
) -> list[str]:
    """Every campaign the creator belongs to, given its ``links``, sorted."""
    linked = {str(link["campaign_id"]) for link in links if link["active"]}
    return sorted((linked & set(directory.campaign_ids())) | named_in(directory, affiliate_id))


async def belongs(
    settings: PayoutsSettings,
    directory: CampaignDirectory,
    affiliate_id: str,
    campaign_id: str,
) -> bool:
    """Whether the creator belongs to the campaign; asks the clicks service only when the
    terms do not name it. LinksUnavailable when its links cannot be read, for a campaign
    the campaign view does not hold as well: a creator key must not tell one that does
    not exist from one it is not part of by the clicks service's outage."""
    if campaign_id in directory and names_creator(
        directory.latest(campaign_id).terms, affiliate_id
    ):
        return True
    links = await creator_links(settings, affiliate_id)
    return campaign_id in creator_campaigns(directory, affiliate_id, links)
