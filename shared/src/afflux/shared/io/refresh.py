"""A reading kept current in the background (gauges read from Redis, for instance)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def refresh_forever(
    update: Callable[[], Awaitable[object]], interval_s: float, what: str
) -> None:
    """``update()`` every ``interval_s`` until cancelled. A failed one keeps the last
    reading (logged at debug: the service's own alerts tell a Redis away)."""
    while True:
        try:
            await update()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("%s failed: %s", what, exc)
        await asyncio.sleep(interval_s)
