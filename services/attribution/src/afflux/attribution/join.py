"""Stage 1: the click-order join of one partition (keyed by visitor), without Kafka.

State per key (the visitor, or the order id for an order without one): the
clicks, the orders waiting for their grace period, the decided orders (for
de-duplication and lead confirmations) and confirmations that came before
their order was decided. ``arrived`` is the record's broker timestamp: an order
counts the clicks that arrived no later than its own arrival plus the campaign's
grace, whenever the timer gets to it, so a restart or a slow timer gives the
same answer.
"""

from __future__ import annotations

import heapq
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from afflux.attribution.outputs import order_outcome
from afflux.shared.core.attribution import ClickTouch, OrderTouch, choose
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    Envelope,
    LeadConfirmed,
    OrderPlaced,
)
from afflux.shared.topics import CONVERSIONS, UNMATCHED
from afflux.shared.wire import compact_json

OrderKey = tuple[str, str]  # campaign_id, order_id
Output = tuple[str, str, Envelope]  # topic, key, event
TermsLookup = Callable[[str, int], TermsVersion | None]

_intern = sys.intern


@dataclass(slots=True)
class Decided:
    at: int
    converted: bool
    confirmed: bool = False


@dataclass(slots=True)
class VisitorState:
    clicks: dict[str, tuple[ClickTouch, int]] = field(default_factory=dict)
    pending: dict[OrderKey, tuple[OrderPlaced, int]] = field(default_factory=dict)
    decided: dict[OrderKey, Decided] = field(default_factory=dict)
    confirms: dict[OrderKey, LeadConfirmed] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.clicks or self.pending or self.decided or self.confirms)


