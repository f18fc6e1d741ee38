"""The time from a worker's restart after kill -9 to its first output (``afflux bench
attribution --recovery``): new visitors are produced while no worker runs, and the
clock stops at the first of their decisions on the output topics."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from afflux.bench.feed import produce
from afflux.cli.processes import Child
from afflux.oracle import attribute, canonical, generate
from afflux.shared.events import OrderRefunded

PROBE_VISITORS = 20


def first_output_after_kill(
    bootstrap: str, worker: Child, env: dict[str, str], work: Path, n: int
) -> tuple[float, Child]:
    """Kill ``worker`` (SIGKILL to its PID), produce new visitors, start a worker with
    ``env``: seconds from its start to its first decision for them, and the new worker."""
    from afflux.bench.attribution import PARTITIONS, OutputReader, _decisions, healthy

    worker.kill()
    probe = generate(
        900 + n, visitors=PROBE_VISITORS, order_share=1.0, grace_seconds=1, prefix=f"probe{n}"
    )
    result = attribute(probe.events, probe.campaigns)
    decided = canonical([*result.conversions, *result.unmatched])
    wanted = {line for line in decided if _decisions(line)}
    events = [e for e in probe.events if not isinstance(e, OrderRefunded)]
    asyncio.run(produce(bootstrap, events, PARTITIONS, pack=200))

    async def clocked() -> tuple[float, Child]:
        reader = OutputReader(bootstrap)
        await reader.start()
        try:
            # Every output so far, read first: until a poll adds no distinct output (the
            # killed worker may have written some twice, so the count of records read
            # never settles on the distinct count, and comparing the two never ends).
            seen = -1
            while (distinct := len(await reader.poll())) != seen:
                seen = distinct
            started = time.perf_counter()
            restarted = Child(
                "attribution",
                [sys.executable, "-m", "afflux.attribution"],
                work / "logs" / f"attribution-restart{n}.log",
                env=env,
            ).start()
            port = int(env["AFFLUX_ATTRIBUTION_PORT"])
            ready_s = None
            while not wanted & await reader.poll():
                if ready_s is None and healthy(port):
                    ready_s = time.perf_counter() - started
                    print(f"restarted worker ready (state recovered) after {ready_s:.1f}s")
                if not restarted.alive():
                    raise RuntimeError(f"the restarted worker exited: {restarted.log_tail()}")
                if time.perf_counter() - started > 600:
                    raise TimeoutError("no output within 600 s of the restart")
            return time.perf_counter() - started, restarted
        finally:
            await reader.stop()

    return asyncio.run(clocked())
