"""The ingestion pipeline, independent of HTTP: authenticate, check, claim, produce.

Routes hand raw bytes and headers in; this module calls the pure rules, the
Redis claims and the Kafka producer, and answers with an Outcome or raises
Rejected / Unavailable. An id is answered 202 only after the broker
acknowledged its event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from secrets import token_hex
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from afflux.orders import rules, signing
from afflux.orders.claims import ClaimStore, ConfirmClaim, NewOrder, RenewalClaim, SurveyClaim
from afflux.orders.coalesce import Coalescer
from afflux.orders.errors import Rejected, Unavailable, from_validation
from afflux.orders.marks import DoneMarks, MarkMetrics
from afflux.orders.merchant_secrets import MerchantSecrets
from afflux.orders.metrics import UNKNOWN, OrdersMetrics
from afflux.orders.placement import Placement, TimeLimits, event_time, place
from afflux.orders.publisher import Publisher
from afflux.shared.core.clock import Clock
from afflux.shared.core.duplicate_keys import first_duplicate_key, repeated_name_reason
from afflux.shared.core.event_time import BACKFILL_HEADERS, backfill_limit_ms
from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.products import ItemRefundPart
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import (
    Envelope,
    OrderPlaced,
    OrderRefunded,
    SubscriptionRenewed,
    SurveyAnswered,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import not_sent
from afflux.shared.topics import ORDERS, REFUNDS

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
_POLL_S = (0.01, 0.02, 0.05, 0.1, 0.2)
# Beyond the produce timeout, what a request may wait behind the batch in flight before it
# answers 503 (the batch's own Redis claim and produce fit in the timeout).
_QUEUE_MARGIN_S = 1.0
# The order-outcome index's OrderPlaced of (campaign, order id), if it holds one.
PlacedOnTopic = Callable[[str, str], Awaitable[OrderPlaced | None]]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Limits:
    skew_ms: int
    backfill_limit_days: int | None  # None: per campaign, longest window + longest lock
    tolerance_s: int
    produce_timeout_s: float
    pending_wait_s: float
    batches_in_flight: int | None = None  # None: a batch per event-loop turn, unbounded


def parse(model: type[M], raw: bytes | dict[str, Any] | object, prefix: str = "") -> M:
    """``raw`` read as ``model``; Rejected naming the field when it is not one.

    Bytes naming a field twice in one object are a 400 ``body`` first: the service's one
    check of repeated names, for every route (each parses its own body here)."""
    try:
        if isinstance(raw, bytes):
            duplicate = first_duplicate_key(raw)
            if duplicate is not None:
                raise Rejected(400, "body", repeated_name_reason(duplicate))
            return model.model_validate_json(raw)
        return model.model_validate(raw)
    except ValidationError as exc:
        raise from_validation(exc, prefix) from None


def new_order(event: OrderPlaced) -> NewOrder:
    """An order's idempotency claim: its id, partition key, amount, kind, terms and times."""
    key = order_partition_key(event.order_id, event.visitor_id, event.click_id)
    return NewOrder(
        event.campaign_id,
        event.order_id,
        key,
        event.amount_minor,
        event.kind,
        rules.order_terms(event),
        occurred_at=event.occurred_at,
        reported_occurred_at=event.reported_occurred_at,
        undated=event.undated,
    )


# A produce the broker did not answer in time may still be stored: only the same request
# tells (docs/orders.md, Errors).
UNSURE_ORDER = (
    "the broker did not acknowledge the event in time; it may still have recorded it: send"
    " the same order again (same order_id and facts) to learn: 202 or 200 duplicate"
)
UNSURE_RENEWAL = (
    "the broker did not acknowledge the renewal in time; it may still have recorded it: send"
    " the same renewal again (same renewal_order_id and facts) to learn: 202 or 200 duplicate"
)
UNSURE_REFUND = (
    "the broker did not acknowledge the refund in time; it may still have recorded it: send"
    " the same refund again (same refund_id and amount) to learn: 202 or 200 duplicate"
)


