"""Why a click is not counted: the reasons a ``ClickRecorded`` may be flagged with.

A flagged click is kept and reported, but it is never paid per click and never
wins attribution. The tuple's order is the canonical order of ``flags`` on the
event (and the first one is the click's outcome in the clicks service's metrics).
"""

from __future__ import annotations

from typing import Final

BOT: Final = "bot"
DUPLICATE: Final = "duplicate"
IP_DUPLICATE: Final = "ip_duplicate"
RATE: Final = "rate"
EMBEDDED: Final = "embedded"

CLICK_FLAGS: Final[tuple[str, ...]] = (BOT, DUPLICATE, IP_DUPLICATE, RATE, EMBEDDED)


def legacy_flags(is_bot: bool, is_duplicate: bool) -> tuple[str, ...]:
    """The reasons an event from before ``flags`` existed stands for."""
    if is_bot:
        return (BOT, DUPLICATE) if is_duplicate else (BOT,)
    return (DUPLICATE,) if is_duplicate else ()


def click_flagged(is_bot: bool, is_duplicate: bool, flags: tuple[str, ...]) -> bool:
    """Whether a click is flagged for any reason: never paid per click, never wins."""
    return is_bot or is_duplicate or bool(flags)
