"""What an operator sees when a command cannot do its work: one line naming what failed
and where, exit status 2, never a traceback (``AFFLUX_DEBUG=1`` shows it)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

FAILED = 2


def failure_line(exc: BaseException) -> str | None:
    """One line for a failure an operator can act on, or None (a defect: traceback)."""
    # Imported here: ``afflux --help`` and ``--version`` stay quick.
    from aiokafka.errors import KafkaConnectionError
    from pydantic import ValidationError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from afflux.shared.campaign_file import InvalidCampaignFile
    from afflux.shared.io.kafka import BrokerUnreachable

    if isinstance(exc, BrokerUnreachable):
        return str(exc)
    if isinstance(exc, KafkaConnectionError):
        return f"cannot reach the broker (AFFLUX_KAFKA_BOOTSTRAP): {exc}"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return f"cannot reach Redis (AFFLUX_REDIS_URL): {exc}"
    if isinstance(exc, InvalidCampaignFile):
        return f"invalid campaign file: {exc}"
    # Only the settings read from the environment: any other validation error (an event
    # built wrong) or timeout (a bench's recovery check) is a defect, shown as one.
    if isinstance(exc, ValidationError) and exc.title.endswith("Settings"):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        return f"invalid settings ({exc.title}): {problems}"
    return None


def guarded(run: Callable[[], int]) -> int:
    """``run()``'s exit status, or ``FAILED`` with one line on stderr for a failure an
    operator can act on (an unreachable broker or Redis, a bad file or setting)."""
    try:
        return run()
    except Exception as exc:
        line = failure_line(exc)
        if line is None or os.environ.get("AFFLUX_DEBUG"):
            raise
        print(f"afflux: {line} (AFFLUX_DEBUG=1 shows where)", file=sys.stderr)
        return FAILED
