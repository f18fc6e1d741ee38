"""Where each consumed event goes in the ledger: the campaign-period, the batch item,
and every refusal that can be made before anything is applied.

``Placement.place`` checks everything that can refuse an event (a campaign without
terms, an unknown terms version, another currency, an amount above the campaign's
``max_order_minor``, content never published or published for another campaign or
creator) before it adds anything to a batch, so a refused event leaves the batch as
it was. It does no I/O: a content's route that is neither placed nor remembered is
read from Redis by the consumer and handed to ``remember_route``.
"""

from __future__ import annotations

from collections.abc import Sequence

from afflux.payouts import payout_records
from afflux.payouts.batch import Batch
from afflux.payouts.tallies import ClickItem
from afflux.shared import ledger_facts
from afflux.shared.click_decode import DecodedClick
from afflux.shared.content_facts import content_fact, key_of
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import version_by_number
from afflux.shared.core.content import takes_over
from afflux.shared.core.currency import other_currency
from afflux.shared.core.engagement import taken_over
from afflux.shared.core.ids import derived_id
from afflux.shared.core.money import MAX_AMOUNT_MINOR
from afflux.shared.core.periods import BadPeriod, period_bounds, period_of
from afflux.shared.core.products import items_problem
from afflux.shared.core.terms import TermsVersion, terms_in_force
from afflux.shared.events import (
    ClickRecorded,
    ContentPublished,
    ContentReleased,
    ContentStats,
    ConversionAttributed,
    ConversionReversed,
    ConversionReviewed,
    LeadConfirmed,
    PayoutIssued,
)
from afflux.shared.io.campaign_view import CampaignDirectory, UnknownCampaign

UNKNOWN_CONTENT = "unknown_content"
# content is written from outside (merchants' and platforms' integrations): a conversion,
# reversal or review decision on it would be paid as if the worker or a reviewer had made it.
CONTENT_IDENTITY_CHANGED = "content_identity_changed"
CONTENT_ROUTES_MAX = 100_000  # content routes remembered between batches
UNKNOWN_TERMS_VERSION = "unknown_terms_version"
# Parts of ``Rejected`` reasons that terms published since could lift.
TERMS_REFUSALS = ("has no terms", UNKNOWN_TERMS_VERSION, "max_order_minor")


class Rejected(ValueError):
    pass


