"""Browser sessions and the keys API of the payouts service, in process on a real Redis:
log in with a key, read with the cookie, forms need the CSRF token and our Origin, five
failed logins a minute slow the next, log out; keys are shown once and end at once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import httpx
import pytest
import redis
from access_app import ADMIN_TOKEN, CREATOR, PORTAL, AccessWorld, build_world, http_client
from redis.asyncio import Redis

from afflux.cli.processes import Child

pytestmark = pytest.mark.integration
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
FORM = {"content-type": "application/x-www-form-urlencoded", "origin": PORTAL}


@pytest.fixture
async def world(plain_redis: tuple[Child, int]) -> AsyncIterator[AccessWorld]:
    _, port = plain_redis
    url = f"redis://127.0.0.1:{port}/0"
    with redis.Redis(port=port) as sync:
        sync.flushall()
    client: Redis[bytes] = Redis.from_url(url)
    try:
        yield await build_world(client, url)
    finally:
        await client.aclose()


async def _login_form(http: httpx.AsyncClient) -> str:
    page = await http.get("/login", params={"next": "/v1/me"})
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def _cookie(response: httpx.Response, name: str) -> SimpleCookie:
    jar = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            jar.load(header)
    return jar


async def test_a_login_sets_a_strict_httponly_secure_cookie_that_reads_own_figures(
    world: AccessWorld,
) -> None:
    async with http_client(world) as http:
        token = await _login_form(http)
        answer = await http.post(
            "/login",
            content=f"key={world.creator_key}&csrf_token={token}&next=/v1/me",
            headers=FORM,
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/v1/me"
        cookie = _cookie(answer, "afx_session")["afx_session"]
        assert cookie["httponly"] is True
        assert cookie["secure"] is True  # the public URL is https
        assert cookie["samesite"] == "strict"
        assert int(cookie["max-age"]) == 8 * 3600
        me = (await http.get("/v1/me")).json()
        assert (me["role"], me["subject"]) == ("creator", CREATOR)
        assert me["csrf_token"]
        assert (await http.get(f"/v1/creators/{CREATOR}/balance")).status_code == 200
        assert (await http.get("/v1/creators/ben/balance")).status_code == 404


async def test_login_needs_the_forms_token_and_our_origin(world: AccessWorld) -> None:
    async with http_client(world) as http:
        token = await _login_form(http)
        good = f"key={world.creator_key}&csrf_token={token}"
        wrong_token = await http.post(
            "/login", content=f"key={world.creator_key}&csrf_token=x", headers=FORM
        )
        assert wrong_token.status_code == 403
        assert wrong_token.json()["detail"][0]["field"] == "csrf_token"
        elsewhere = {**FORM, "origin": "https://evil.example"}
        assert (await http.post("/login", content=good, headers=elsewhere)).status_code == 403
        no_origin = {"content-type": FORM["content-type"]}
        assert (await http.post("/login", content=good, headers=no_origin)).status_code == 403
        assert (await http.post("/login", content=good, headers=FORM)).status_code == 303


async def test_a_wrong_key_is_a_401_and_the_sixth_try_in_a_minute_waits(
    world: AccessWorld,
) -> None:
    async with http_client(world) as http:
        token = await _login_form(http)
        for attempt in range(5):
            wrong = await http.post(
                "/login", content=f"key=afx_ck_{'x' * 43}&csrf_token={token}", headers=FORM
            )
            assert wrong.status_code == 401, attempt
            assert wrong.json()["detail"][0] == {
                "field": "key",
                "reason": "wrong, rotated or revoked key",
            }
        # Even the right key waits now: the throttle is per address, not per key.
        slowed = await http.post(
            "/login", content=f"key={world.creator_key}&csrf_token={token}", headers=FORM
        )
        assert slowed.status_code == 429
        assert 0 < int(slowed.headers["retry-after"]) <= 60
    # Another address is not slowed.
    other = httpx.ASGITransport(world.app, client=("192.0.2.7", 4000))
    async with httpx.AsyncClient(transport=other, base_url=PORTAL) as http:
        token = await _login_form(http)
        ok = await http.post(
            "/login", content=f"key={world.creator_key}&csrf_token={token}", headers=FORM
        )
        assert ok.status_code == 303


async def test_a_session_form_needs_its_csrf_token_and_logout_ends_the_session(
    world: AccessWorld,
) -> None:
    async with http_client(world) as http:
        token = await _login_form(http)
        await http.post(
            "/login", content=f"key={world.merchant_key}&csrf_token={token}", headers=FORM
        )
        csrf = (await http.get("/v1/me")).json()["csrf_token"]
        assert (
            await http.post("/logout", content="csrf_token=wrong", headers=FORM)
        ).status_code == 403
        assert (await http.post("/logout", headers=FORM)).status_code == 403
        elsewhere = {**FORM, "origin": "https://evil.example"}
        assert (
            await http.post("/logout", content=f"csrf_token={csrf}", headers=elsewhere)
        ).status_code == 403
        out = await http.post("/logout", content=f"csrf_token={csrf}", headers=FORM)
        assert out.status_code == 303
        assert out.headers["location"] == "/login"
        # The browser dropped the cookie; one replayed from before is refused.
        assert (await http.get("/v1/me")).status_code == 401


async def _ended_session(world: AccessWorld) -> tuple[str, str]:
    """A creator's session cookie and CSRF token, after logging out of it."""
    async with http_client(world) as http:
        token = await _login_form(http)
        login = await http.post(
            "/login", content=f"key={world.creator_key}&csrf_token={token}", headers=FORM
        )
        session = _cookie(login, "afx_session")["afx_session"].value
        csrf = (await http.get("/v1/me")).json()["csrf_token"]
        await http.post("/logout", content=f"csrf_token={csrf}", headers=FORM)
    return session, csrf


