"""A Unicode endpoint name is checked as the name the HTTP client connects to.

httpx encodes a Unicode host with IDNA 2008 (``ß.evil.test`` is ``xn--zca.evil.test``);
``getaddrinfo``, given the Unicode name, encodes it with IDNA 2003 (``ss.evil.test``),
another name, which its owner can point elsewhere. The check looked up the second and the
request went to the first: a name checked as a public address was called at loopback, at
registration and before every request. The resolver here answers as ``getaddrinfo`` does
(a Unicode name encoded with IDNA 2003, then looked up) from a zone the attacker writes.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from test_webhook_dns_timeout import Outcomes, job

from afflux.payouts.webhooks import policy
from afflux.payouts.webhooks.delivery import Deliverer, DeliveryLimits, Refused, check_destination
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import Endpoint

pytestmark = pytest.mark.unit

PUBLIC = "93.184.215.14"
# What the attacker's zone answers: the IDNA 2003 forms a public address, the IDNA 2008
# forms (what httpx connects to) loopback.
ZONE = {
    "ss.evil.test": PUBLIC,  # ß, IDNA 2003
    "xn--zca.evil.test": "127.0.0.1",  # ß, IDNA 2008
    "xn--4xa.evil.test": PUBLIC,  # ς, IDNA 2003 (mapped to sigma)
    "xn--3xa.evil.test": "127.0.0.1",  # ς, IDNA 2008
}
UNICODE_URLS = ["http://ß.evil.test/hook", "https://ς.evil.test:8443/hook"]


@pytest.fixture(autouse=True)
def zone(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(host: str | bytes, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        # As socket.getaddrinfo: a str host is encoded with Python's "idna" codec (2003).
        name = host.encode("idna").decode("ascii") if isinstance(host, str) else host.decode()
        if name not in ZONE:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ZONE[name], port))]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("http://ß.evil.test/hook", ("xn--zca.evil.test", 80)),
        ("https://ς.evil.test:8443/hook", ("xn--3xa.evil.test", 8443)),
        ("https://XN--ZCA.Evil.Test/hook", ("xn--zca.evil.test", 443)),
        ("http://127.0.0.1:8080/h", ("127.0.0.1", 8080)),
        ("http://[::1]/h", ("::1", 80)),
    ],
)
def test_the_host_checked_is_the_ascii_one_the_client_connects_to(
    url: str, expect: tuple[str, int]
) -> None:
    assert policy.check_url(url) == expect
    assert httpx.URL(url).raw_host.decode() == expect[0]


def test_a_public_name_is_still_accepted() -> None:
    asyncio.run(check_destination("http://ss.evil.test/hook", allow_private=False))


@pytest.mark.parametrize("url", UNICODE_URLS)
def test_registration_refuses_a_unicode_name_the_client_would_call_at_loopback(
    url: str,
) -> None:
    with pytest.raises(Refused, match=r"127\.0\.0\.1 is a loopback address"):
        asyncio.run(check_destination(url, allow_private=False))


@pytest.mark.parametrize("url", UNICODE_URLS)
def test_a_delivery_to_such_a_name_is_refused_and_never_sent(url: str) -> None:
    sent: list[str] = []

    async def scenario() -> list[tuple[str, str]]:
        outcomes = Outcomes()
        sender = Deliverer(
            store=outcomes,  # type: ignore[arg-type]
            metrics=WebhookMetrics(CollectorRegistry()),
            limits=DeliveryLimits(timeout_s=2, allow_private=False),
            clock=lambda: 0,
            wake=asyncio.Event(),
        )

        async def post(client: Any, to: str, *args: Any) -> tuple[int, str]:
            sent.append(to)
            return 200, ""

        sender._post = post  # type: ignore[method-assign]
        endpoint = Endpoint("ep-m", "merchant", "m", url, ("*",), "s" * 32, 0)
        async with httpx.AsyncClient() as client:
            await sender._deliver(client, job(1, "m"), endpoint)
        return outcomes.calls

    [(outcome, reason)] = asyncio.run(scenario())
    assert outcome == "bury"
    assert "127.0.0.1 is a loopback address" in reason
    assert sent == []
