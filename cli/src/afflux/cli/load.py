"""Seeded traffic through the HTTP endpoints: all at once, or steadily in the background.

The fault tests keep a ``SteadyLoad`` running while they kill and cut things;
``afflux verify`` drives a fixed number of visitors with ``drive``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass

from afflux.cli.demo_client import DemoClient
from afflux.cli.traffic import Program, Tally, Traffic, TrafficMix


@dataclass(frozen=True)
class Endpoints:
    clicks_url: str
    orders_url: str
    payouts_url: str
    admin_token: str

    def client(self, retry_for_s: float = 8.0, merchant_clock_offset_ms: int = 0) -> DemoClient:
        return DemoClient(
            self.clicks_url,
            self.orders_url,
            self.payouts_url,
            self.admin_token,
            retry_for_s=retry_for_s,
            merchant_clock_offset_ms=merchant_clock_offset_ms,
        )


async def drive(traffic: Traffic, visitors: range, seed: int, concurrency: int = 32) -> Tally:
    """Every visitor in ``visitors`` once, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(visitor_no: int) -> None:
        async with gate:
            try:
                await traffic.visit(visitor_no, random.Random(f"{seed}-{visitor_no}"))
            except Exception as exc:  # counted; the checks then show what was lost, if any
                traffic.tally.errors += 1
                if len(traffic.tally.error_samples) < 5:
                    traffic.tally.error_samples.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(one(n) for n in visitors))
    return traffic.tally


STEADY_MIX = TrafficMix(think_time_s=(0.05, 0.5))


class SteadyLoad:
    """Visitors at a steady rate from a background thread, until ``stop``."""

    def __init__(
        self,
        endpoints: Endpoints,
        programs: list[Program],
        creators: list[str],
        *,
        seed: int,
        visitors_per_s: float,
        run_id: str,
        mix: TrafficMix = STEADY_MIX,
        retry_for_s: float = 60.0,
    ) -> None:
        self.endpoints = endpoints
        self.programs = programs
        self.creators = creators
        self.seed = seed
        self.visitors_per_s = visitors_per_s
        self.run_id = run_id
        self.mix = mix
        self.retry_for_s = retry_for_s
        self.tally = Tally()
        self._stop = threading.Event()
        self._links_ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"load-{run_id}")
        self.failure: BaseException | None = None

    def start(self) -> SteadyLoad:
        self._thread.start()
        if not self._links_ready.wait(60):
            raise RuntimeError(f"steady load could not create its links: {self.failure}")
        return self

    def stop(self, timeout_s: float = 120.0) -> Tally:
        """Stop starting visitors, let the started ones finish, return what was sent."""
        self._stop.set()
        self._thread.join(timeout_s)
        return self.tally

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()/the checks, never swallowed silently
            self.failure = exc
            self._links_ready.set()

    async def _main(self) -> None:
        async with self.endpoints.client(self.retry_for_s) as client:
            traffic = Traffic(
                client, self.programs, self.creators, mix=self.mix, run_id=self.run_id
            )
            traffic.tally = self.tally
            await traffic.create_links()
            self._links_ready.set()
            started = time.monotonic()
            running: set[asyncio.Task[Tally]] = set()
            visitor_no = 0
            while not self._stop.is_set():
                due = int((time.monotonic() - started) * self.visitors_per_s)
                while visitor_no < due:
                    task = asyncio.create_task(
                        drive(traffic, range(visitor_no, visitor_no + 1), self.seed)
                    )
                    running.add(task)
                    task.add_done_callback(running.discard)
                    visitor_no += 1
                await asyncio.sleep(0.05)
            if running:
                await asyncio.gather(*running)