async def test_a_replayed_session_cookie_is_refused_after_logout(world: AccessWorld) -> None:
    session, _ = await _ended_session(world)
    async with http_client(world) as replay:
        answer = await replay.get("/v1/me", cookies={"afx_session": session})
        assert answer.status_code == 401
        assert answer.json()["detail"][0]["field"] == "Authorization"


async def test_logging_out_of_a_session_that_had_ended_clears_its_cookie(
    world: AccessWorld,
) -> None:
    """After the session's time-to-live or a key rotation "Log out" answered 401 and left
    the dead session's cookie in the browser."""
    session, csrf = await _ended_session(world)
    async with http_client(world) as stale:
        out = await stale.post(
            "/logout",
            content=f"csrf_token={csrf}",
            headers=FORM,
            cookies={"afx_session": session},
        )
        assert out.status_code == 303
        assert out.headers["location"] == "/login"
        cleared = out.headers["set-cookie"]
        assert cleared.startswith('afx_session=""') or cleared.startswith("afx_session=;")
        assert "Max-Age=0" in cleared
    async with http_client(world) as elsewhere:
        # A form posted from another site carries no cookie: nothing is cleared.
        forged = await elsewhere.post("/logout", headers={**FORM, "origin": "https://evil.example"})
        assert forged.status_code == 401
        assert "set-cookie" not in forged.headers


@pytest.mark.parametrize(
    "query",
    [
        {"key": "anything"},
        {"api_key": "anything"},
        {"access_token": "anything"},
        {"period": "afx_ck_" + "A" * 43},  # a key in any parameter
    ],
)
async def test_a_key_in_the_query_string_is_refused_on_every_route(
    world: AccessWorld, query: dict[str, str]
) -> None:
    async with http_client(world) as http:
        for path in (f"/v1/creators/{CREATOR}/balance", "/v1/keys", "/login", "/healthz"):
            answer = await http.get(path, params=query, headers=ADMIN)
            assert answer.status_code == 400, path
            assert answer.json()["detail"][0]["field"] == next(iter(query))


async def test_keys_are_shown_once_rotated_and_revoked_through_the_admin_api(
    world: AccessWorld,
) -> None:
    async with http_client(world) as http:
        issued = await http.post(
            "/v1/keys", json={"role": "creator", "subject": "cleo"}, headers=ADMIN
        )
        assert issued.status_code == 201
        first = issued.json()
        key_id = first["key_id"]
        cleo = {"authorization": f"Bearer {first['key']}"}
        assert (await http.get("/v1/me", headers=cleo)).json()["subject"] == "cleo"
        listed = (await http.get("/v1/keys", params={"subject": "cleo"}, headers=ADMIN)).json()
        assert [k["key_id"] for k in listed["keys"]] == [key_id]
        assert first["key"] not in str(listed)
        assert "key_hash" not in str(listed)

        rotated = (await http.post(f"/v1/keys/{key_id}/rotate", headers=ADMIN)).json()
        assert rotated["key_id"] == key_id
        assert rotated["key"] != first["key"]
        old = await http.get("/v1/me", headers=cleo)
        assert old.status_code == 401
        assert old.headers["www-authenticate"] == "Bearer"
        new = {"authorization": f"Bearer {rotated['key']}"}
        assert (await http.get("/v1/me", headers=new)).status_code == 200

        revoked = await http.delete(f"/v1/keys/{key_id}", headers=ADMIN)
        assert revoked.json()["revoked_at"] is not None
        assert (await http.get("/v1/me", headers=new)).status_code == 401
        assert (await http.delete("/v1/keys/key_nope", headers=ADMIN)).status_code == 404
        assert (await http.post("/v1/keys/key_nope/rotate", headers=ADMIN)).status_code == 404
        again = await http.post(f"/v1/keys/{key_id}/rotate", headers=ADMIN)
        assert again.status_code == 409  # a revoked key stays revoked
        assert again.json()["detail"][0]["field"] == "key_id"
        # Only admin manages keys.
        assert (await http.get("/v1/keys", headers=new)).status_code == 401
        refused = await http.post(
            "/v1/keys",
            json={"role": "creator", "subject": "cleo"},
            headers={"authorization": f"Bearer {world.merchant_key}"},
        )
        assert refused.status_code == 401


@pytest.mark.parametrize(
    ("role", "subject", "reason"),
    [
        ("creator", "..", "is only dots"),
        ("creator", ".", "is only dots"),
        ("creator", "team/anna", "a creator id holds ASCII letters, digits"),
        ("merchant", "m" * 65, "a merchant id is at most 64 characters"),
    ],
)
async def test_a_key_for_a_subject_no_page_can_name_is_a_422_naming_the_subject(
    world: AccessWorld, role: str, subject: str, reason: str
) -> None:
    async with http_client(world) as http:
        refused = await http.post(
            "/v1/keys", json={"role": role, "subject": subject}, headers=ADMIN
        )
        assert refused.status_code == 422
        problem = refused.json()["detail"][0]
        assert problem["field"] == "subject"
        assert reason in problem["reason"]


async def test_a_creator_key_takes_every_id_a_link_takes(world: AccessWorld) -> None:
    long_id = "c" * 200
    async with http_client(world) as http:
        issued = await http.post(
            "/v1/keys", json={"role": "creator", "subject": long_id}, headers=ADMIN
        )
        assert issued.status_code == 201
        me = await http.get("/v1/me", headers={"authorization": f"Bearer {issued.json()['key']}"})
        assert me.json()["subject"] == long_id