class Ingestor:
    """Composition of the service's parts; one per app."""

    def __init__(
        self,
        *,
        directory: CampaignDirectory,
        secrets: MerchantSecrets,
        claims: ClaimStore,
        publisher: Publisher,
        metrics: OrdersMetrics,
        clock: Clock,
        limits: Limits,
        placed_on_topic: PlacedOnTopic | None = None,
    ) -> None:
        """``placed_on_topic``: the order-outcome index, asked when a lead confirmation
        or survey answer finds its order's claim gone or expired pending."""
        self.directory = directory
        self.secrets = secrets
        self.claims = claims
        self.publisher = publisher
        self.metrics = metrics
        self.clock = clock
        self.limits = limits
        self._orders: Coalescer[tuple[NewOrder, OrderPlaced], str] = Coalescer(
            self._order_batch, max_in_flight=limits.batches_in_flight
        )
        # An operator's backfill: its records carry the backfill header, which lets the
        # attribution worker take times older than the backfill limit (core.event_time).
        self._backfills: Coalescer[tuple[NewOrder, OrderPlaced], str] = Coalescer(
            functools.partial(self._order_batch, headers=BACKFILL_HEADERS),
            max_in_flight=limits.batches_in_flight,
        )
        self._background: set[asyncio.Task[None]] = set()
        self._nobodys_secret = token_hex(32)
        self.marks = DoneMarks(claims, MarkMetrics(metrics.registry))
        self.placed_on_topic = placed_on_topic

    # -- authentication and terms -------------------------------------------------

    def merchant_secrets(
        self, merchant_id: str | None, field: str = signing.MERCHANT_HEADER
    ) -> tuple[str, ...]:
        if not merchant_id:
            raise Rejected(401, field, "missing merchant id")
        found = self.secrets.for_merchant(merchant_id)
        if not found:
            # Checked as any merchant's, under a secret nobody has: "unknown merchant"
            # told an unauthenticated caller which merchant ids exist. The same answer,
            # and the same HMAC work, as a wrong signature of a known merchant.
            return (self._nobodys_secret,)
        return found

    def authenticate(
        self,
        merchant_id: str | None,
        signature: str | None,
        body: bytes,
        signed: str = "the body",
    ) -> str:
        """The merchant whose secret signed ``body``, or Rejected (401); ``signed``: what the
        request signs, as a mismatch names it (a GET signs its request line)."""
        found = self.merchant_secrets(merchant_id)
        try:
            signing.verify(
                signature, body, found, self.clock() // 1000, self.limits.tolerance_s, signed=signed
            )
        except signing.SignatureRejected as exc:
            raise Rejected(401, exc.field, exc.reason) from None
        assert merchant_id is not None
        return merchant_id

    def authenticate_call(
        self, merchant_id: str | None, signature: str | None, request_line: bytes, body: bytes
    ) -> str:
        """As ``authenticate`` for a POST whose path names its order: the signature covers
        ``request_line``, a newline and ``body``, so it cannot be replayed on another order."""
        found = self.merchant_secrets(merchant_id)
        message = request_line + b"\n" + body
        try:
            signing.verify(
                signature,
                message,
                found,
                self.clock() // 1000,
                self.limits.tolerance_s,
                signed="the request line and the body",
            )
        except signing.SignatureRejected as exc:
            reason = exc.reason
            if exc.field == signing.SIGNATURE_HEADER and signing.signs_only(signature, body, found):
                reason = (
                    "signed over the body alone: this route signs"
                    f' "<t>.{request_line.decode(errors="replace")}\\n<raw body>"'
                    " (docs/orders.md#authentication)"
                )
            raise Rejected(401, exc.field, reason) from None
        assert merchant_id is not None
        return merchant_id

    def authenticate_query(self, raw_query: str, merchant_id: str | None, t: str | None) -> str:
        found = self.merchant_secrets(merchant_id, "merchant")
        if not t or not t.isdigit():
            raise Rejected(401, "t", "missing or not unix seconds")
        try:
            signing.verify_query(
                raw_query, int(t), found, self.clock() // 1000, self.limits.tolerance_s
            )
        except signing.SignatureRejected as exc:
            raise Rejected(401, exc.field, exc.reason) from None
        assert merchant_id is not None
        return merchant_id

    def check_campaign(self, campaign_id: str, merchant_id: str | None) -> None:
        """Rejected as an unknown campaign unless the service knows ``campaign_id`` and one
        of its versions names ``merchant_id`` (None: an admin's backfill, for whichever
        merchant). Checked before anything else of the campaign decides an answer (its
        backfill limit, currency, lead confirmation), so another merchant's campaign
        answers exactly as one that does not exist: its id cannot be probed."""
        if campaign_id not in self.directory:
            raise rules.unknown_campaign()
        versions = self.directory.versions(campaign_id)
        if merchant_id is not None and all(v.terms.merchant_id != merchant_id for v in versions):
            raise rules.unknown_campaign()

    def terms(self, campaign_id: str, at_ms: int) -> CampaignTerms:
        if campaign_id not in self.directory:
            raise rules.unknown_campaign()
        return self.directory.at(campaign_id, at_ms).terms

    def label(self, campaign_id: str | None, merchant_id: str | None) -> str:
        """A bounded metric label: configured campaigns by id, anything else 'unknown',
        another merchant's campaign too (``merchant_id`` None: an admin's call). Counted
        under that campaign, a merchant's calls to another's fired the rejected-orders
        alert against the other merchant, whose integration was fine."""
        if not campaign_id or campaign_id not in self.directory:
            return UNKNOWN
        versions = self.directory.versions(campaign_id)
        if merchant_id is not None and all(v.terms.merchant_id != merchant_id for v in versions):
            return UNKNOWN
        return campaign_id

    # -- orders ---------------------------------------------------------------------

    def place(
        self,
        campaign_id: str,
        reported: int,
        *,
        backfill: bool,
        what: str,
        signed_at_ms: int | None = None,
    ) -> Placement:
        """The event time to produce for a merchant's time (docs/orders.md, Event time);
        ``signed_at_ms``: the request's signature timestamp, by the merchant's clock."""
        if campaign_id not in self.directory:
            raise rules.unknown_campaign()
        now = self.clock()
        # The limit in force at the time produced, which the attribution worker checks.
        at = reported if backfill else event_time(reported, now, self.limits.skew_ms, signed_at_ms)
        limit = backfill_limit_ms(
            self.directory.versions(campaign_id), self.limits.backfill_limit_days, at=at
        )
        limits = TimeLimits(self.limits.skew_ms, limit)
        return place(reported, now, limits, backfill=backfill, what=what, signed_at_ms=signed_at_ms)

    def check_order(
        self,
        merchant_id: str | None,
        request: rules.OrderRequest,
        *,
        backfill: bool = False,
        signed_at_ms: int | None = None,
        undated: bool = False,
    ) -> OrderPlaced:
        """``merchant_id`` None: an admin backfill, sent for the campaign's own merchant.
        ``undated``: the merchant sent no time and ``request.occurred_at`` is the receive
        time, not one of the merchant's clock to compare its refunds' times with."""
        self.check_campaign(request.campaign_id, merchant_id)
        placed = self.place(
            request.campaign_id,
            request.occurred_at,
            backfill=backfill,
            what="orders",
            signed_at_ms=signed_at_ms,
        )
        if undated:
            placed = Placement(placed.occurred_at, undated=True)
        terms = self.terms(request.campaign_id, placed.occurred_at)
        return rules.order_event(request, terms, merchant_id or terms.merchant_id, placed)

    async def order(
        self,
        merchant_id: str | None,
        raw: bytes | dict[str, Any],
        *,
        backfill: bool = False,
        signed_at_ms: int | None = None,
        undated: bool = False,
    ) -> Outcome:
        """One order: 202 accepted, 200 duplicate, or Rejected / Unavailable;
        ``signed_at_ms``: its request's signature timestamp (``placement.place``);
        ``undated``: dated at its receive time, the merchant having sent no time."""
        campaign, kind = UNKNOWN, UNKNOWN
        try:
            request = parse(rules.OrderRequest, raw)
            campaign = self.label(request.campaign_id, merchant_id)
            kind = request.kind if campaign != UNKNOWN else UNKNOWN
            event = self.check_order(
                merchant_id, request, backfill=backfill, signed_at_ms=signed_at_ms, undated=undated
            )
            status = await self.ingest_order(event, backfill=backfill)
        except Unavailable:
            self.metrics.order(campaign, kind, "unavailable")
            raise
        except Rejected:
            self.metrics.order(campaign, kind, "rejected")
            raise
        self.metrics.order(campaign, kind, status)
        return Outcome(
            202 if status == "accepted" else 200,
            {"status": status, "order_id": event.order_id, "event_id": event.event_id},
        )

    async def batch(
        self,
        merchant_id: str | None,
        items: Sequence[object],
        *,
        backfill: bool = False,
        signed_at_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        """Each order of a batch on its own: accepted, duplicate, rejected or unavailable."""

        def one(item: dict[str, Any]) -> Awaitable[Outcome]:
            return self.order(merchant_id, item, backfill=backfill, signed_at_ms=signed_at_ms)

        return await self._per_order("orders", items, one)

    async def backfill_refunds(self, items: Sequence[object]) -> list[dict[str, Any]]:
        """An admin backfill of refunds, each judged on its own like a batch of orders."""

        def one(item: dict[str, Any]) -> Awaitable[Outcome]:
            return self.refund(None, item, backfill=True)

        return await self._per_order("refunds", items, one)

    async def _per_order(
        self,
        name: str,
        items: Sequence[object],
        run: Callable[[dict[str, Any]], Awaitable[Outcome]],
    ) -> list[dict[str, Any]]:
        """The items' results in their order: the items of one order (campaign and order
        id) one after the other in the batch's order, different orders at once. Run all
        at once, a refund naming items (one Redis round trip more before it claims its
        order's refund room) lost that room to any later refund of the order without
        items, every time; and of two copies of an order, either could be the one taken."""
        lanes: dict[object, list[int]] = {}
        for index, item in enumerate(items):
            lanes.setdefault(_order_of(item) or index, []).append(index)
        results: list[dict[str, Any]] = [{} for _ in items]

        async def lane(indexes: list[int]) -> None:
            for index in indexes:
                results[index] = await self._batch_item(name, index, items[index], run)

        await asyncio.gather(*(lane(indexes) for indexes in lanes.values()))
        return results

    async def _batch_item(
        self,
        name: str,
        index: int,
        item: object,
        run: Callable[[dict[str, Any]], Awaitable[Outcome]],
    ) -> dict[str, Any]:
        id_field = "order_id" if name == "orders" else "refund_id"
        item_id = item.get(id_field) if isinstance(item, dict) else None
        result: dict[str, Any] = {"index": index, id_field: item_id}
        try:
            if not isinstance(item, dict):
                raise Rejected(422, f"{name}.{index}", "expected a JSON object")
            try:
                outcome = await run(item)
            except Rejected as exc:
                if exc.field and exc.status != 503:
                    exc.field = f"{name}.{index}.{exc.field}"
                raise
        except Unavailable as exc:
            return result | {"status": "unavailable", "error": exc.problem()}
        except Rejected as exc:
            return result | {"status": "rejected", "error": exc.problem()}
        return result | outcome.body

    async def ingest_order(
        self, event: OrderPlaced, *, backfill: bool = False
    ) -> Literal["accepted", "duplicate"]:
        """``backfill``: an operator's, produced with the backfill header."""
        claim = new_order(event)
        orders = self._backfills if backfill else self._orders
        try:
            status = await self._submitted(orders, orders.submit((claim, event)))
        except Unavailable:
            raise
        except Exception as exc:
            raise Unavailable(f"idempotency store unavailable: {type(exc).__name__}") from None
        if status == "pending":  # the same id in flight in another request: wait for it
            status = await self._settled(lambda: self._guard(orders.submit((claim, event))))
        if status == "unsent":
            raise Unavailable("the broker could not be reached; nothing was accepted, retry")
        if status == "unavailable":
            raise Unavailable(UNSURE_ORDER, maybe_stored=True)
        if status == "unsure_conflict":
            kept = await self._guard(self.claims.accepted_terms(event.campaign_id, event.order_id))
            raise rules.unsure_order_conflict(kept or "[]", event)
        if status == "conflict":  # the id was accepted with other terms: never "duplicate"
            kept = await self._guard(self.claims.accepted_terms(event.campaign_id, event.order_id))
            refused = rules.order_terms_conflict(kept or "[]", event)
            if refused is not None:
                raise refused
        if status == "renewal":  # only the renewal was produced: a "duplicate" drops the order
            first = await self._guard(self.claims.renewed_order(event.campaign_id, event.order_id))
            renewal = "a renewal_order_id" if first is None else f"a renewal of order {first}"
            raise Rejected(
                409,
                "order_id",
                f"{event.order_id} was already accepted as {renewal}; an order needs its own"
                " order_id",
            )
        return "accepted" if status == "accepted" else "duplicate"

    async def _order_batch(
        self,
        items: Sequence[tuple[NewOrder, OrderPlaced]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> list[str]:
        """Claim every order of the batch, produce the claimed ones (with ``headers``),
        settle the claims.

        One Redis call and one packed record per partition for all the requests
        that arrived in the same event-loop turn, or while the batches in flight ran;
        each caller is woken once its event is acknowledged.
        """
        statuses: list[str] = list(
            await self.claims.reserve_orders([claim for claim, _ in items], self.clock())
        )
        claimed = [i for i, status in enumerate(statuses) if status == "reserved"]
        if not claimed:
            return statuses
        try:
            errors: list[Exception | None] = list(
                await self.publisher.publish_many(
                    ORDERS.name,
                    [(items[i][0].partition_key, items[i][1]) for i in claimed],
                    headers=headers,
                )
            )
        except Exception as exc:  # e.g. no partition count: the broker went before we knew it
            errors = [exc] * len(claimed)
        done: list[NewOrder] = []
        failed: list[tuple[str, str]] = []
        unsent: list[tuple[str, str]] = []
        for index, error in zip(claimed, errors, strict=True):
            claim = items[index][0]
            if error:
                (unsent if not_sent(error) else failed).append((claim.campaign_id, claim.order_id))
                statuses[index] = "unsent" if not_sent(error) else "unavailable"
            else:
                done.append(claim)
                statuses[index] = "accepted"
        if unsent:  # never left the producer: released, so a retry with any facts is taken
            with contextlib.suppress(Exception):
                await self.claims.release_orders(unsent)
        if failed:
            # Not released: a produce the broker did not answer may still be stored (it
            # took the request and stalled), and a copy with other facts accepted beside
            # it was paid on the copy first on the topic. The same facts are taken again.
            with contextlib.suppress(Exception):
                await self.claims.unsure_orders(failed)
        if done:
            # Not awaited: the events are acknowledged; a duplicate or confirmation
            # arriving before the mark lands waits for it; if Redis refuses the mark it
            # is retried until Redis answers (afflux.orders.marks).
            task = asyncio.get_running_loop().create_task(self.marks.mark(done))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return statuses

    # -- shared steps -------------------------------------------------------------

    async def _submitted(
        self, orders: Coalescer[tuple[NewOrder, OrderPlaced], str], waiter: asyncio.Future[str]
    ) -> str:
        """The order's batch result. An order still queued behind a batch the broker does
        not answer when its own produce timeout (from its arrival) passes is taken off the
        queue, never claimed or produced, and answered 503: it waited for that batch's
        timeout and then its own, twice as long. One whose batch has started waits for it
        (it may be produced: a 503 then would be wrong)."""
        try:
            async with asyncio.timeout(self.limits.produce_timeout_s + _QUEUE_MARGIN_S):
                return await asyncio.shield(waiter)
        except TimeoutError:
            if waiter.done() or orders.started(waiter):
                return await waiter
            waiter.cancel()
            raise Unavailable("the broker did not acknowledge the event in time; retry") from None

    async def _guard(self, pending: Awaitable[Any]) -> Any:
        try:
            return await pending
        except Exception as exc:
            raise Unavailable(f"idempotency store unavailable: {type(exc).__name__}") from None

    async def _settled(self, attempt: Callable[[], Awaitable[Any]]) -> Any:
        """Run a claim attempt until it is not 'pending' (another request's claim in flight)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.pending_wait_s
        for round_ in range(10_000):
            result = await attempt()
            status = result if isinstance(result, str) else result.status
            if status != "pending":
                return result
            if loop.time() >= deadline:
                break
            await asyncio.sleep(_POLL_S[min(round_, len(_POLL_S) - 1)])
        raise Unavailable("the same id is being processed by another request; retry")

    async def _acknowledged(self, campaign_id: str, order_id: str) -> bool:
        """Whether an order whose claim reads as unknown (gone, or expired pending) was
        acknowledged by the broker after all; its claim is then marked done. Known from
        the done marks waiting for Redis in this process, else from the order-outcome
        index, which holds only events the broker acknowledged."""
        if await self._guard(self.marks.retry_now(campaign_id, order_id)):
            return True
        if self.placed_on_topic is None:
            return False
        placed = await self._guard(self.placed_on_topic(campaign_id, order_id))
        if placed is None:
            return False
        await self._guard(self.claims.mark_done([new_order(placed)]))
        return True

    async def produce(
        self, topic: str, key: str, event: Envelope, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Send and wait for the broker's acknowledgement, or raise Unavailable."""
        try:
            await self.publisher.publish(topic, key, event, headers=headers)
        except Exception as exc:
            raise Unavailable(
                f"broker did not acknowledge: {type(exc).__name__}", maybe_stored=not not_sent(exc)
            ) from None

    # -- refunds and lead confirmations ----------------------------------------------

    async def refund(
        self,
        merchant_id: str | None,
        raw: bytes | dict[str, Any],
        *,
        backfill: bool = False,
        signed_at_ms: int | None = None,
    ) -> Outcome:
        """One refund; ``merchant_id`` None: an admin backfill for the campaign's merchant."""
        campaign = UNKNOWN
        try:
            request = parse(rules.RefundRequest, raw)
            campaign = self.label(request.campaign_id, merchant_id)
            self.check_campaign(request.campaign_id, merchant_id)
            placed = self.place(
                request.campaign_id,
                request.occurred_at,
                backfill=backfill,
                what="refunds",
                signed_at_ms=signed_at_ms,
            )
            terms = self.terms(request.campaign_id, placed.occurred_at)
            largest = max(
                v.terms.max_order_minor for v in self.directory.versions(request.campaign_id)
            )
            event = rules.refund_event(
                request,
                terms,
                merchant_id or terms.merchant_id,
                placed,
                largest_order_minor=largest,
            )
            parts: tuple[ItemRefundPart, ...] = ()
            if event.items:
                kept = await self._guard(
                    self.claims.accepted_terms(event.campaign_id, event.order_id)
                )
                if kept is not None:
                    order_items = rules.accepted_items(kept)
                    try:
                        rules.check_refund_items_value(event, *order_items)
                        parts = rules.refund_item_parts(event, *order_items)
                    except Rejected:
                        # A refund a version before these rules accepted, sent again, is
                        # answered as before (duplicate), not refused after the fact.
                        known = self.claims.refund_known(event.campaign_id, event.refund_id)
                        if not await self._guard(known):
                            raise
            status = await self._ingest_refund(event, backfill=backfill, item_parts=parts)
        except Unavailable:
            self.metrics.refund(campaign, "unavailable")
            raise
        except Rejected:
            self.metrics.refund(campaign, "rejected")
            raise
        self.metrics.refund(campaign, status)
        return Outcome(
            202 if status == "accepted" else 200,
            {"status": status, "refund_id": event.refund_id, "event_id": event.event_id},
        )

    async def _ingest_refund(
        self,
        event: OrderRefunded,
        *,
        backfill: bool = False,
        item_parts: Sequence[ItemRefundPart] = (),
    ) -> Literal["accepted", "duplicate"]:
        ids = (event.campaign_id, event.order_id, event.refund_id)
        at = event.occurred_at
        sent_at = at if event.reported_occurred_at is None else event.reported_occurred_at
        claim = await self._settled(
            lambda: self._guard(
                self.claims.reserve_refund(
                    *ids,
                    event.amount_minor,
                    self.clock(),
                    occurred_at=at,
                    reported_at=sent_at,
                    item_parts=item_parts,
                )
            )
        )
        if claim.status == "duplicate":
            return "duplicate"
        if claim.status == "before_order":
            assert claim.order_at is not None
            raise rules.refund_before_order(claim.order_at)
        if claim.status == "conflict":
            raise Rejected(
                409, "refund_id", "already used by a refund of another order of this campaign"
            )
        if claim.status == "unsure_conflict":
            raise Rejected(
                409,
                "refund_id" if claim.unsure_order != event.order_id else "amount_minor",
                f"refund {event.refund_id} was sent before (order {claim.unsure_order},"
                f" amount_minor {claim.remaining_minor}) and the broker did not acknowledge it"
                " in time: it may have been recorded. Send that same refund again to learn, or"
                " a new refund_id",
            )
        if claim.status == "amount_conflict":  # another refund reusing the id: not a duplicate
            raise Rejected(
                409,
                "amount_minor",
                f"refund {event.refund_id} of this order was already accepted with amount_minor"
                f" {claim.remaining_minor}; a further refund needs a new refund_id",
            )
        if claim.status == "too_many":
            raise Rejected(
                422,
                "order_id",
                f"order {event.order_id} has {claim.remaining_minor} refunds already, the most"
                " one order takes: send what is left to refund of it as one refund",
            )
        if claim.status == "item_exceeds":
            raise rules.item_refunded_beyond(claim)
        if claim.status == "exceeds":
            left = claim.remaining_minor or 0
            # Refunds accepted before their order was known may already ask more than it.
            over = (
                f" (refunds accepted before the order ask {-left} more than it)" if left < 0 else ""
            )
            raise Rejected(
                422,
                "amount_minor",
                f"cumulative refunds would exceed the order amount: "
                f"{max(left, 0)} left to refund{over}",
            )
        if claim.order_at is not None:
            # After its order by the merchant's clock, before it on the event-time axis:
            # at the order's own time (docs/orders.md, Refunds), the merchant's kept.
            event = event.model_copy(
                update={"occurred_at": claim.order_at, "reported_occurred_at": sent_at}
            )
        try:
            headers = BACKFILL_HEADERS if backfill else ()
            await self.produce(REFUNDS.name, event.order_id, event, headers)
        except Unavailable as exc:
            with contextlib.suppress(Exception):  # if it may be stored: the same refund alone
                await self.claims.settle_refund(
                    *ids, event.amount_minor, done=False, unsure=exc.maybe_stored
                )
            if not exc.maybe_stored:
                raise
            raise Unavailable(f"{UNSURE_REFUND} ({exc.reason})", maybe_stored=True) from None
        with contextlib.suppress(Exception):
            await self.claims.settle_refund(*ids, event.amount_minor, done=True)
        return "accepted"

    # -- subscription renewals ------------------------------------------------------

    async def renewal(
        self, merchant_id: str, raw: bytes, *, signed_at_ms: int | None = None
    ) -> Outcome:
        """One renewal: claimed as an order of its own (its renewal order id, so refunds
        find it), produced on the refunds topic keyed by the first order's id."""
        campaign = UNKNOWN
        try:
            request = parse(rules.RenewalRequest, raw)
            campaign = self.label(request.campaign_id, merchant_id)
            self.check_campaign(request.campaign_id, merchant_id)
            placed = self.place(
                request.campaign_id,
                request.occurred_at,
                backfill=False,
                what="renewals",
                signed_at_ms=signed_at_ms,
            )
            terms = self.terms(request.campaign_id, placed.occurred_at)
            event = rules.renewal_event(request, terms, merchant_id, placed)
            status = await self._ingest_renewal(event)
        except Unavailable:
            self.metrics.order(campaign, "renewal", "unavailable")
            raise
        except Rejected:
            self.metrics.order(campaign, "renewal", "rejected")
            raise
        self.metrics.order(campaign, "renewal", status)
        return Outcome(
            202 if status == "accepted" else 200,
            {
                "status": status,
                "order_id": event.order_id,
                "renewal_order_id": event.renewal_order_id,
                "event_id": event.event_id,
            },
        )

    async def _ingest_renewal(self, event: SubscriptionRenewed) -> Literal["accepted", "duplicate"]:
        claim = NewOrder(
            event.campaign_id,
            event.renewal_order_id,
            event.order_id,
            event.amount_minor,
            "renewal",
            renewal_number=event.renewal_number,
            currency=event.currency,
            occurred_at=event.occurred_at,
            reported_occurred_at=event.reported_occurred_at,
        )
        number = event.renewal_number

        async def reserve() -> RenewalClaim:
            claimed: RenewalClaim = await self._guard(
                self.claims.reserve_renewal(claim, self.clock())
            )
            return claimed

        claimed: RenewalClaim = await self._settled(reserve)
        if claimed.status == "number_taken":
            raise Rejected(
                409,
                "renewal_number",
                f"renewal {number} of order {event.order_id} is already reported as"
                f" {claimed.taken_by}",
            )
        if claimed.status == "first_is_renewal":
            raise Rejected(
                422,
                "order_id",
                f"{event.order_id} is a renewal: name its subscription's first order",
            )
        if claimed.status == "order_taken":
            taken = (
                f"is already an order of the campaign that is not a renewal of {event.order_id}"
                if claimed.taken_by is None
                else f"was already accepted as a renewal of order {claimed.taken_by}, not of"
                f" {event.order_id}"
            )
            raise Rejected(409, "renewal_order_id", f"{event.renewal_order_id} {taken}")
        if claimed.status == "conflict":  # another renewal or amount: never "duplicate"
            assert claimed.field is not None
            raise Rejected(
                409,
                claimed.field,
                f"renewal {event.renewal_order_id} was already accepted with {claimed.field}"
                f" {json.dumps(claimed.recorded)}; a renewal order id is accepted once, so"
                " another renewal needs its own renewal_order_id (a smaller amount: a refund of"
                " this one)",
            )
        if claimed.status == "unsure":
            assert claimed.field is not None
            raise Rejected(
                409,
                claimed.field,
                f"renewal {event.renewal_order_id} was sent before with {claimed.field}"
                f" {json.dumps(claimed.recorded)} and the broker did not acknowledge it in time:"
                " it may have been recorded. Send that same renewal again to learn, or a new"
                " renewal_order_id",
            )
        if claimed.status == "duplicate":
            return "duplicate"
        try:
            await self.produce(REFUNDS.name, event.order_id, event)
        except Unavailable as exc:
            with contextlib.suppress(Exception):  # if it may be stored: the same renewal alone
                if exc.maybe_stored:
                    await self.claims.unsure_renewal(claim)
                else:
                    await self.claims.release_renewal(claim)
            if not exc.maybe_stored:
                raise
            raise Unavailable(f"{UNSURE_RENEWAL} ({exc.reason})", maybe_stored=True) from None
        await self.marks.mark([claim])
        return "accepted"

    async def confirm_lead(self, merchant_id: str, order_id: str, raw: bytes) -> Outcome:
        campaign = UNKNOWN
        try:
            rules.path_order_id(order_id)
            request = parse(rules.LeadConfirmRequest, raw)
            campaign = self.label(request.campaign_id, merchant_id)
            self.check_campaign(request.campaign_id, merchant_id)
            now = self.clock()
            terms = self.terms(request.campaign_id, request.occurred_at or now)
            event = rules.lead_confirmed_event(
                order_id, request, terms, merchant_id, now, self.limits.skew_ms
            )
            # Payouts pays a lead by the terms in force at the lead's time, which may be an
            # earlier version than now's: any version requiring confirmation may need it.
            versions = self.directory.versions(request.campaign_id)
            if not any(v.terms.lead_confirmation_required for v in versions):
                raise Rejected(409, "campaign_id", "campaign does not require lead confirmation")
            status = await self._ingest_confirm(event.campaign_id, order_id, event)
        except Unavailable:
            self.metrics.order(campaign, "lead", "unavailable")
            raise
        except Rejected:
            self.metrics.order(campaign, "lead", "rejected")
            raise
        outcome = "confirmed" if status == "accepted" else "duplicate"
        self.metrics.order(campaign, "lead", outcome)
        return Outcome(
            202 if status == "accepted" else 200,
            {"status": status, "order_id": order_id, "event_id": event.event_id},
        )

    async def survey(self, merchant_id: str, order_id: str, raw: bytes) -> Outcome:
        """A survey answer for a known order (``POST /v1/orders/{order_id}/survey``): 202
        accepted, 200 the same answer again; 404 unknown order, 409 another answer or an id
        that is a renewal's, not an order's."""
        campaign = UNKNOWN
        try:
            rules.path_order_id(order_id)
            request = parse(rules.SurveyRequest, raw)
            campaign = self.label(request.campaign_id, merchant_id)
            self.check_campaign(request.campaign_id, merchant_id)
            now = self.clock()
            terms = self.terms(request.campaign_id, now)
            event = rules.survey_event(order_id, request, terms, merchant_id, now)
            status = await self._ingest_survey(order_id, event)
        except Unavailable:
            self.metrics.order(campaign, "survey", "unavailable")
            raise
        except Rejected:
            self.metrics.order(campaign, "survey", "rejected")
            raise
        self.metrics.order(campaign, "survey", "answered" if status == "accepted" else status)
        return Outcome(
            202 if status == "accepted" else 200,
            {"status": status, "order_id": order_id, "event_id": event.event_id},
        )

    async def _ingest_survey(
        self, order_id: str, event: SurveyAnswered
    ) -> Literal["accepted", "duplicate"]:
        campaign_id = event.campaign_id
        answer = event.answer.model_dump_json()

        async def reserve() -> SurveyClaim:
            claimed: SurveyClaim = await self._settled(
                lambda: self._guard(
                    self.claims.reserve_survey(campaign_id, order_id, answer, self.clock())
                )
            )
            return claimed

        claim = await reserve()
        if claim.status == "unknown" and await self._acknowledged(campaign_id, order_id):
            claim = await reserve()
        if claim.status == "duplicate":
            return "duplicate"
        if claim.status == "unknown":
            raise Rejected(404, "order_id", "no such order in this campaign")
        if claim.status == "conflict":
            raise Rejected(409, "order_id", "the order already has another survey answer")
        if claim.status == "renewal":
            raise Rejected(
                409,
                "order_id",
                f"{order_id} was accepted as a renewal of order {claim.partition_key}, not as an"
                " order: a survey answer names an order",
            )
        try:  # keyed as its order: it must reach the partition holding the order's state
            await self.produce(ORDERS.name, claim.partition_key or order_id, event)
        except Unavailable:
            with contextlib.suppress(Exception):
                await self.claims.settle_survey(campaign_id, order_id, done=False)
            raise
        with contextlib.suppress(Exception):
            await self.claims.settle_survey(campaign_id, order_id, done=True)
        return "accepted"

    async def _ingest_confirm(
        self, campaign_id: str, order_id: str, event: Envelope
    ) -> Literal["accepted", "duplicate"]:
        async def reserve() -> ConfirmClaim:
            claimed: ConfirmClaim = await self._settled(
                lambda: self._guard(
                    self.claims.reserve_confirm(campaign_id, order_id, self.clock())
                )
            )
            return claimed

        claim = await reserve()
        if claim.status == "unknown" and await self._acknowledged(campaign_id, order_id):
            claim = await reserve()
        if claim.status == "duplicate":
            return "duplicate"
        if claim.status == "unknown":
            raise Rejected(404, "order_id", "no such order in this campaign")
        if claim.status == "not_lead":
            raise Rejected(409, "order_id", "order is not a lead")
        try:
            await self.produce(ORDERS.name, claim.partition_key or order_id, event)
        except Unavailable:
            with contextlib.suppress(Exception):
                await self.claims.settle_confirm(campaign_id, order_id, done=False)
            raise
        with contextlib.suppress(Exception):
            await self.claims.settle_confirm(campaign_id, order_id, done=True)
        return "accepted"


def _order_of(item: object) -> tuple[str, str] | None:
    """The (campaign, order id) a batch item names; None when it names none."""
    if not isinstance(item, dict):
        return None
    campaign, order = item.get("campaign_id"), item.get("order_id")
    if isinstance(campaign, str) and isinstance(order, str):
        return campaign, order
    return None