class JoinPartition:
    """The join's state for one partition and what happens to it."""

    def __init__(self) -> None:
        self.keys: dict[str, VisitorState] = {}
        self.dirty: set[str] = set()
        # Pending orders by arrival: an order cannot be due before it arrived, so a tick
        # looks only at the head instead of at every pending order.
        self.queue: list[tuple[int, str, OrderKey]] = []
        self.index: dict[OrderKey, str] = {}  # order -> the key holding it
        self.watermark = 0  # largest event time seen

    def _state(self, key: str) -> VisitorState:
        state = self.keys.get(key)
        if state is None:
            state = self.keys[key] = VisitorState()
        self.dirty.add(key)
        return state

    def click(self, key: str, click: ClickRecorded, arrived: int, terms: TermsLookup) -> bool:
        """Keep the click; True when it came after an order it could have won was decided."""
        state = self._state(key)
        if click.click_id in state.clicks:
            return False
        touch = ClickTouch(
            click.click_id,
            _intern(click.affiliate_id),
            _intern(click.campaign_id),
            click.occurred_at,
            click.is_bot,
            click.is_duplicate,
        )
        state.clicks[click.click_id] = (touch, arrived)
        if click.occurred_at > self.watermark:
            self.watermark = click.occurred_at
        if not state.decided or touch.is_bot or touch.is_duplicate:
            return False  # a flagged click could never have won
        for (campaign, _), decided in state.decided.items():
            if campaign == touch.campaign_id and decided.at >= touch.at:
                version = terms(campaign, decided.at)
                if version and decided.at - version.terms.window_ms(touch.affiliate_id) <= touch.at:
                    return True
        return False

    def order(self, key: str, order: OrderPlaced, arrived: int) -> bool:
        """Hold a new order for its grace period; False for a copy of a known order."""
        okey = (order.campaign_id, order.order_id)
        existing = self.keys.get(key)
        if existing is not None and (okey in existing.pending or okey in existing.decided):
            return False
        state = self._state(key)
        state.pending[okey] = (order, arrived)
        self.index[okey] = key
        heapq.heappush(self.queue, (arrived, key, okey))
        if order.occurred_at > self.watermark:
            self.watermark = order.occurred_at
        return True

    def lead(self, key: str, confirm: LeadConfirmed) -> list[Output]:
        """Forward a confirmation once its order has converted (at most once)."""
        okey = (confirm.campaign_id, confirm.order_id)
        state = self._state(key)
        decided = state.decided.get(okey)
        if decided is None:
            state.confirms.setdefault(okey, confirm)
            return []
        if not decided.converted or decided.confirmed:
            return []
        decided.confirmed = True
        return [(CONVERSIONS.name, confirm.order_id, confirm)]

    def due(self, safe_time: int, terms: TermsLookup) -> list[Output]:
        """Decide every order whose grace has passed by ``safe_time``."""
        out: list[Output] = []
        held: list[tuple[int, str, OrderKey]] = []
        while self.queue and self.queue[0][0] <= safe_time:
            entry = heapq.heappop(self.queue)
            arrived, key, okey = entry
            state = self.keys.get(key)
            pending = state.pending.get(okey) if state is not None else None
            if state is None or pending is None or pending[1] != arrived:
                continue  # decided, forgotten, or queued again under another arrival
            order = pending[0]
            version = terms(order.campaign_id, order.occurred_at)
            cutoff = arrived + version.terms.grace_ms if version is not None else None
            if version is None or cutoff is None or cutoff > safe_time:
                held.append(entry)
                continue
            out.extend(self._decide(state, okey, order, cutoff, version))
            self.dirty.add(key)
        for entry in held:
            heapq.heappush(self.queue, entry)
        return out

    def _decide(
        self, state: VisitorState, okey: OrderKey, order: OrderPlaced, cutoff: int, v: TermsVersion
    ) -> list[Output]:
        del state.pending[okey]
        clicks = [touch for touch, arrived in state.clicks.values() if arrived <= cutoff]
        touch = OrderTouch(
            order.order_id, order.campaign_id, order.occurred_at, order.click_id, order.coupon_code
        )
        event = order_outcome(order, choose(touch, clicks, v.terms), v)
        converted = isinstance(event, ConversionAttributed)
        decided = state.decided[okey] = Decided(order.occurred_at, converted)
        out: list[Output] = [
            (CONVERSIONS.name if converted else UNMATCHED.name, order.order_id, event)
        ]
        confirm = state.confirms.pop(okey, None)
        if confirm is not None and converted:
            decided.confirmed = True
            out.append((CONVERSIONS.name, order.order_id, confirm))
        return out

    def prune(self, click_horizon: int, order_horizon: int, arrival_horizon: int) -> None:
        """Forget clicks before ``click_horizon`` (event time) that arrived before
        ``arrival_horizon``, and decided orders before ``order_horizon``.

        Event times are not ordered across visitors (a backfill, a late batch), so the
        event-time horizon alone could drop clicks an order arriving with them still
        needs: clicks of a key with a waiting order, and clicks that arrived recently,
        are kept whatever their event time.
        """
        for key, state in list(self.keys.items()):
            old = []
            if not state.pending:
                old = [
                    cid
                    for cid, (touch, arrived) in state.clicks.items()
                    if touch.at < click_horizon and arrived < arrival_horizon
                ]
            gone = [k for k, d in state.decided.items() if d.at < order_horizon]
            if not old and not gone:
                continue
            for cid in old:
                del state.clicks[cid]
            for k in gone:
                del state.decided[k]
                self.index.pop(k, None)
            self.dirty.add(key)

    # -- changelog -----------------------------------------------------------------

    def take_dirty(self) -> list[tuple[str, bytes | None]]:
        """The changed keys' snapshots (None: delete), clearing the dirty set."""
        items: list[tuple[str, bytes | None]] = []
        for key in self.dirty:
            state = self.keys.get(key)
            if state is None or state.empty():
                self.keys.pop(key, None)
                items.append((key, None))
            else:
                items.append((key, encode_state(state)))
        self.dirty.clear()
        items.append((WATERMARK_KEY, str(self.watermark).encode()))
        return items

    def restore(self, key: str, value: bytes) -> None:
        if key == WATERMARK_KEY:
            self.watermark = max(self.watermark, int(value))
            return
        state = decode_state(value)
        self.keys[key] = state
        for okey in (*state.pending, *state.decided):
            self.index[okey] = key
        for okey, (_, arrived) in state.pending.items():
            heapq.heappush(self.queue, (arrived, key, okey))

    def forget(self, key: str) -> None:
        self.keys.pop(key, None)


WATERMARK_KEY = "\x00watermark"


def encode_state(s: VisitorState) -> bytes:
    doc: dict[str, Any] = {
        "c": [
            [t.click_id, t.affiliate_id, t.campaign_id, t.at, t.is_bot, t.is_duplicate, arrived]
            for t, arrived in s.clicks.values()
        ]
    }
    if s.pending:
        doc["p"] = [[o.model_dump(mode="json"), arrived] for o, arrived in s.pending.values()]
    if s.decided:
        doc["d"] = [[c, o, d.at, d.converted, d.confirmed] for (c, o), d in s.decided.items()]
    if s.confirms:
        doc["w"] = [c.model_dump(mode="json") for c in s.confirms.values()]
    return compact_json(doc).encode()


def decode_state(raw: bytes) -> VisitorState:
    doc = json.loads(raw)
    s = VisitorState()
    for cid, aff, camp, at, bot, dup, arrived in doc.get("c", ()):
        s.clicks[cid] = (ClickTouch(cid, _intern(aff), _intern(camp), at, bot, dup), arrived)
    for payload, arrived in doc.get("p", ()):
        order = OrderPlaced.model_validate(payload)
        s.pending[(order.campaign_id, order.order_id)] = (order, arrived)
    for c, o, at, converted, confirmed in doc.get("d", ()):
        s.decided[(c, o)] = Decided(at, converted, confirmed)
    for payload in doc.get("w", ()):
        confirm = LeadConfirmed.model_validate(payload)
        s.confirms[(confirm.campaign_id, confirm.order_id)] = confirm
    return s
