"""Refusals that only stale campaign terms would make: asked again once the view caught up.

The orders and clicks services accept an event once their own campaign view holds its
campaign, and the worker names the terms version it decided with, so those terms were on
the ``campaigns`` topic before the event was written. Every other process follows that
topic on its own and can be a fetch behind: an event read in that moment would be refused
as of an unknown campaign or terms version (or above a limit new terms raised) and
dead-lettered, although nothing is wrong with it. Such a refusal is held until the view
has read everything the broker held a clock skew after the event's record time, then the
event is taken again; only what is still refused then is dead-lettered.
"""

from __future__ import annotations

from collections.abc import Callable

from afflux.shared.io.campaign_view import CampaignDirectory

# Producer clocks may stamp a record this much before the broker took it (as for the
# stages' safe time).
MARGIN_MS = 1_000
# However long the view takes (a broker away), a held event waits at most this long.
WAIT_S = 5.0


class TermsRecheck:
    def __init__(
        self,
        directory: CampaignDirectory,
        clock: Callable[[], int],
        refusals: tuple[str, ...],
        margin_ms: int = MARGIN_MS,
        wait_s: float = WAIT_S,
    ) -> None:
        self.directory = directory
        self.clock = clock
        # Parts of the refusal reasons that newer terms could lift.
        self.refusals = refusals
        self.margin_ms = margin_ms
        self.wait_s = wait_s

    def may_lift(self, refused: str, record_ms: int) -> bool:
        """Whether a refusal of an event in a record stamped ``record_ms`` may be from
        terms the view has not read yet. A view nothing follows (``synced_at_ms`` 0, a
        consumer driven without Kafka) is taken as complete."""
        directory = self.directory
        return (
            directory.synced_at_ms > 0
            and any(part in refused for part in self.refusals)
            and directory.may_lag(record_ms, self.clock(), self.margin_ms)
        )

    async def caught_up(self, record_ms: int) -> bool:
        """Wait until the view holds what the broker held ``margin_ms`` after ``record_ms``
        (False: not within ``wait_s``)."""
        return await self.directory.synced_past(record_ms + self.margin_ms, self.wait_s)
