"""Stage 2: refunds against order outcomes, for one partition (keyed by order id).

Consumes the join's own outputs (conversions, unmatched orders) beside the
refunds. A refund of a converted order becomes a reversal, capped so the
order's cumulative refunds never exceed its amount (applied in arrival
order); a refund of an unattributed order, or of an order whose outcome does
not arrive within the wait, becomes a RefundUnmatched.

A correction from the join (a conversion that ``supersedes`` the order's
current one, or that attributes an order that was unattributed) reverses the
whole remaining amount of the superseded conversion (reason ``reattributed``)
and applies every refund settled so far, in the order it was settled, to the
new conversion, including refunds that went unmatched while the order was
unattributed.

A subscription's renewal (keyed by its first order's id) is settled here the same way
as a refund: once the first order's outcome is known it becomes the renewal's conversion
or an unattributed renewal (``renewals``); one whose first order's outcome does not
arrive within the wait is unattributed with reason ``first_order_unknown``.

The renewal rules ``POST /v1/renewals`` claims in Redis hold here too, for renewals written
straight to the topic (``core.renewals``): the order's record keeps which renewal numbers
are taken, per campaign, and by which renewal order id, so another renewal order with a
taken number is unattributed as ``renewal_number_taken`` when it arrives (the first the
key delivers keeps the number, the same on every replay); and whether the order is itself
a renewal (its outcome, read back, is of kind ``renewal``), so a renewal of it is
unattributed as ``first_order_is_renewal``.

A renewal whose renewal order id is another order's (written straight to the topic) is
void, whichever outcome this key reads first: an order id is its order's. Its first
order's key, which cannot see that order, may have paid it; its conversion (an id of its
own, never the order's) is then reversed whole here, at the renewal's own time
(``outputs.voided``), the refunds it took are applied to the order's outcome, and the
order's own renewals refused because it looked like a renewal order are decided again.

A refund is held to its order's currency where it meets the order's outcome: one in
another currency than the order's (written straight to the topic: the orders service
takes only the campaign's) is refused, dead-lettered with reason ``currency_mismatch``,
and changes nothing: the order's outcome, what was refunded of it and the refund id stay
as they were, so the order's later refunds (that id too, sent again in the right
currency) are applied as usual. Read after the outcome, it is refused with its record;
one that waited is refused when the outcome arrives (a dead letter of no record, like a
decision that raised); one that expired waiting (answered ``order_unknown``, the
currency then unknown) is refused when the outcome arrives after all, and never
applied. The currency is checked before the refund id: a copy in another currency of a
refund taken is refused the same, whichever of the two came first. The oracle and the
what-if leave the same refunds out.

Neither expiry is final: a broker outage or a stalled join can hold an order's outcome
past the wait while its refunds keep arriving. A refund that expired is kept among the
settled ones and applied, in the order it was settled, when the outcome does arrive; a
renewal that expired is decided then (a conversion of its renewal order, which outranks
the earlier unattributed answer everywhere it is read), as the oracle decides both.

An order's record is kept until its latest event is older than the retention
behind the partition's event-time watermark (the same retention as decided
orders in the join); a refund for a forgotten order is then unknown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from afflux.attribution.outputs import (
    Converted,
    SettledRefund,
    reattributed,
    refund_unmatched,
    reversal,
    voided,
)
from afflux.attribution.renewals import (
    FIRST_ORDER_UNATTRIBUTED,
    FIRST_ORDER_UNKNOWN,
    decide,
    renewal_ident,
    unattributed,
)
from afflux.attribution.store import Sweep
from afflux.shared.core.attribution import capped_refund, correction_id
from afflux.shared.core.currency import CURRENCY_MISMATCH, other_currency, refund_currency_refusal
from afflux.shared.core.renewals import first_order_refusal, renewal_claim
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import (
    ConversionAttributed,
    OrderRefunded,
    OrderUnattributed,
    SubscriptionRenewed,
)
from afflux.shared.topics import REVERSALS, UNMATCHED
from afflux.shared.wire import compact_json_bytes

from .join import CONFLICTING_DUPLICATE, WATERMARK_KEY, Failed, Output, Refused

Waiting = OrderRefunded | SubscriptionRenewed
TermsAt = Callable[[str, int], TermsVersion | None]  # campaign, event time -> terms in force


@dataclass(slots=True)
class OrderLedger:
    converted: dict[str, Converted] = field(default_factory=dict)  # campaign -> conversion
    unattributed: set[str] = field(default_factory=set)  # campaigns
    refunded: dict[str, int] = field(default_factory=dict)  # campaign -> applied so far
    done: set[tuple[str, str]] = field(default_factory=set)  # (campaign, refund id)
    waiting: list[tuple[Waiting, int]] = field(default_factory=list)
    settled: list[SettledRefund] = field(default_factory=list)  # matched or unattributed
    last_at: int = 0  # latest event time of the order's outcome or refunds
    won_by: dict[str, str] = field(default_factory=dict)  # campaign -> the conversion's reason
    # Renewals that follow the order's winner: each with its current conversion id (None:
    # unattributed because the order was), re-decided when a correction moves the order.
    renewals: list[tuple[SubscriptionRenewed, str | None]] = field(default_factory=list)
    # Renewals unattributed as ``first_order_unknown``: decided when the outcome arrives.
    orphans: list[SubscriptionRenewed] = field(default_factory=list)
    # campaign -> renewal number -> the renewal order id that took it (at most
    # ``MAX_RENEWAL_NUMBERS`` per campaign).
    numbers: dict[str, dict[int, str]] = field(default_factory=dict)
    # Campaigns under which this order is itself a renewal (its outcome is of kind renewal).
    renewal_of: set[str] = field(default_factory=set)
    # Renewals of this order refused as ``first_order_is_renewal``: decided again if the
    # renewal outcome that made it one gives way to the order's own.
    held_as_renewal: list[SubscriptionRenewed] = field(default_factory=list)
    # campaign -> the currency of the order's unattributed outcome (a conversion carries
    # its own): what its refunds are held to.
    currencies: dict[str, str] = field(default_factory=dict)
    # Refunds answered ``order_unknown`` whose every copy the order's currency refused:
    # their ids are free again, and that answer stands (one event per id).
    answered: set[tuple[str, str]] = field(default_factory=set)


class RefundPartition:
    def __init__(
        self, keys: MutableMapping[str, OrderLedger] | None = None, terms: TermsAt | None = None
    ) -> None:
        # Per-key state: a dict, or the disk store's keys (store.py).
        self.keys: MutableMapping[str, OrderLedger] = {} if keys is None else keys
        self.sweep = Sweep()  # which keys the next pruning pass visits
        self.terms: TermsAt = terms if terms is not None else (lambda campaign, at: None)
        self.dirty: set[str] = set()
        self.waiting: set[str] = set()
        self.watermark = 0  # largest event time seen
        self.failed: list[Failed] = []  # refunds whose settling raised, to dead-letter

    def _ledger(self, key: str, at: int) -> OrderLedger:
        return self._touched(key, self.keys.get(key), at)

    def _touched(self, key: str, found: OrderLedger | None, at: int) -> OrderLedger:
        """The key's ledger (``found``: what a lookup of it just gave, not read again: with
        the disk store a key without a ledger is a disk read each time), made if it has
        none, with an event at ``at`` seen and marked changed."""
        ledger = found
        if ledger is None:
            ledger = self.keys[key] = OrderLedger()
        ledger.last_at = max(ledger.last_at, at)
        self.watermark = max(self.watermark, at)
        self.dirty.add(key)
        return ledger

    def conversion(self, key: str, c: ConversionAttributed) -> list[Output]:
        ledger = self._ledger(key, max(c.occurred_at, c.corrected_at or 0))
        campaign = c.campaign_id
        out: list[Output] = []
        if c.kind == "renewal":
            if _is_order(ledger, campaign):  # the order id is an order's: the renewal is void
                return [(REVERSALS.name, key, voided(key, campaign, Converted.of(c), 0))]
            ledger.renewal_of.add(campaign)
        else:
            out = self._placed(key, ledger, campaign, c.supersedes)
        current = ledger.converted.get(campaign)
        if current is not None:
            if c.supersedes is None or c.supersedes != current.conversion_id:
                return out  # a copy, or a correction already superseded itself
            before = ledger.refunded.get(campaign, 0)
            out.append((REVERSALS.name, key, reattributed(key, campaign, current, c, before)))
            return out + self._reapply(key, ledger, c)
        if campaign in ledger.unattributed or any(
            s.campaign_id == campaign for s in ledger.settled
        ):  # a correction of an unattributed order, or refunds that expired waiting
            ledger.unattributed.discard(campaign)
            return out + self._reapply(key, ledger, c) + self._adopt(ledger, campaign)
        ledger.converted[campaign] = Converted.of(c)
        ledger.won_by[campaign] = c.reason
        return out + self._release(key, ledger, campaign) + self._adopt(ledger, campaign)

    def _placed(
        self, key: str, ledger: OrderLedger, campaign: str, supersedes: str | None = None
    ) -> list[Output]:
        """The order's own outcome (the join's) is read back: the order id is an order's.
        A renewal that named it as its renewal order earns nothing, whichever came first:
        when a renewal's outcome held the id until now, its conversion is reversed whole
        (``voided``, the refunds it took are the order's again: they are applied to the
        order's outcome next), its unattributed answer gives way, and the order's own
        renewals refused because it looked like a renewal order are decided again."""
        if campaign not in ledger.renewal_of:
            return []
        ledger.renewal_of.discard(campaign)
        current = ledger.converted.get(campaign)
        if supersedes is not None and current is not None and current.conversion_id == supersedes:
            # A correction of the order's own conversion: held with a renewal's mark only in
            # a state kept from before renewals had ids of their own (one shared line).
            return []
        again = [r for r in ledger.held_as_renewal if r.campaign_id == campaign]
        ledger.held_as_renewal = [r for r in ledger.held_as_renewal if r.campaign_id != campaign]
        ledger.orphans += again  # decided with the order's outcome (``_adopt``)
        ledger.unattributed.discard(campaign)
        renewal = ledger.converted.pop(campaign, None)
        ledger.won_by.pop(campaign, None)
        refunded = ledger.refunded.pop(campaign, 0)
        if renewal is None:
            return []
        return [(REVERSALS.name, key, voided(key, campaign, renewal, refunded))]

    def _adopt(self, ledger: OrderLedger, campaign: str) -> list[Output]:
        """The campaign's renewals that expired before its first outcome, decided now."""
        late = [r for r in ledger.orphans if r.campaign_id == campaign]
        if not late:
            return []
        ledger.orphans = [r for r in ledger.orphans if r.campaign_id != campaign]
        out = _settled(*(self._settle(ledger, r) for r in late))
        # Still unattributed: the answer given at expiry stands (same event id).
        return [o for o in out if isinstance(o[2], ConversionAttributed)]

    def _reapply(self, key: str, ledger: OrderLedger, c: ConversionAttributed) -> list[Output]:
        """Make ``c`` the order's conversion and apply the refunds settled so far to it."""
        conv = ledger.converted[c.campaign_id] = Converted.of(c)
        ledger.won_by[c.campaign_id] = c.reason
        total = 0
        out: list[Output] = []
        self._drop_other_currencies(key, ledger, c.campaign_id, conv.currency)
        applied_ids: set[str] = set()
        for r in ledger.settled:
            if r.campaign_id == c.campaign_id and r.refund_id not in applied_ids:
                applied_ids.add(r.refund_id)  # a copy that expired beside it: the first
                applied = capped_refund(conv.amount_minor, total, r.requested_minor)
                total += applied
                out.append((REVERSALS.name, key, reversal(key, r, conv, applied, total)))
        ledger.refunded[c.campaign_id] = total
        return out + self._follow(ledger, c) + self._release(key, ledger, c.campaign_id)

    def _follow(self, ledger: OrderLedger, c: ConversionAttributed) -> list[Output]:
        """The renewals already decided on the order's earlier outcome, moved to its new
        winner as corrections: each renewal's conversion supersedes the one it had (or
        attributes a renewal left unattributed with its order), as the order's does."""
        out: list[Output] = []
        kept: list[tuple[SubscriptionRenewed, str | None]] = []
        for r, current in ledger.renewals:
            if r.campaign_id != c.campaign_id:
                kept.append((r, current))
                continue
            decided = decide(
                r,
                ledger.converted[c.campaign_id],
                c.reason,
                self.terms(r.campaign_id, r.occurred_at),
            )
            event = decided[2]
            if not isinstance(event, ConversionAttributed):
                kept.append((r, current))
                continue
            cid = correction_id(r.campaign_id, r.renewal_order_id, c.conversion_id)
            moved = event.model_copy(
                update={
                    "event_id": cid,
                    "conversion_id": cid,
                    "supersedes": current,
                    "correction_reason": c.correction_reason,
                    "corrected_at": c.corrected_at,
                }
            )
            out.append((decided[0], decided[1], moved))
            kept.append((r, cid))
        ledger.renewals = kept
        return out

    def unattributed(self, key: str, u: OrderUnattributed) -> list[Output]:
        ledger = self._ledger(key, u.occurred_at)
        out: list[Output] = []
        if u.kind == "renewal":
            if _is_order(ledger, u.campaign_id):
                return []  # the order id is an order's: the renewal is void
        else:
            out = self._placed(key, ledger, u.campaign_id)
        if u.campaign_id in ledger.unattributed or u.campaign_id in ledger.converted:
            return out
        if u.kind == "renewal":
            ledger.renewal_of.add(u.campaign_id)
        ledger.unattributed.add(u.campaign_id)
        ledger.currencies[u.campaign_id] = u.currency
        self._drop_other_currencies(key, ledger, u.campaign_id, u.currency)
        return out + self._release(key, ledger, u.campaign_id) + self._adopt(ledger, u.campaign_id)

    def refund(self, key: str, r: OrderRefunded, arrived: int) -> list[Output]:
        """A refund of the order ``key``: settled now if its outcome is known (refused,
        and dead-lettered through ``take_failed``, in another currency than the order's,
        a copy of a refund taken or not: ``currency_refusal`` finds that first for the
        record's own dead letter), else it waits for it. A copy of a waiting refund in
        another currency waits beside it: whichever of the two the order's currency
        takes is applied, and the other is refused."""
        ledger = self._ledger(key, r.occurred_at)
        if r.campaign_id in ledger.converted or r.campaign_id in ledger.unattributed:
            # Settling holds it to the order's currency before it drops a copy.
            return _settled(self._settle_refund(ledger, r))
        return self._wait(key, ledger, r, arrived, _duplicate(ledger, r))

    def take_refund(self, key: str, r: OrderRefunded, arrived: int) -> tuple[list[Output], str]:
        """``currency_refusal``, then ``conflicting_copy``, then ``refund`` unless the refund
        is refused, with one lookup of the key and each check made once: (what ``refund``
        emits, '') or ([], why it is refused with its record: nothing of the state changes
        then)."""
        found = self.keys.get(key)
        duplicate = False
        if found is not None:
            refused = _currency_refusal(found, r)
            if refused:
                return [], refused
            duplicate = _duplicate(found, r)
            refused = _refund_conflict(found, r) if duplicate else ""
            if refused:
                return [], refused
        ledger = self._touched(key, found, r.occurred_at)
        if r.campaign_id in ledger.converted or r.campaign_id in ledger.unattributed:
            # Its currency is the order's (asked above): settled at once.
            return _settled(self._take_settled(ledger, r)), ""
        return self._wait(key, ledger, r, arrived, duplicate), ""

    def _wait(
        self, key: str, ledger: OrderLedger, r: OrderRefunded, arrived: int, duplicate: bool
    ) -> list[Output]:
        """``r``, its order's outcome not known yet, waits for it unless it is a copy of a
        refund taken or waiting (``duplicate``, ``_duplicate``): that one is dropped."""
        if not duplicate:
            ledger.waiting.append((r, arrived))
            self.waiting.add(key)
        return []

    def conflicting_copy(self, key: str, r: OrderRefunded) -> str:
        """Why ``refund`` would drop ``r`` as a copy of a refund taken or waiting here
        although it asks another amount, or in another currency (``CONFLICTING_DUPLICATE``);
        '' when it is no copy, a copy that asks the same (dropped silently), or a copy of
        one whose amount this key does not keep. Reads the state only."""
        ledger = self.keys.get(key)
        return "" if ledger is None else _copy_conflict(ledger, r)

    def currency_refusal(self, key: str, r: OrderRefunded) -> str:
        """Why ``refund`` would refuse ``r`` now for its currency ('' when it would not: no
        outcome of its order known yet, or the order's currency). Asked before
        ``conflicting_copy``: a copy in another currency of a refund taken is refused for
        its currency, as it is when both copies waited, whichever came first. Reads the
        state only."""
        ledger = self.keys.get(key)
        return "" if ledger is None else _currency_refusal(ledger, r)

    def renewal(self, key: str, r: SubscriptionRenewed, arrived: int) -> list[Output]:
        """A renewal of the order ``key``: refused at once if another renewal order took
        its number, else decided now if its outcome is known, else it waits for it like a
        refund."""
        ledger = self._ledger(key, r.occurred_at)
        ident = renewal_ident(r)
        if ident in ledger.done or any(_ident(w) == ident for w, _ in ledger.waiting):
            return []
        taken = ledger.numbers.setdefault(r.campaign_id, {})
        refusal = renewal_claim(taken, r.renewal_number, r.renewal_order_id)
        if refusal:
            ledger.done.add(ident)
            return [unattributed(r, refusal)]
        taken[r.renewal_number] = r.renewal_order_id
        if r.campaign_id in ledger.converted or r.campaign_id in ledger.unattributed:
            return _settled(self._settle(ledger, r))
        ledger.waiting.append((r, arrived))
        self.waiting.add(key)
        return []

    def _drop_other_currencies(
        self, key: str, ledger: OrderLedger, campaign: str, currency: str
    ) -> None:
        """Refunds settled before the order's currency was known (expired waiting) that are
        in another one: refused now, never applied, and their ids free again (unless a
        copy in the order's currency expired beside them)."""
        other = [
            s
            for s in ledger.settled
            if s.campaign_id == campaign and other_currency(s.currency, currency)
        ]
        if not other:
            return
        ledger.settled = [s for s in ledger.settled if s not in other]
        kept = {s.refund_id for s in ledger.settled if s.campaign_id == campaign}
        for s in other:
            if s.refund_id not in kept:
                ledger.done.discard((campaign, s.refund_id))
                ledger.answered.add((campaign, s.refund_id))
            facts = {
                "campaign_id": s.campaign_id,
                "order_id": key,
                "refund_id": s.refund_id,
                "amount_minor": s.requested_minor,
                "currency": s.currency,
                "occurred_at": s.occurred_at,
            }
            refused = Refused(refund_currency_refusal(s.currency, currency))
            self.failed.append(Failed(key, facts, f"{CURRENCY_MISMATCH} {s.currency}", refused))

    def _settle(self, ledger: OrderLedger, r: Waiting) -> Output | None:
        """``r`` settled against its order's outcome; None: nothing to send (a refund
        refused for its currency, dead-lettered through ``take_failed``, or a copy of a
        refund settled already)."""
        if isinstance(r, SubscriptionRenewed):
            ledger.done.add(renewal_ident(r))
            if refusal := first_order_refusal(r.campaign_id in ledger.renewal_of):
                ledger.held_as_renewal.append(r)
                return unattributed(r, refusal)
            first = ledger.converted.get(r.campaign_id)
            won_by = ledger.won_by.get(r.campaign_id, "cookie")
            decided = decide(r, first, won_by, self.terms(r.campaign_id, r.occurred_at))
            event = decided[2]
            if isinstance(event, ConversionAttributed):
                ledger.renewals.append((r, event.conversion_id))
            elif isinstance(event, OrderUnattributed) and event.reason == FIRST_ORDER_UNATTRIBUTED:
                ledger.renewals.append((r, None))
            return decided
        return self._settle_refund(ledger, r)

    def _settle_refund(self, ledger: OrderLedger, r: OrderRefunded) -> Output | None:
        # The currency first: a refund in another currency than its order's is refused
        # whatever came before it, so which of two copies arrived first never decides
        # whether the other is dead-lettered or dropped without a trace.
        refused = refund_currency_refusal(r.currency, _order_currency(ledger, r.campaign_id))
        if refused:
            facts = r.model_dump(mode="json")
            step = f"{CURRENCY_MISMATCH} {r.currency}"
            self.failed.append(Failed(r.order_id, facts, step, Refused(refused)))
            return None
        return self._take_settled(ledger, r)

    def _take_settled(self, ledger: OrderLedger, r: OrderRefunded) -> Output | None:
        """``_settle_refund`` once ``r`` is known to be in its order's currency."""
        if (r.campaign_id, r.refund_id) in ledger.done:
            return None  # a copy of a refund taken already
        ledger.done.add((r.campaign_id, r.refund_id))
        settled = _settled_refund(r)
        ledger.settled.append(settled)
        conv = ledger.converted.get(r.campaign_id)
        if conv is None:
            if (r.campaign_id, r.refund_id) in ledger.answered:
                return None  # answered already, under the same event id
            return (UNMATCHED.name, r.order_id, refund_unmatched(r, order_known=True))
        before = ledger.refunded.get(r.campaign_id, 0)
        applied = capped_refund(conv.amount_minor, before, r.amount_minor)
        ledger.refunded[r.campaign_id] = before + applied
        return (
            REVERSALS.name,
            r.order_id,
            reversal(r.order_id, settled, conv, applied, before + applied),
        )

    def _release(self, key: str, ledger: OrderLedger, campaign: str) -> list[Output]:
        ready = [w for w in ledger.waiting if w[0].campaign_id == campaign]
        if not ready:
            return []
        ledger.waiting = [w for w in ledger.waiting if w[0].campaign_id != campaign]
        if not ledger.waiting:
            self.waiting.discard(key)
        return _settled(*(self._settle(ledger, r) for r, _ in ready))

    def due(self, safe_time: int, wait_ms: int) -> list[Output]:
        """Refunds that waited ``wait_ms`` without their order's outcome: unmatched."""
        out: list[Output] = []
        for key in list(self.waiting):
            ledger = self.keys[key]
            expired = [w for w in ledger.waiting if w[1] + wait_ms <= safe_time]
            if expired:
                ledger.waiting = [w for w in ledger.waiting if w[1] + wait_ms > safe_time]
                for r, _ in expired:
                    if isinstance(r, SubscriptionRenewed):
                        ledger.done.add(_ident(r))
                        ledger.orphans.append(r)
                        out.append(unattributed(r, FIRST_ORDER_UNKNOWN))
                        continue
                    if _ident(r) in ledger.done or _ident(r) in ledger.answered:
                        # A copy in another currency expired before it (answered then, under
                        # the same event id): kept to be applied if the order's currency
                        # refuses that one (``_reapply``).
                        ledger.done.add(_ident(r))
                        ledger.settled.append(_settled_refund(r))
                        continue
                    ledger.done.add(_ident(r))
                    try:  # one refund's failure never takes the others with it
                        unmatched = refund_unmatched(r, order_known=False)
                    except Exception as exc:
                        facts = r.model_dump(mode="json")
                        self.failed.append(Failed(key, facts, "settling a waiting refund", exc))
                        continue
                    ledger.settled.append(_settled_refund(r))
                    out.append((UNMATCHED.name, r.order_id, unmatched))
                self.dirty.add(key)
            if not ledger.waiting:
                self.waiting.discard(key)
        return out

    def take_failed(self) -> list[Failed]:
        """Refunds whose settling raised since the last call (see ``Failed``)."""
        failed, self.failed = self.failed, []
        return failed

    def prune(self, horizon: int) -> None:
        """Forget orders whose latest event is before ``horizon`` and that wait for nothing
        (among the next slice of the keys: ``store.Sweep``)."""
        for key, ledger in self.sweep.next(self.keys):
            if ledger.last_at < horizon and not ledger.waiting:
                del self.keys[key]
                self.waiting.discard(key)
                self.dirty.add(key)

    def take_dirty(self) -> list[tuple[str, bytes | None]]:
        """The changed keys' snapshots (None: forgotten), clearing the dirty set."""
        items: list[tuple[str, bytes | None]] = [
            (key, _encode(self.keys[key]) if key in self.keys else None) for key in self.dirty
        ]
        self.dirty.clear()
        items.append((WATERMARK_KEY, str(self.watermark).encode()))
        return items

    def restore(self, key: str, value: bytes) -> None:
        if key == WATERMARK_KEY:
            self.watermark = max(self.watermark, int(value))
            return
        ledger = decode_ledger(value)
        self.keys[key] = ledger
        if ledger.waiting:
            self.waiting.add(key)

    def forget(self, key: str) -> None:
        self.keys.pop(key, None)
        self.waiting.discard(key)


def _encode(ledger: OrderLedger) -> bytes:
    doc: dict[str, Any] = {
        "c": [[k, *vars_of(v)] for k, v in ledger.converted.items()],
        "u": sorted(ledger.unattributed),
        "r": ledger.refunded,
        "d": sorted(ledger.done),
        "w": [[r.model_dump(mode="json"), arrived] for r, arrived in ledger.waiting],
        "t": ledger.last_at,
    }
    if ledger.settled:
        doc["h"] = [list(r) for r in ledger.settled]
    if ledger.won_by:
        doc["wb"] = ledger.won_by
    if ledger.renewals:
        doc["rn"] = [[r.model_dump(mode="json"), cid] for r, cid in ledger.renewals]
    if ledger.orphans:
        doc["or"] = [r.model_dump(mode="json") for r in ledger.orphans]
    if ledger.numbers:
        doc["nb"] = {c: sorted(taken.items()) for c, taken in ledger.numbers.items()}
    if ledger.renewal_of:
        doc["ro"] = sorted(ledger.renewal_of)
    if ledger.held_as_renewal:
        doc["hr"] = [r.model_dump(mode="json") for r in ledger.held_as_renewal]
    if ledger.currencies:
        doc["cy"] = ledger.currencies
    if ledger.answered:
        doc["an"] = sorted(ledger.answered)
    return compact_json_bytes(doc)


def _is_order(ledger: OrderLedger, campaign: str) -> bool:
    """Whether the outcome this key holds for the campaign is an order's (the join's): one
    is held, and it is no renewal's (``renewal_of`` marks exactly those)."""
    held = campaign in ledger.converted or campaign in ledger.unattributed
    return held and campaign not in ledger.renewal_of


def _ident(w: Waiting) -> tuple[str, str]:
    return renewal_ident(w) if isinstance(w, SubscriptionRenewed) else (w.campaign_id, w.refund_id)


def _duplicate(ledger: OrderLedger, r: OrderRefunded) -> bool:
    """A copy of a refund taken already, or of one waiting in the same currency. A refund
    that expired waiting was taken only for the currencies of the copies kept, while its
    order's currency is unknown: a copy in another one waits for the order too."""
    ident = (r.campaign_id, r.refund_id)
    if any(_ident(w) == ident and w.currency == r.currency for w, _ in ledger.waiting):
        return True
    if ident not in ledger.done:
        return False
    if _order_currency(ledger, r.campaign_id) is not None:
        return True
    copies = [s.currency for s in ledger.settled if (s.campaign_id, s.refund_id) == ident]
    return not copies or any(c in ("", r.currency) for c in copies)


def _currency_refusal(ledger: OrderLedger, r: OrderRefunded) -> str:
    return refund_currency_refusal(r.currency, _order_currency(ledger, r.campaign_id))


def _copy_conflict(ledger: OrderLedger, r: OrderRefunded) -> str:
    return _refund_conflict(ledger, r) if _duplicate(ledger, r) else ""


def _refund_conflict(ledger: OrderLedger, r: OrderRefunded) -> str:
    """Why ``r``, a copy of a refund this key holds (waiting, or taken), is refused: it
    asks another amount, or in another currency, than the copy held ('' when it asks the
    same, or when no copy's amount is kept: taken in a state from before settled refunds
    were). Compared with a waiting copy in its currency first, else with the first copy
    taken in its currency (or of a currency not kept), else with the first copy taken."""
    ident = (r.campaign_id, r.refund_id)
    for w, _ in ledger.waiting:
        if isinstance(w, OrderRefunded) and _ident(w) == ident and w.currency == r.currency:
            return _refund_differs(r, w.amount_minor, w.currency, f" (event {w.event_id})")
    copies = [s for s in ledger.settled if (s.campaign_id, s.refund_id) == ident]
    same = [s for s in copies if s.currency in ("", r.currency)]
    if not copies:
        return ""
    kept = (same or copies)[0]
    return _refund_differs(r, kept.requested_minor, kept.currency or r.currency, "")


def _refund_differs(r: OrderRefunded, amount: int, currency: str, event: str) -> str:
    if (amount, currency) == (r.amount_minor, r.currency):
        return ""
    return (
        f"{CONFLICTING_DUPLICATE}: refund {r.refund_id} of order {r.order_id} of campaign"
        f" {r.campaign_id} came before with amount_minor {amount} {currency}{event};"
        f" this one says {r.amount_minor} {r.currency} (event {r.event_id})"
    )


def _order_currency(ledger: OrderLedger, campaign: str) -> str | None:
    """The currency of the order's outcome held for ``campaign`` (None: none held, or an
    unattributed one kept from before outcomes' currencies were)."""
    conv = ledger.converted.get(campaign)
    if conv is not None:
        return conv.currency
    if campaign in ledger.unattributed:
        return ledger.currencies.get(campaign)
    return None


def _settled(*outputs: Output | None) -> list[Output]:
    return [o for o in outputs if o is not None]


def _settled_refund(r: OrderRefunded) -> SettledRefund:
    return SettledRefund(
        r.campaign_id, r.refund_id, r.amount_minor, r.occurred_at, _items(r), r.currency
    )


def _items(r: OrderRefunded) -> tuple[tuple[str, int | None, int | None], ...]:
    return tuple((i.sku, i.quantity, i.amount_minor) for i in r.items)


def _waiting_from(payload: dict[str, Any]) -> Waiting:
    if payload.get("type") == "SubscriptionRenewed":
        return SubscriptionRenewed.model_validate(payload)
    return OrderRefunded.model_validate(payload)


def _settled_from(row: list[Any]) -> SettledRefund:
    items = tuple((s, q, a) for s, q, a in row[4]) if len(row) > 4 else ()
    currency = row[5] if len(row) > 5 else ""
    return SettledRefund(row[0], row[1], row[2], row[3], items, currency)


def vars_of(c: Converted) -> list[Any]:
    return [c.conversion_id, c.affiliate_id, c.amount_minor, c.currency, c.occurred_at]


def decode_ledger(raw: bytes) -> OrderLedger:
    doc = json.loads(raw)
    return OrderLedger(
        converted={k: Converted(*rest) for k, *rest in doc["c"]},
        unattributed=set(doc["u"]),
        refunded=dict(doc["r"]),
        done={(c, r) for c, r in doc["d"]},
        waiting=[(_waiting_from(p), a) for p, a in doc["w"]],
        settled=[_settled_from(r) for r in doc.get("h", ())],
        last_at=doc.get("t", 0),
        won_by=dict(doc.get("wb", {})),
        renewals=[(SubscriptionRenewed.model_validate(r), cid) for r, cid in doc.get("rn", ())],
        orphans=[SubscriptionRenewed.model_validate(r) for r in doc.get("or", ())],
        numbers={c: dict(taken) for c, taken in doc.get("nb", {}).items()},
        renewal_of=set(doc.get("ro", ())),
        held_as_renewal=[SubscriptionRenewed.model_validate(r) for r in doc.get("hr", ())],
        currencies=dict(doc.get("cy", {})),
        answered={(c, r) for c, r in doc.get("an", ())},
    )
