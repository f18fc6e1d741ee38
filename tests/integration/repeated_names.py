"""What every service's routes answer a JSON body that names a field twice, asked the
same way in each service's ``test_repeated_names.py``: a 400 ``body`` naming the field
for a caller with credentials, a 401 before that for one without, and a body not read
at all by a route that reads no JSON body."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import httpx


async def assert_refused_as_named_twice(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    body: bytes,
    name: str,
    headers: Mapping[str, str],
) -> None:
    """``body`` names ``name`` twice: a 400 ``body`` that says so."""
    answer = await client.request(method, url, content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "detail": [
            {
                "field": "body",
                "reason": f"malformed JSON: the name {name!r} appears twice in one object",
            }
        ]
    }


async def assert_refused_without_credentials(
    client: httpx.AsyncClient, method: str, url: str, body: bytes, headers: Mapping[str, str]
) -> None:
    """``headers`` carry no credentials: a 401 asking for a bearer token, whatever
    ``body`` says."""
    answer = await client.request(method, url, content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["detail"][0]["field"] == "Authorization"


class Watched:
    """A request body that says whether the app read any of it."""

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.read = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.read = True
        yield self.content
