"""Load generator for ``afflux bench clicks``, run as its own process.

A minimal HTTP/1.1 keep-alive client on raw asyncio streams (uvloop), so the
client's own cost stays small next to the server's.

    python -m afflux.bench.clicks_load URL SECONDS CONNECTIONS [RATE]

Without RATE each connection sends its next request as soon as the previous
answer arrived (peak throughput). With RATE (requests/s over all connections)
requests are scheduled at fixed times and latency is measured from the
scheduled time, so a slow answer also counts against the requests queued
behind it. Prints one JSON line: seconds, status counts, p50/p99 in ms.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari"
)


async def _connection(
    host: str,
    port: int,
    request: bytes,
    stop_at: float,
    interval: float | None,
    offset: float,
    tally: dict[int, int],
    latencies: list[float],
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        tally[0] = tally.get(0, 0) + 1
        return
    next_at = time.monotonic() + offset
    try:
        while True:
            if interval is not None:
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_at = next_at
                next_at += interval
            else:
                sent_at = time.monotonic()
            if sent_at >= stop_at:
                break
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.monotonic() - sent_at)
            tally[status] = tally.get(status, 0) + 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        tally[0] = tally.get(0, 0) + 1
    finally:
        writer.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


async def run(url: str, seconds: float, connections: int, rate: float | None) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: text/html\r\n\r\n"
    ).encode()
    tally: dict[int, int] = {}
    latencies: list[float] = []
    interval = connections / rate if rate else None
    started = time.monotonic()
    stop_at = started + seconds
    await asyncio.gather(
        *(
            _connection(
                host,
                port,
                request,
                stop_at,
                interval,
                (interval or 0) * n / connections,
                tally,
                latencies,
            )
            for n in range(connections)
        )
    )
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "seconds": elapsed,
        "status": {str(k): v for k, v in sorted(tally.items())},
        "requests": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
    }


def main(argv: list[str]) -> int:
    url, seconds, connections = argv[0], float(argv[1]), int(argv[2])
    rate = float(argv[3]) if len(argv) > 3 else None
    import uvloop  # ships with uvicorn[standard], as the servers use it

    result = uvloop.run(run(url, seconds, connections, rate))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
