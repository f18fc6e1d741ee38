"""Publishing campaign terms from the admin API, one publication at a time."""

from __future__ import annotations

import asyncio

from afflux.orders.errors import Rejected
from afflux.shared.campaign_file import CampaignEntry
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_publish import TermsRefused, TermsTooLarge, publish_terms


class TermsPublisher:
    """Publishes an entry as its campaign's next version when it differs from the latest.

    One publication at a time in this process: each reads every version before it
    writes, so two at once could both take the same version number.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.lock = asyncio.Lock()

    async def publish(self, entry: CampaignEntry) -> list[CampaignTermsPublished]:
        """What was published (empty when the terms equal the latest); 413 when the
        campaign's history would no longer fit one record; 422 ``terms.currency`` for terms
        in another currency than the campaign's; 503 when the broker cannot
        be reached."""
        async with self.lock:
            try:
                return await publish_terms(self.bootstrap, [(entry.terms, entry.effective_from)])
            except TermsTooLarge as exc:
                raise Rejected(413, "body", str(exc)) from None
            except TermsRefused as exc:
                raise Rejected(422, f"terms.{exc.field}", str(exc)) from None
            except Exception as exc:
                raise Rejected(503, None, f"broker unavailable: {type(exc).__name__}") from None
