"""Load generator for ``afflux bench orders``, run as its own process.

A minimal HTTP/1.1 keep-alive client on raw asyncio streams, so the client's
own cost stays small next to the server's. Each request carries a fresh order
id, signed with the merchant's secret at send time.

    python -m afflux.bench.orders_load URL SECONDS CONNECTIONS MERCHANT SECRET CAMPAIGN
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from urllib.parse import urlsplit

from afflux.orders.signing import sign


def order_body(campaign_id: str, number: int, tag: str) -> bytes:
    return (
        f'{{"order_id":"bench-{tag}-{number}","campaign_id":"{campaign_id}",'
        f'"occurred_at":{time.time_ns() // 1_000_000},"amount_minor":{1000 + number % 9000},'
        f'"currency":"EUR","visitor_id":"v-{tag}-{number % 5000}"}}'
    ).encode()


def request_bytes(host: str, path: str, body: bytes, merchant: str, secret: str) -> bytes:
    signature = sign(body, secret, int(time.time()))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Afflux-Merchant: {merchant}\r\n"
        f"X-Afflux-Signature: {signature}\r\n\r\n"
    )
    return head.encode() + body


async def _connection(
    host: str,
    port: int,
    path: str,
    stop_at: float,
    counter: itertools.count[int],
    args: tuple[str, str, str, str],
    tally: dict[int, int],
) -> None:
    merchant, secret, campaign, tag = args
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop_at:
            body = order_body(campaign, next(counter), tag)
            writer.write(request_bytes(host, path, body, merchant, secret))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            tally[status] = tally.get(status, 0) + 1
    finally:
        writer.close()


async def run(
    url: str, seconds: float, connections: int, args: tuple[str, str, str]
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    counter = itertools.count()
    tally: dict[int, int] = {}
    tag = f"{os.getpid()}-{time.time_ns() % 1_000_000_000}"
    started = time.monotonic()
    stop_at = started + seconds
    await asyncio.gather(
        *(
            _connection(host, port, path, stop_at, counter, (*args, tag), tally)
            for _ in range(connections)
        )
    )
    elapsed = time.monotonic() - started
    return {"seconds": elapsed, "status": {str(k): v for k, v in sorted(tally.items())}}


def main(argv: list[str]) -> int:
    url, seconds, connections, merchant, secret, campaign = argv
    import uvloop  # ships with uvicorn[standard], as the servers use it

    result = uvloop.run(run(url, float(seconds), int(connections), (merchant, secret, campaign)))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
