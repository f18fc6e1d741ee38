"""``afflux bench clicks [--json] [--server uvicorn|granian]``: redirects/s of
``GET /c/{code}`` beside two baselines returning the same 302 (same headers), measured
in the same run: a bare FastAPI endpoint, and a raw ASGI callable (what the server
itself can answer: the ceiling of any app on it).

The three servers are children under the same server set-up: by default the
service's own (afflux.clicks.server: uvicorn, one worker, uvloop, httptools),
with ``--server granian`` all three under granian (one worker, uvloop), to
compare the two servers. The load comes from a separate process on loopback
(afflux.bench.clicks_load). The clicks service really produces every click event
to its own broker (``--broker``): the run checks that the ``clicks`` topic holds
one event per 302 answered. Phases:

1. peak: closed-loop load, the three sides alternated in rounds;
2. latency: open-loop load at 70 % of the clicks service's peak, p99 of the
   service and of the bare endpoint;
3. outage: the broker is stopped and the clicks service keeps answering; every
   answer that is not a 302 is counted (the target is zero).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from afflux.bench.side_by_side import (
    Result,
    Tally,
    bench_main,
    compared,
    events_on,
    run_load,
    start_backbone,
    start_server,
)
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.topics import CLICKS

if TYPE_CHECKING:
    from afflux.cli.brokers import BrokerKind
    from afflux.cli.storage import BrokerStorage

CAMPAIGN, TOKEN = "bench-shop", "bench-admin-token"
FSYNC = "afflux_clicks_wal_fsync_seconds"
BASELINE = "bare FastAPI endpoint returning the same 302"
RAW_BASELINE = "raw ASGI callable returning the same 302"
SERVERS = ("uvicorn", "granian")
# What each side is under granian: (target, whether it is a factory).
GRANIAN_TARGETS = {
    "clicks": ("afflux.bench.clicks_granian:clicks_app", True),
    "bare": ("afflux.bench.clicks_bare:bare_app", True),
    "raw": ("afflux.bench.clicks_raw:raw_app", False),
}
UVICORN_MODULES = {"bare": "afflux.bench.clicks_bare", "raw": "afflux.bench.clicks_raw"}


def _server_argv(server: str, side: str, port: int) -> list[str]:
    """How ``side`` (clicks, bare, raw) is started on ``port`` under ``server``."""
    if server == "granian":
        target, factory = GRANIAN_TARGETS[side]
        options = ["--interface", "asgi", "--loop", "uvloop", "--workers", "1", "--no-ws"]
        address = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        factory_flag = ["--factory"] if factory else []
        return [sys.executable, "-m", "granian", *options, *address, *factory_flag, target]
    if side == "clicks":
        return [sys.executable, "-m", "afflux.clicks"]  # its port from the environment
    return [sys.executable, "-m", UVICORN_MODULES[side], str(port)]


def _start_sides(
    server: str, env: dict[str, str], work: Path, children: list[Any]
) -> tuple[str, str, str]:
    """The clicks service, the bare endpoint and the raw callable, started and healthy."""
    from afflux.cli.processes import free_port

    urls = []
    for side in ("clicks", "bare", "raw"):
        port = free_port()
        side_env = {**env, "AFFLUX_CLICKS_PORT": str(port)} if side == "clicks" else {}
        argv = _server_argv(server, side, port)
        urls.append(start_server(side, argv, port, work, children, side_env))
    clicks_url, bare_url, raw_url = urls
    return clicks_url, bare_url, raw_url


def _load(url: str, seconds: float, connections: int, rate: float | None = None) -> Result:
    args = [url, str(seconds), str(connections)] + ([f"{rate:.1f}"] if rate else [])
    return run_load("afflux.bench.clicks_load", seconds, *args)


def _redirect_buckets(url: str, name: str = "afflux_redirect_seconds") -> dict[float, float]:
    """Cumulative counts of one of the service's own histograms (the redirect's by default)."""
    buckets: dict[float, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def _in_service_p99_ms(before: dict[float, float], after: dict[float, float]) -> float:
    """The bucket bound under which 99 % of the redirects between two scrapes were answered."""
    total = after.get(float("inf"), 0.0) - before.get(float("inf"), 0.0)
    for bound in sorted(after):
        if total and after[bound] - before.get(bound, 0.0) >= 0.99 * total:
            return bound * 1000
    return float("inf")


def _create_link(url: str) -> str:
    response = httpx.post(
        f"{url}/v1/links",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "affiliate_id": "creator-bench",
            "campaign_id": CAMPAIGN,
            "destination_url": "https://shop.example.com/landing?ref=bench",
        },
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["code"])


def run(
    seconds: float,
    connections: int,
    work: Path,
    rounds: int = 2,
    storage: BrokerStorage = "durable",
    broker: BrokerKind = "tansu",
    server: str = "uvicorn",
) -> dict[str, Any]:
    children: list[Any] = []
    try:
        terms = CampaignTerms(
            campaign_id=CAMPAIGN,
            merchant_id="merchant-bench",
            currency="EUR",
            allowed_domains=("shop.example.com",),
        )
        backbone = start_backbone(work, storage, terms, children, broker)
        env = {
            "AFFLUX_KAFKA_BOOTSTRAP": backbone.bootstrap,
            "AFFLUX_REDIS_URL": f"redis://127.0.0.1:{backbone.redis_port}/1",
            "AFFLUX_ADMIN_TOKEN": TOKEN,
            "AFFLUX_CLICKS_IP_HASH_SECRET": "bench-secret",
            "AFFLUX_CLICKS_SEND_TIMEOUT_MS": "2000",
            "AFFLUX_DATA_DIR": str(work / "data"),
            "AFFLUX_LOG_LEVEL": "WARNING",
        }
        clicks_url, bare_url, raw_url = _start_sides(server, env, work, children)
        code = _create_link(clicks_url)
        clicks_target, bare_target = f"{clicks_url}/c/{code}", f"{bare_url}/c/{code}"
        raw_target = f"{raw_url}/c/{code}"
        answered = 0
        _load(bare_target, 1.5, connections)  # warm-up
        _load(raw_target, 1.5, connections)
        answered += _load(clicks_target, 1.5, connections)["status"].get("302", 0)
        # Alternate the three sides so that a noisy neighbour hits them alike.
        baseline, raw, measured = Tally(), Tally(), Tally()
        for _ in range(rounds):
            baseline.add(_load(bare_target, seconds / rounds, connections))
            raw.add(_load(raw_target, seconds / rounds, connections))
            result = _load(clicks_target, seconds / rounds, connections)
            measured.add(result)
            answered += result["status"].get("302", 0)
        rate70 = 0.7 * measured.rate("302")
        latency_seconds = max(3.0, seconds / 3)
        scraped = _redirect_buckets(clicks_url)
        fsyncs_before = _redirect_buckets(clicks_url, FSYNC)
        at70 = _load(clicks_target, latency_seconds, connections, rate70)
        in_service_p99 = _in_service_p99_ms(scraped, _redirect_buckets(clicks_url))
        fsyncs_after = _redirect_buckets(clicks_url, FSYNC)
        fsync_p99 = _in_service_p99_ms(fsyncs_before, fsyncs_after)
        fsync_count = fsyncs_after.get(float("inf"), 0.0) - fsyncs_before.get(float("inf"), 0.0)
        answered += at70["status"].get("302", 0)
        bare70 = _load(bare_target, latency_seconds, connections, rate70)
        produced = 0
        deadline = time.monotonic() + 30
        while produced < answered and time.monotonic() < deadline:
            produced = asyncio.run(events_on(backbone.bootstrap, CLICKS.name))
        backbone.broker.stop()
        outage = _load(clicks_target, max(3.0, seconds / 4), connections)
    finally:
        for child in reversed(children):
            child.stop()
    value, base, raw_base = measured.rate("302"), baseline.rate("302"), raw.rate("302")
    non_302 = {k: v for k, v in outage["status"].items() if k != "302"}
    facts = {
        "raw_baseline": round(raw_base, 1),
        "raw_ratio": round(value / raw_base, 3) if raw_base else 0.0,
        "raw_baseline_name": RAW_BASELINE,
        "server": server,
        "p50_ms": max(measured.p50),
        "p99_ms": max(measured.p99),
        "baseline_p50_ms": max(baseline.p50),
        "baseline_p99_ms": max(baseline.p99),
        "rate_at_70pct": round(rate70, 1),
        "p99_ms_at_70pct": at70["p99_ms"],
        "p50_ms_at_70pct": at70["p50_ms"],
        "baseline_p99_ms_at_70pct": bare70["p99_ms"],
        "in_service_p99_ms_at_70pct_le": in_service_p99,
        "wal_fsync_p99_ms_at_70pct_le": fsync_p99,
        "clicks_per_fsync_at_70pct": round(at70["status"].get("302", 0) / fsync_count, 1)
        if fsync_count
        else 0.0,
        "answered_302": answered,
        "events_produced": produced,
        "broker_down_requests": sum(outage["status"].values()),
        "broker_down_non_302": sum(non_302.values()),
        "broker_down_req_s": round(outage["status"].get("302", 0) / outage["seconds"], 1),
    }
    ran = (seconds, rounds, connections, storage, broker)
    return compared("clicks", "req/s", (value, base), BASELINE, facts, ran)


def main(argv: Sequence[str]) -> int:
    server = {
        "choices": SERVERS,
        "default": "uvicorn",
        "dest": "server",
        "help": "the server of all three sides (default: the service's own, uvicorn)",
    }
    return bench_main(
        argv, "clicks", __doc__, (12.0, 32), run, _summary, _passed, {"--server": server}
    )


def _summary(result: Result) -> str:
    return (
        f"clicks: {result['value']:.0f} redirects/s (p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms), every click produced "
        f"({result['events_produced']} events for {result['answered_302']} redirects)\n"
        f"bare FastAPI 302: {result['baseline']:.0f} req/s "
        f"(p50 {result['baseline_p50_ms']:.2f} ms, p99 {result['baseline_p99_ms']:.2f} ms); "
        f"ratio {result['ratio']:.2f}\n"
        f"raw ASGI 302: {result['raw_baseline']:.0f} req/s; "
        f"ratio {result['raw_ratio']:.2f} (target >= 0.50); all three on {result['server']}\n"
        f"at 70 % of peak ({result['rate_at_70pct']:.0f} req/s): "
        f"p99 {result['p99_ms_at_70pct']:.2f} ms "
        f"(bare {result['baseline_p99_ms_at_70pct']:.2f} ms; target <= 10 ms; inside the "
        f"service p99 <= {result['in_service_p99_ms_at_70pct_le']:g} ms, of which the "
        f"write-ahead log's group fsync p99 <= {result['wal_fsync_p99_ms_at_70pct_le']:g} ms, "
        f"{result['clicks_per_fsync_at_70pct']:g} clicks per fsync)\n"
        f"broker stopped: {result['broker_down_requests']} requests, "
        f"{result['broker_down_non_302']} not answered 302 (target 0)"
    )


def _passed(result: Result) -> bool:
    return result["events_produced"] >= result["answered_302"] and not result["broker_down_non_302"]