class Placement:
    """The placing of one consumer: its campaign view, and what it remembers between
    batches (each campaign's periods by day, each content's route)."""

    def __init__(self, directory: CampaignDirectory) -> None:
        self.directory = directory
        # campaign -> (the terms it was computed under, UTC day -> period name)
        self._periods: dict[str, tuple[Sequence[TermsVersion], dict[int, str]]] = {}
        # content -> (campaign, period, creator) of its publication, as read or placed
        self._routes: dict[str, tuple[str, str, str]] = {}
        # of those, the contents awaiting their release (first published by the creator's
        # own key): the brand's publication may take them over (``takes_over``)
        self._awaiting: set[str] = set()

    def currency(self, campaign_id: str) -> str:
        """The campaign's currency, as ``LedgerStore.apply`` asks for it."""
        return self.directory.latest(campaign_id).terms.currency

    def _versions(self, campaign_id: str) -> Sequence[TermsVersion]:
        try:
            return self.directory.versions(campaign_id)
        except UnknownCampaign:
            raise Rejected(f"campaign {campaign_id!r} has no terms") from None

    def _period(self, campaign_id: str, at_ms: int) -> str:
        """The campaign-period of an event time; remembered per campaign and UTC day (a
        period is whole days) while the campaign's terms stay the same."""
        versions = self._versions(campaign_id)
        day = at_ms // MS_PER_DAY
        known = self._periods.get(campaign_id)
        if known is None or known[0] is not versions:
            # A day a version starts in may hold two plans' periods: never remembered.
            changes = {v.effective_from // MS_PER_DAY for v in versions}
            known = self._periods[campaign_id] = (versions, dict.fromkeys(changes, ""))
        by_day = known[1]
        if by_day.get(day):
            return by_day[day]
        if day in by_day:
            return self._period_uncached(versions, at_ms)
        if len(by_day) > 10_000:  # bounded: start over (the markers come back with it)
            del self._periods[campaign_id]
            return self._period_uncached(versions, at_ms)
        by_day[day] = name = self._period_uncached(versions, at_ms)
        return name

    @staticmethod
    def _period_uncached(versions: Sequence[TermsVersion], at_ms: int) -> str:
        return period_of(at_ms, terms_in_force(versions, at_ms).terms.plan.period)

    def place(self, event: object, batch: Batch) -> None:
        """Add ``event``'s ledger changes to ``batch``; raises ``Rejected`` (leaving
        ``batch`` as it was) for an event the ledger refuses."""
        if isinstance(event, ConversionAttributed):
            period = self._period(event.campaign_id, event.occurred_at)
            versions = self._versions(event.campaign_id)
            if all(v.version != event.terms_version for v in versions):
                # Pricing falls back to the latest version: never price by another one.
                raise Rejected(
                    f"{UNKNOWN_TERMS_VERSION}: campaign {event.campaign_id!r} has no terms "
                    f"version {event.terms_version}"
                )
            limit = version_by_number(versions, event.terms_version).terms.max_order_minor
            if event.amount_minor > limit:
                raise Rejected(
                    f"amount_minor {event.amount_minor} above the campaign's "
                    f"max_order_minor {limit}"
                )
            if event.currency != self.currency(event.campaign_id):
                raise Rejected(
                    f"conversion in {event.currency} for campaign {event.campaign_id!r} "
                    f"paid in {self.currency(event.campaign_id)}"
                )
            # The attribution worker refuses such an order; a conversion produced around it
            # was paid on items worth more than the sale (20000 of items on 10000: twice).
            rows = [(i.sku, i.category, i.quantity, i.price_minor) for i in event.items]
            refused = items_problem(event.amount_minor, rows, event.non_commissionable_minor)
            if refused:
                raise Rejected(refused)
            batch.conversions.append(
                (event.campaign_id, period, ledger_facts.conversion_fact(event))
            )
            if any(v.terms.lead_confirmation_required for v in self._versions(event.campaign_id)):
                batch.confirm_required.add(event.campaign_id)
            if any(v.terms.review is not None for v in self._versions(event.campaign_id)):
                # The first copy of a conversion names it (a later one is refused).
                batch.review_index.setdefault(
                    event.conversion_id,
                    [
                        event.campaign_id,
                        period,
                        event.order_id,
                        event.affiliate_id,
                        event.occurred_at,
                    ],
                )
        elif isinstance(event, ConversionReviewed):
            period = self._period(event.campaign_id, event.order_occurred_at)
            batch.reviews.append((event.campaign_id, period, ledger_facts.review_fact(event)))
        elif isinstance(event, ConversionReversed):
            period = self._period(event.campaign_id, event.order_occurred_at)
            # Taken back in the conversion's money: a reversal in another currency, written
            # straight to the topic, reversed 5000 EUR for 5000 USD.
            if other_currency(event.currency, self.currency(event.campaign_id)):
                raise Rejected(
                    f"reversal in {event.currency} for campaign {event.campaign_id!r} "
                    f"paid in {self.currency(event.campaign_id)}"
                )
            batch.refunds.append((event.campaign_id, period, ledger_facts.refund_fact(event)))
        elif isinstance(event, LeadConfirmed):
            self._period(event.campaign_id, event.occurred_at)  # rejects unknown campaigns
            # Only a campaign that confirms leads pays on a confirmation: elsewhere it changes
            # nothing, and kept waiting for a conversion it would never leave.
            if any(v.terms.lead_confirmation_required for v in self._versions(event.campaign_id)):
                batch.confirmations.append((event.campaign_id, event.order_id, event.event_id))
        elif isinstance(event, ClickRecorded | DecodedClick):
            if event.campaign_id not in self.directory:
                raise Rejected(f"campaign {event.campaign_id!r} has no terms")
            period = self._period(event.campaign_id, event.occurred_at)
            batch.clicks.append(ClickItem.of(event, period))
        elif isinstance(event, ContentPublished):
            self._place_publication(event, batch)
        elif isinstance(event, ContentStats | ContentReleased):
            key = key_of(event)
            route = self._routes.get(key)
            if route is None:
                raise Rejected(f"{UNKNOWN_CONTENT}: no ContentPublished for {key}")
            if isinstance(event, ContentReleased) and key in self._awaiting:
                self.remember_route(key, route, False)  # confirmed: fixed for good
                batch.content_reroutes[key] = [*route, False]
            batch.content.append((route[0], route[1], content_fact(event)))
        elif isinstance(event, PayoutIssued):
            # A payout this ledger recorded (it finds the record there), or one whose
            # record Redis lost: restored, so the next run does not pay it again. Checked
            # as a run would have made it: written straight to the topic, a negative
            # amount made the next run pay 50,010.00 on 10.00 approved, and an amount past
            # Redis's integers left a record without its paid total.
            self._check_payout(event)
            batch.payouts.append(payout_records.from_event(event))
        else:
            raise Rejected(f"unexpected event type {type(event).__name__}")

    def _check_payout(self, event: PayoutIssued) -> None:
        self._versions(event.campaign_id)  # Rejected for an unknown campaign
        currency = self.currency(event.campaign_id)
        if not 0 < event.amount_minor <= MAX_AMOUNT_MINOR:
            raise Rejected(f"payout amount_minor {event.amount_minor} out of range")
        if event.currency != currency:
            raise Rejected(
                f"payout in {event.currency} for campaign {event.campaign_id!r} paid in {currency}"
            )
        try:
            period_bounds(event.period)
        except BadPeriod as exc:
            raise Rejected(f"payout period {exc}") from None
        if event.payout_id != derived_id(
            "payout", event.affiliate_id, event.campaign_id, event.period
        ):
            raise Rejected("payout_id is not the id of its creator, campaign and period")

    def _place_publication(self, event: ContentPublished, batch: Batch) -> None:
        """A content lives in the period of its first publication; a later publication
        (a live stream's end) updates it there, but may not move it to another campaign
        or creator."""
        key = key_of(event)
        period = self._period(event.campaign_id, event.published_at)  # unknown campaigns
        route = self._routes.get(key)
        if route is None:
            route = (event.campaign_id, period, event.affiliate_id)
            by_creator = event.reported_by == "creator"
            self.remember_route(key, route, by_creator)
            batch.content_routes[key] = route
            if by_creator:
                batch.awaiting.add(key)
        elif (route[0], route[2]) != (event.campaign_id, event.affiliate_id):
            # The content's first publication is only the creator's word while it awaits
            # its release: the brand's publication takes it over.
            first_by = "creator" if key in self._awaiting else None
            if not takes_over(first_by, False, event.reported_by, route[0], event.campaign_id):
                raise Rejected(
                    f"{CONTENT_IDENTITY_CHANGED}: {key} was published for campaign"
                    f" {route[0]!r} by {route[2]!r}, not campaign {event.campaign_id!r} by"
                    f" {event.affiliate_id!r}"
                )
            batch.content.append((route[0], route[1], taken_over(key, event.event_id)))
            route = (event.campaign_id, period, event.affiliate_id)
            self.remember_route(key, route, False)
            batch.content_reroutes[key] = [*route, False]
        batch.content.append((route[0], route[1], content_fact(event)))

    def remember_route(self, key: str, route: tuple[str, str, str], awaiting: bool) -> None:
        if len(self._routes) >= CONTENT_ROUTES_MAX:
            self._routes.clear()  # bounded: read again from Redis when needed
            self._awaiting.clear()
        self._routes[key] = route
        if awaiting:
            self._awaiting.add(key)
        else:
            self._awaiting.discard(key)

    def knows_route(self, key: str) -> bool:
        return key in self._routes
