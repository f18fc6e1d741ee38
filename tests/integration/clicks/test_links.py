"""Creating, reading and deactivating tracking links (admin API)."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from afflux.clicks.links import Link, LinkStore
from afflux.shared.core.terms import CampaignTerms

from .conftest import ADMIN, PUBLIC_URL, create_link, unique

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]


async def test_created_link_has_a_code_and_its_public_url(
    client: httpx.AsyncClient, campaign: CampaignTerms
) -> None:
    link = await create_link(client, campaign.campaign_id, "https://shop.example.com/p?x=1")
    assert link["url"] == f"{PUBLIC_URL}/c/{link['code']}"
    assert link["active"] is True

    fetched = await client.get(f"/v1/links/{link['code']}", headers=ADMIN)
    assert fetched.status_code == 200
    assert fetched.json()["destination_url"] == "https://shop.example.com/p?x=1"


async def test_a_custom_code_is_kept_and_cannot_be_taken_twice(
    client: httpx.AsyncClient, campaign: CampaignTerms
) -> None:
    code = unique("spring")
    link = await create_link(client, campaign.campaign_id, "https://shop.example.com/", code=code)
    assert link["code"] == code
    again = await client.post(
        "/v1/links",
        json={
            "affiliate_id": "other",
            "campaign_id": campaign.campaign_id,
            "destination_url": "https://shop.example.com/",
            "code": code,
        },
        headers=ADMIN,
    )
    assert again.status_code == 409
    assert again.json()["detail"][0]["field"] == "code"


async def test_deactivated_link_answers_404_instead_of_redirecting(
    client: httpx.AsyncClient, campaign: CampaignTerms
) -> None:
    link = await create_link(client, campaign.campaign_id, "https://shop.example.com/")
    assert (await client.get(f"/c/{link['code']}")).status_code == 302

    deleted = await client.delete(f"/v1/links/{link['code']}", headers=ADMIN)
    assert deleted.status_code == 200
    assert deleted.json()["active"] is False
    assert (await client.get(f"/c/{link['code']}")).status_code == 404


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        ("javascript:alert(document.cookie)", "http"),
        ("data:text/html;base64,PHNjcmlwdD4=", "http"),
        ("//evil.example.org/", "http"),
        ("https://shop.example.com@evil.example.org/", "user information"),
        ("https://xn--shp-sna.example.com/", "internationalised"),
        ("https://shöp.example.com/", "ASCII"),
        ("https://evil.example.org/", "allowed domains"),
    ],
)
async def test_unsafe_destination_is_refused_with_field_and_reason(
    client: httpx.AsyncClient, campaign: CampaignTerms, destination: str, reason: str
) -> None:
    response = await client.post(
        "/v1/links",
        json={
            "affiliate_id": "creator",
            "campaign_id": campaign.campaign_id,
            "destination_url": destination,
        },
        headers=ADMIN,
    )
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["field"] == "destination_url"
    assert reason in problem["reason"]


async def test_unknown_campaign_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/links",
        json={
            "affiliate_id": "creator",
            "campaign_id": unique("no-such-campaign"),
            "destination_url": "https://shop.example.com/",
        },
        headers=ADMIN,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "campaign_id"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic Y2xpY2tzOmFkbWlu"}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_admin_endpoints_need_the_admin_token(
    client: httpx.AsyncClient, campaign: CampaignTerms, headers: dict[str, str]
) -> None:
    body = {
        "affiliate_id": "creator",
        "campaign_id": campaign.campaign_id,
        "destination_url": "https://shop.example.com/",
    }
    assert (await client.post("/v1/links", json=body, headers=headers)).status_code == 401
    assert (await client.get("/v1/links/whatever", headers=headers)).status_code == 401
    assert (await client.delete("/v1/links/whatever", headers=headers)).status_code == 401


async def test_a_creators_links_are_listed_deactivated_ones_too_and_no_one_elses(
    client: httpx.AsyncClient, campaign: CampaignTerms
) -> None:
    creator, other = unique("lister"), unique("other")
    first = await create_link(
        client, campaign.campaign_id, "https://shop.example.com/a", affiliate_id=creator
    )
    second = await create_link(
        client, campaign.campaign_id, "https://shop.example.com/b", affiliate_id=creator
    )
    await create_link(
        client, campaign.campaign_id, "https://shop.example.com/c", affiliate_id=other
    )
    assert (await client.delete(f"/v1/links/{second['code']}", headers=ADMIN)).status_code == 200

    listed = await client.get("/v1/links", params={"affiliate_id": creator}, headers=ADMIN)
    assert listed.status_code == 200
    found = {link["code"]: link for link in listed.json()["links"]}
    assert set(found) == {first["code"], second["code"]}
    assert found[first["code"]]["active"] is True
    assert found[second["code"]]["active"] is False
    assert found[first["code"]]["url"] == f"{PUBLIC_URL}/c/{first['code']}"

    nobody = await client.get("/v1/links", params={"affiliate_id": unique("nobody")}, headers=ADMIN)
    assert nobody.json()["links"] == []
    assert (await client.get("/v1/links", params={"affiliate_id": creator})).status_code == 401


async def test_a_restored_store_lists_each_creators_links(infra: Any) -> None:
    """Links written back from the topic (a fresh Redis) are listed per creator again."""
    redis: Redis[bytes] = Redis.from_url(infra.redis_url)
    try:
        store = LinkStore(redis, unique("restored"))
        creator = unique("restored-creator")
        links = [
            Link(unique("r"), creator, "camp", "https://shop.example.com/", True, 1),
            Link(unique("r"), creator, "camp", "https://shop.example.com/", False, 2),
            Link(unique("r"), unique("someone"), "camp", "https://shop.example.com/", True, 3),
        ]
        await store.restore(links)
        listed = await store.of_creator(creator)
        assert sorted(link.code for link in listed) == sorted(link.code for link in links[:2])
    finally:
        await redis.aclose()


async def test_a_link_naming_a_field_twice_is_refused_and_not_created(
    client: httpx.AsyncClient, campaign: CampaignTerms
) -> None:
    """A review tool reading the first destination_url would approve a link that sends
    visitors to the second."""
    code = unique("twice")
    named = f'"affiliate_id":"creator","campaign_id":"{campaign.campaign_id}","code":"{code}"'
    body = (
        "{" + named + ',"destination_url":"https://shop.example.com/",'
        '"destination_url":"https://elsewhere.example.net/"}'
    )
    response = await client.post(
        "/v1/links", content=body, headers={**ADMIN, "Content-Type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert response.json()["detail"] == [
        {
            "field": "body",
            "reason": "malformed JSON: the name 'destination_url' appears twice in one object",
        }
    ]
    # 503 while the links are still being restored at start-up: "unknown" only after.
    for _ in range(100):
        fetched = await client.get(f"/v1/links/{code}", headers=ADMIN)
        if fetched.status_code != 503:
            break
        await asyncio.sleep(0.1)
    assert fetched.status_code == 404, fetched.text


@pytest.mark.parametrize("creator", ["..", "."])
async def test_a_link_for_a_creator_named_only_by_dots_is_refused(
    client: httpx.AsyncClient, campaign: CampaignTerms, creator: str
) -> None:
    """The creator's portal pages name them in the URL path, where a browser resolves
    ".." to the directory above: their pages redirected in a loop."""
    response = await client.post(
        "/v1/links",
        json={
            "affiliate_id": creator,
            "campaign_id": campaign.campaign_id,
            "destination_url": "https://shop.example.com/",
        },
        headers=ADMIN,
    )

    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert problem["field"] == "affiliate_id"
    assert "only dots" in problem["reason"]


@pytest.mark.parametrize("name", ["token", "admin_token", "Access_Token"])
async def test_the_admin_token_in_the_query_string_is_refused_with_or_without_the_header(
    client: httpx.AsyncClient, name: str
) -> None:
    """A token in a URL ends up in logs, history and Referer headers: refused where it is
    noticed and rotated, as on the payouts service."""
    token = ADMIN["Authorization"].removeprefix("Bearer ")
    for headers in (ADMIN, {}):
        answer = await client.get(
            "/v1/links", params={name: token, "affiliate_id": "a"}, headers=headers
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["detail"][0]["field"] == name


@pytest.mark.parametrize(
    ("headers", "field", "reason"),
    [
        ({"Content-Type": "text/plain"}, "Content-Type", "'text/plain' is not accepted"),
        (
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            "Content-Encoding",
            "'gzip' is not accepted: send the body uncompressed",
        ),
    ],
)
async def test_a_link_body_that_is_not_plain_json_is_a_415_naming_the_header(
    client: httpx.AsyncClient,
    campaign: CampaignTerms,
    headers: dict[str, str],
    field: str,
    reason: str,
) -> None:
    """It was answered 422 "Input should be a valid dictionary", or "malformed JSON: not
    UTF-8" for a body really compressed."""
    body = (
        f'{{"affiliate_id":"creator","campaign_id":"{campaign.campaign_id}",'
        '"destination_url":"https://shop.example.com/"}'
    ).encode()
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.compress(body)
    answer = await client.post("/v1/links", content=body, headers={**ADMIN, **headers})

    assert answer.status_code == 415, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == field
    assert reason in problem["reason"]
