"""Stage 1: the click-order join of one partition (keyed by visitor), without Kafka.

State per key (the visitor, or the order id for an order without one): the
clicks, the orders waiting for their grace period, the decided orders (for
de-duplication and lead confirmations) and confirmations that came before
their order was decided. ``arrived`` is the record's broker timestamp: an order
counts the clicks that arrived no later than its own arrival plus the campaign's
grace, whenever the timer gets to it, so a restart or a slow timer gives the
same answer.

A decided order keeps what re-deciding needs (``OrderFacts`` and its winner): a
click that arrives after the decision, and is eligible for the order, re-runs
the choice over every click the key holds. When the winner changes, a
correction goes out (a new conversion that names the one it supersedes), so the
final decision is the one event time alone gives, whatever the arrival order.

Creators' content (live streams, handles) is every campaign's, read by every worker
(``content_view``); a survey answer that comes after its order is an event on the
order's key. Either may change a decided order's winner exactly as a late click does:
``content_changed`` and ``survey`` re-decide the orders concerned and send corrections.
"""

from __future__ import annotations

import heapq
import json
import sys
from collections.abc import Callable, Collection, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

from afflux.attribution.outputs import CorrectionCause, OrderFacts, order_outcome
from afflux.attribution.store import Sweep
from afflux.shared.core.attribution import (
    NO_CONTENT,
    Attributed,
    ClickTouch,
    ClickWindow,
    Content,
    LiveTouch,
    OrderTouch,
    choose,
    conversion_id,
    correction_id,
    live_claims,
    settled_winner,
)
from afflux.shared.core.clock import MAX_EVENT_TIME_MS
from afflux.shared.core.frozen import quick_init
from afflux.shared.core.order_terms import ORDER_TERMS_FIELDS
from afflux.shared.core.review import IP_PREFIX, coupon_site_host
from afflux.shared.core.terms import TermsVersion, normalize_coupon, normalize_handle
from afflux.shared.events import (
    ConversionAttributed,
    Envelope,
    LeadConfirmed,
    OrderItem,
    OrderKind,
    OrderPlaced,
    SurveyAnswered,
)
from afflux.shared.topics import CONVERSIONS, UNMATCHED
from afflux.shared.wire import compact_json_bytes

OrderKey = tuple[str, str]  # campaign_id, order_id
Output = tuple[str, str, Envelope]  # topic, key, event
TermsLookup = Callable[[str, int], TermsVersion | None]
ContentLookup = Callable[[str], Content]  # campaign -> its streams and handles

_intern = sys.intern

# The reason of a copy of an order, refund or click (its id seen before) that says
# something else than the copy taken: dead-lettered, the first decision left as it was.
CONFLICTING_DUPLICATE = "conflicting_duplicate"


class Click(Protocol):
    """What the join reads of a click: a ``ClickRecorded``, or the decoder's faster
    ``DecodedClick`` with the same fields."""

    @property
    def event_id(self) -> str: ...
    @property
    def click_id(self) -> str: ...
    @property
    def affiliate_id(self) -> str: ...
    @property
    def campaign_id(self) -> str: ...
    @property
    def occurred_at(self) -> int: ...
    @property
    def ip_hash(self) -> str: ...
    @property
    def referrer(self) -> str | None: ...
    @property
    def flagged(self) -> bool: ...


@quick_init
@dataclass(frozen=True, slots=True)
class Winner:
    """The current winner of a converted order; ``corrected``: set by a correction;
    ``stream_id``: the winning live stream (rule livestream)."""

    affiliate_id: str
    reason: str
    click: ClickTouch | None
    corrected: bool = False
    stream_id: str | None = None

    @classmethod
    def of(cls, decision: Attributed, corrected: bool = False) -> Winner:
        stream = decision.stream.stream_id if decision.stream else None
        affiliate = _intern(decision.affiliate_id)
        return cls(affiliate, decision.reason, decision.click, corrected, stream)

    def conversion_id(self, campaign_id: str, order_id: str) -> str:
        if not self.corrected:
            return conversion_id(campaign_id, order_id)
        return correction_id(campaign_id, order_id, self.token)

    @property
    def token(self) -> str:
        """What tells this winner apart in a correction's id: its click, its stream, or
        its creator (by survey: marked so, as a coupon of the same creator is another)."""
        if self.click_id:
            return self.click_id
        if self.stream_id:
            return self.stream_id
        return f"survey:{self.affiliate_id}" if self.reason == "survey" else self.affiliate_id

    @property
    def click_id(self) -> str | None:
        return self.click.click_id if self.click else None

    def same(self, other: Winner) -> bool:
        return (self.affiliate_id, self.reason, self.click_id, self.stream_id) == (
            other.affiliate_id,
            other.reason,
            other.click_id,
            other.stream_id,
        )


@dataclass(slots=True)
class Decided:
    at: int
    converted: bool
    confirmed: bool = False
    order: OrderFacts | None = None  # None only in state written before re-deciding existed
    winner: Winner | None = None


class Refused(Exception):
    """A refusal found while settling rather than while reading a record (a refund that
    waited for its order's outcome, in another currency than the order's): dead-lettered
    as a ``Failed``, with the refusal's own text as the reason."""


@dataclass(frozen=True, slots=True)
class Failed:
    """An order (or refund) whose deciding raised, or was ``Refused``: it alone is
    dead-lettered, with what it was (``facts``), the step that failed and the exception;
    its neighbours go on."""

    key: str
    facts: dict[str, Any]
    step: str
    error: Exception

    @property
    def reason(self) -> str:
        if isinstance(self.error, Refused):
            return str(self.error)
        return f"failed: {self.step}: {type(self.error).__name__}: {self.error}"


@dataclass(slots=True)
class LateClick:
    """A click that arrived after orders it was eligible for were decided: per such order
    ``unchanged``, ``reattributed`` or ``attributed``; and the corrections to send.
    ``refused``: why the click is dead-lettered (a copy of a click held here that names
    another creator or campaign, ``CONFLICTING_DUPLICATE``); '' when it is not."""

    outcomes: list[str] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    refused: str = ""
    dropped: int = 0  # clicks given up to keep the visitor within its bound


# A person makes a few clicks in a window; a script replaying one cookie makes thousands
# a minute, all recorded (flagged). Past this a visitor's clicks are given up, flagged
# ones first (they never win), so one key's state and snapshot stay bounded.
DEFAULT_CLICKS_PER_VISITOR = 1_000


# What most clicks return: nothing decided here that they concern. One value for all of
# them (a click is the join's commonest event); it is read, never changed.
NOTHING_LATE = LateClick()


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

    def __init__(
        self,
        redecide: bool = True,
        keys: MutableMapping[str, VisitorState] | None = None,
        content: ContentLookup | None = None,
        clicks_per_visitor: int = DEFAULT_CLICKS_PER_VISITOR,
    ) -> None:
        # redecide=False only to prove that checks catch the arrival-dependent answer.
        self.redecide = redecide
        self.clicks_per_visitor = clicks_per_visitor
        self.content: ContentLookup = content or (lambda campaign_id: NO_CONTENT)
        self.content_seen = 0  # entries of the content book looked at (in memory only)
        # Per content partition, the (offset, item) of the last change applied: kept on the
        # changelog, so a partition restored from it skips what it had applied.
        self.content_done: dict[int, tuple[int, int]] = {}
        self.content_dirty = False
        self.late: list[str] = []  # outcomes of late clicks met while deciding
        self.failed: list[Failed] = []  # orders whose deciding raised, to dead-letter
        # Per-key state: a dict, or the disk store's keys (store.py).
        self.keys: MutableMapping[str, VisitorState] = {} if keys is None else keys
        self.sweep = Sweep()  # which keys the next pruning pass visits
        self.dirty: set[str] = set()
        # Pending orders by arrival: an order cannot be due before it arrived, so a tick
        # looks only at the head instead of at every pending order.
        self.queue: list[tuple[int, str, OrderKey]] = []
        # Pending orders whose grace is known and had not passed when a tick looked, by
        # that deadline (cutoff, arrival, key, order): a tick takes them up again only
        # once it passed, rather than every order that arrived within the last grace on
        # every tick. ``due`` moves them back to ``queue`` then, and the cutoff is read
        # again from the terms.
        self.later: list[tuple[int, int, str, OrderKey]] = []
        self.terms_seen = -1  # the campaign view's change count ``later`` was made under
        self.index: dict[OrderKey, str] = {}  # order -> the key holding it
        self.watermark = 0  # largest event time seen
        self.decisions = {"at_once": 0, "after_grace": 0}  # orders decided, for the metric
        # Whether the campaign view held every terms version the broker had when this
        # batch was fetched (``terms_barrier``): an order is decided at once only then,
        # else after its grace, by when the view has caught up (in memory only).
        self.at_once = True

    def _state(self, key: str) -> VisitorState:
        return self._kept(key, self.keys.get(key))

    def _kept(self, key: str, found: VisitorState | None) -> VisitorState:
        """The key's state (``found``: what a lookup of it just gave, not read again: with
        the disk store a key without a state is a disk read each time), made if it has
        none, and marked changed."""
        state = found
        if state is None:
            state = self.keys[key] = VisitorState()
        self.dirty.add(key)
        return state

    def click(self, key: str, click: Click, arrived: int, terms: TermsLookup) -> LateClick:
        """Keep the click; re-decide the decided orders it is eligible for. A copy of a
        click held here changes nothing; one that names another creator or campaign is
        refused (``LateClick.refused``), the click held staying as it was."""
        state = self._state(key)
        held = state.clicks.get(click.click_id)
        if held is not None:
            return LateClick(refused=_click_conflict(held[0], click))
        touch = ClickTouch(
            click.click_id,
            _intern(click.affiliate_id),
            _intern(click.campaign_id),
            click.occurred_at,
            click.flagged,
            *_kept_review_facts(click, terms),
        )
        state.clicks[click.click_id] = (touch, arrived)
        if click.occurred_at > self.watermark:
            self.watermark = click.occurred_at
        if len(state.clicks) > self.clicks_per_visitor:
            # Down to the bound, not one below what it held: a state written before the
            # bound, or under a larger one, shrinks at its next click.
            dropped, kept = 0, True
            while len(state.clicks) > self.clicks_per_visitor:
                if _give_up_one(state.clicks) is touch:
                    kept = False
                dropped += 1
            if not kept or not state.decided or touch.flagged:
                return LateClick(dropped=dropped)
            late = LateClick(dropped=dropped)
        elif not state.decided or touch.flagged:
            return NOTHING_LATE  # a flagged click can never win
        else:
            late = LateClick()
        for okey, decided in list(state.decided.items()):
            if okey[0] == touch.campaign_id and decided.at >= touch.at:
                try:  # one order's failure never takes the click or other orders with it
                    version = terms(okey[0], decided.at)
                    if version and _eligible(touch, decided.at, version, terms):
                        late.outcomes.append(
                            self._redecide(
                                state, key, decided, version, terms, arrived, late.outputs
                            )
                        )
                except Exception as exc:
                    facts = {"campaign_id": okey[0], "order_id": okey[1]}
                    facts["late_click_id"] = touch.click_id
                    self.failed.append(Failed(key, facts, "re-deciding on a late click", exc))
        return late

    def take_failed(self) -> list[Failed]:
        """Orders whose deciding raised since the last call (see ``Failed``)."""
        failed, self.failed = self.failed, []
        return failed

    def content_changed(
        self,
        campaign_id: str,
        touches: Callable[[OrderTouch, TermsVersion], bool],
        at: int,
        terms: TermsLookup,
    ) -> LateClick:
        """Creators' content changed in ``campaign_id`` (a stream claims orders, a handle
        became known) at broker time ``at``: re-decide every decided order of the campaign
        held here that ``touches`` says it concerns, as a late click would."""
        late = LateClick()
        for okey, key in [(o, k) for o, k in self.index.items() if o[0] == campaign_id]:
            state = self.keys.get(key)
            decided = state.decided.get(okey) if state is not None else None
            if state is None or decided is None or decided.order is None:
                continue
            try:
                version = terms(campaign_id, decided.at)
                if version is not None and touches(decided.order.touch(), version):
                    outcome = self._redecide(
                        state, key, decided, version, terms, at, late.outputs, cause="late_content"
                    )
                    late.outcomes.append(outcome)
            except Exception as exc:
                facts = {"campaign_id": okey[0], "order_id": okey[1], "content_at": at}
                self.failed.append(Failed(key, facts, "re-deciding on late content", exc))
        return late

    def survey(self, answer: SurveyAnswered, arrived: int, terms: TermsLookup) -> LateClick:
        """A survey answer that came after its order. The first answer of an order stands;
        a decided order is re-decided with it (it may now be the survey's). Returns what
        happened; ``outcomes`` is ``["unknown_order"]`` when no order here has that id."""
        late = LateClick()
        okey = (answer.campaign_id, answer.order_id)
        key = self.index.get(okey)
        state = self.keys.get(key) if key is not None else None
        if key is None or state is None:
            late.outcomes.append("unknown_order")
            return late
        pending = state.pending.get(okey)
        if pending is not None:
            order, at = pending
            if order.survey is None:
                state.pending[okey] = (order.model_copy(update={"survey": answer.answer}), at)
                self.dirty.add(key)
            return late
        decided = state.decided.get(okey)
        if decided is None or decided.order is None or decided.order.has_survey:
            return late
        decided.order = replace(
            decided.order,
            survey_affiliate_id=answer.answer.affiliate_id,
            survey_handle=answer.answer.handle,
        )
        self.dirty.add(key)
        try:
            version = terms(answer.campaign_id, decided.at)
            if version is not None:
                late.outcomes.append(
                    self._redecide(
                        state,
                        key,
                        decided,
                        version,
                        terms,
                        arrived,
                        late.outputs,
                        cause="late_survey",
                    )
                )
        except Exception as exc:
            facts = {"campaign_id": okey[0], "order_id": okey[1]}
            self.failed.append(Failed(key, facts, "re-deciding on a survey answer", exc))
        return late

    def take_late(self) -> list[str]:
        """Outcomes of clicks found late when their order was decided (see ``_decide``)."""
        outcomes, self.late = self.late, []
        return outcomes

    def _redecide(
        self,
        state: VisitorState,
        key: str,
        decided: Decided,
        v: TermsVersion,
        terms: TermsLookup,
        arrived: int,
        out: list[Output],
        seen: list[ClickTouch] | None = None,
        cause: CorrectionCause = "late_click",
    ) -> str:
        """Re-run the choice over ``seen`` (default: every click the key holds), the
        current winner's click included in case it was pruned; on a new winner, send a
        correction. Returns the outcome label."""
        order, current = decided.order, decided.winner
        if not self.redecide or order is None or (decided.converted and current is None):
            return "unchanged"
        clicks = [touch for touch, _ in state.clicks.values()] if seen is None else list(seen)
        if current and current.click and current.click.click_id not in state.clicks:
            clicks.append(current.click)
        content = self.content(order.campaign_id)
        decision = choose(order.touch(), clicks, v.terms, content, click_windows(terms))
        if not isinstance(decision, Attributed):
            return "unchanged"  # more clicks (streams, answers) never take a winner away
        winner = Winner.of(decision, corrected=True)
        if current and current.same(winner):
            return "unchanged"
        okey = (order.campaign_id, order.order_id)
        event = order_outcome(
            order,
            decision,
            v,
            correction=(
                winner.conversion_id(*okey),
                current.conversion_id(*okey) if current else None,
                arrived,
                cause,
            ),
            content=self.content(order.campaign_id),
            clicks=clicks,
        )
        # Nothing above changed the state: an exception there leaves the decision as it was.
        out.append((CONVERSIONS.name, order.order_id, event))
        outcome = "reattributed" if decided.converted else "attributed"
        decided.converted, decided.winner = True, winner
        confirm = state.confirms.pop(okey, None)
        if confirm is not None and not decided.confirmed:
            decided.confirmed = True
            out.append((CONVERSIONS.name, order.order_id, confirm))
        self.dirty.add(key)
        return outcome

    def place(self, key: str, order: OrderPlaced, arrived: int, terms: TermsLookup) -> list[Output]:
        """A new order: decided at once when its winner is settled (no click yet to come
        can change it, ``settled_winner``), else held for its grace period (``order``)."""
        return self._place(key, self.keys.get(key), order, arrived, terms)

    def take_order(
        self, key: str, order: OrderPlaced, arrived: int, terms: TermsLookup
    ) -> tuple[list[Output], str]:
        """``conflicting_copy``, then ``place`` unless the order is refused, with one
        lookup of the key: (what ``place`` emits, '') or ([], why the copy is refused)."""
        found = self.keys.get(key)
        refused = _conflict_in(found, order)
        if refused:
            return [], refused
        return self._place(key, found, order, arrived, terms), ""

    def _place(
        self,
        key: str,
        found: VisitorState | None,
        order: OrderPlaced,
        arrived: int,
        terms: TermsLookup,
    ) -> list[Output]:
        """``place``, ``found`` being what a lookup of ``key`` just gave."""
        state = self._hold(key, found, order, arrived)
        if state is None:
            return []
        okey = (order.campaign_id, order.order_id)
        confirm, late = state.confirms.get(okey), len(self.late)
        try:
            version = terms(order.campaign_id, order.occurred_at)
            if version is None:
                return []
            clicks = [touch for touch, _ in state.clicks.values()]
            if not self.at_once:
                return []  # the terms may be stale: decided after the grace, as any order
            if settled_winner(_touch(order), clicks, version.terms, click_windows(terms)) is None:
                return []
            # The usual cutoff: the clicks a decision after the grace would have seen.
            cutoff = arrived + version.terms.grace_ms
            out = self._decide(state, key, okey, order, cutoff, version, terms)
        except Exception as exc:
            self._undo(state, key, okey, order, confirm, late, exc)
            return []
        self.decisions["at_once"] += 1
        return out

    def conflicting_copy(self, key: str, order: OrderPlaced) -> str:
        """Why ``order`` is refused as a copy of an order ``key`` holds (waiting or decided)
        that says something else (``CONFLICTING_DUPLICATE``, naming the first field that
        differs); '' when it is no copy, or a copy that says the same (``place`` then
        drops it silently), or when the order held is a decided one kept from before
        decided orders kept their facts. Reads the state only."""
        return _conflict_in(self.keys.get(key), order)

    def order(self, key: str, order: OrderPlaced, arrived: int) -> bool:
        """Hold a new order for its grace period; False for a copy of a known order."""
        return self._hold(key, self.keys.get(key), order, arrived) is not None

    def _hold(
        self, key: str, found: VisitorState | None, order: OrderPlaced, arrived: int
    ) -> VisitorState | None:
        """``order``, ``found`` being what a lookup of ``key`` just gave (``_kept``); the
        key's state holding the order, or None for a copy of a known order."""
        okey = (order.campaign_id, order.order_id)
        if found is not None and (okey in found.pending or okey in found.decided):
            return None
        state = self._kept(key, found)
        state.pending[okey] = (order, arrived)
        self.index[okey] = key
        heapq.heappush(self.queue, (arrived, key, okey))
        if order.occurred_at > self.watermark:
            self.watermark = order.occurred_at
        parked_key = _parked_key(okey)
        parked = self.keys.get(parked_key)
        if parked is not None:  # confirmations that came before their order
            state.confirms.update(parked.confirms)
            parked.confirms.clear()
            self.dirty.add(parked_key)
        return state

    def confirm(self, confirm: LeadConfirmed) -> list[Output]:
        """A lead confirmation: forwarded once its order converted (see ``lead``). One
        whose order is not known here yet (sent before it, under the order's key and so
        on its partition) is parked under its own key until the order comes (``order``
        adopts it): its body does not tell the order's key."""
        okey = (confirm.campaign_id, confirm.order_id)
        key = self.index.get(okey)
        return self.lead(_parked_key(okey) if key is None else key, confirm)

    def lead(self, key: str, confirm: LeadConfirmed) -> list[Output]:
        """Forward a confirmation once its order has converted (at most once)."""
        okey = (confirm.campaign_id, confirm.order_id)
        state = self._state(key)
        decided = state.decided.get(okey)
        if decided is None:
            state.confirms.setdefault(okey, confirm)
            return []
        if not decided.converted:
            # Held: a late click may still attribute the order.
            state.confirms.setdefault(okey, confirm)
            return []
        if decided.confirmed:
            return []
        decided.confirmed = True
        return [(CONVERSIONS.name, confirm.order_id, confirm)]

    def due(self, safe_time: int, terms: TermsLookup, terms_seen: int = 0) -> list[Output]:
        """Decide every order whose grace has passed by ``safe_time``. ``terms_seen``:
        how many changes the campaign view has applied; when it moved, the deadlines in
        ``later`` may have (a new version with another grace) and are read again."""
        out: list[Output] = []
        held: list[tuple[int, str, OrderKey]] = []
        later = self.later
        if terms_seen != self.terms_seen:
            self.terms_seen = terms_seen
            self.queue += [(arrived, key, okey) for _, arrived, key, okey in later]
            heapq.heapify(self.queue)
            later.clear()
        while later and later[0][0] <= safe_time:
            _, arrived, key, okey = heapq.heappop(later)
            heapq.heappush(self.queue, (arrived, key, okey))
        while self.queue and self.queue[0][0] <= safe_time:
            entry = heapq.heappop(self.queue)
            arrived, key, okey = entry
            state = self.keys.get(key)
            pending = state.pending.get(okey) if state is not None else None
            if state is None or pending is None or pending[1] != arrived:
                continue  # decided, forgotten, or queued again under another arrival
            order = pending[0]
            confirm, late = state.confirms.get(okey), len(self.late)
            try:  # one order's failure never takes the others popped in this tick with it
                version = terms(order.campaign_id, order.occurred_at)
                cutoff = arrived + version.terms.grace_ms if version is not None else None
                if version is None or cutoff is None:
                    held.append(entry)  # no terms yet: asked again on the next tick
                    continue
                if cutoff > safe_time:
                    heapq.heappush(later, (cutoff, arrived, key, okey))
                    continue
                out.extend(self._decide(state, key, okey, order, cutoff, version, terms))
                self.decisions["after_grace"] += 1
            except Exception as exc:
                self._undo(state, key, okey, order, confirm, late, exc)
            self.dirty.add(key)
        for entry in held:
            heapq.heappush(self.queue, entry)
        return out

    def _undo(
        self,
        state: VisitorState,
        key: str,
        okey: OrderKey,
        order: OrderPlaced,
        confirm: LeadConfirmed | None,
        late: int,
        exc: Exception,
    ) -> None:
        """Deciding ``order`` raised: as if it had never come, so no half-made decision
        stays behind and a copy of it sent again is decided afresh; it is dead-lettered."""
        state.pending.pop(okey, None)
        state.decided.pop(okey, None)
        if confirm is not None:
            state.confirms[okey] = confirm
        del self.late[late:]
        self.index.pop(okey, None)
        facts = order.model_dump(mode="json")
        self.failed.append(Failed(key, facts, "deciding the order", exc))

    def take_decisions(self) -> dict[str, int]:
        """Orders decided since the last call, ``at_once`` and ``after_grace``."""
        counts, self.decisions = self.decisions, {"at_once": 0, "after_grace": 0}
        return counts

    def _decide(
        self,
        state: VisitorState,
        key: str,
        okey: OrderKey,
        order: OrderPlaced,
        cutoff: int,
        v: TermsVersion,
        terms: TermsLookup,
    ) -> list[Output]:
        del state.pending[okey]
        clicks = [touch for touch, arrived in state.clicks.values() if arrived <= cutoff]
        content = self.content(order.campaign_id)
        decision = choose(_touch(order), clicks, v.terms, content, click_windows(terms))
        event = order_outcome(OrderFacts.of(order), decision, v, content=content, clicks=clicks)
        converted = isinstance(event, ConversionAttributed)
        winner = None
        if isinstance(decision, Attributed):
            winner = Winner.of(decision)
        decided = state.decided[okey] = Decided(
            order.occurred_at, converted, order=OrderFacts.of(order), winner=winner
        )
        out: list[Output] = [
            (CONVERSIONS.name if converted else UNMATCHED.name, order.order_id, event)
        ]
        confirm = state.confirms.pop(okey, None) if converted else None
        if confirm is not None:
            decided.confirmed = True
            out.append((CONVERSIONS.name, order.order_id, confirm))
        # Clicks already held that arrived after the cutoff (a stall, a slow timer) are late
        # for this order: taken one by one in the order they came in, exactly as if each
        # had come after the decision, so the corrections do not depend on the timer.
        seen = clicks
        for late, arrived in list(state.clicks.values()):
            if arrived <= cutoff:
                continue
            seen = [*seen, late]
            if (
                not late.flagged
                and late.campaign_id == okey[0]
                and _eligible(late, order.occurred_at, v, terms)
            ):
                self.late.append(self._redecide(state, key, decided, v, terms, arrived, out, seen))
        return out

    def prune(self, click_horizon: int, order_horizon: int, arrival_horizon: int) -> None:
        """Forget clicks before ``click_horizon`` (event time) that arrived before
        ``arrival_horizon``, and decided orders and confirmations of orders never seen
        before ``order_horizon``.

        Event times are not ordered across visitors (a backfill, a late batch), so the
        event-time horizon alone could drop clicks an order arriving with them still
        needs: clicks of a key with a waiting order, and clicks that arrived recently,
        are kept whatever their event time. A pass visits the next slice of the keys
        (``store.Sweep``), so that none holds the stage for long.
        """
        for key, state in self.sweep.next(self.keys):
            old = []
            if not state.pending:
                old = [
                    cid
                    for cid, (touch, arrived) in state.clicks.items()
                    if touch.at < click_horizon and arrived < arrival_horizon
                ]
            gone = [k for k, d in state.decided.items() if d.at < order_horizon]
            # A confirmation whose order never came (unknown, dead-lettered, or pruned
            # before it) waits as long as a decided order is kept, then goes.
            orphaned = [
                k
                for k, c in state.confirms.items()
                if c.occurred_at < order_horizon
                and k not in state.decided
                and k not in state.pending
            ]
            if not old and not gone and not orphaned:
                continue
            for cid in old:
                del state.clicks[cid]
            for k in gone:
                del state.decided[k]
                state.confirms.pop(k, None)
                self.index.pop(k, None)
            for k in orphaned:
                del state.confirms[k]
            self.dirty.add(key)

    # -- changelog -----------------------------------------------------------------

    def take_dirty(self) -> list[tuple[str, bytes | None]]:
        """The changed keys' snapshots (None: delete), clearing the dirty set."""
        items: list[tuple[str, bytes | None]] = []
        keys, append = self.keys, items.append
        for key in self.dirty:
            state = keys.get(key)
            if state is None or state.empty():
                keys.pop(key, None)
                append((key, None))
            else:
                append((key, encode_state(state)))
        self.dirty.clear()
        items.append((WATERMARK_KEY, str(self.watermark).encode()))
        if self.content_dirty:
            done = {str(p): list(at) for p, at in sorted(self.content_done.items())}
            items.append((CONTENT_KEY, compact_json_bytes(done)))
            self.content_dirty = False
        return items

    def content_applied(self, partition: int, offset: int, item: int) -> bool:
        """Whether the content change at this position was applied here already."""
        done = self.content_done.get(partition)
        return done is not None and (offset, item) <= done

    def mark_content(self, partition: int, offset: int, item: int) -> None:
        done = self.content_done.get(partition)
        if done is None or (offset, item) > done:
            self.content_done[partition] = (offset, item)
            self.content_dirty = True

    def restore(self, key: str, value: bytes) -> None:
        if key == WATERMARK_KEY:
            self.watermark = max(self.watermark, int(value))
            return
        if key == CONTENT_KEY:
            for p, (offset, item) in json.loads(value).items():
                self.mark_content(int(p), offset, item)
            self.content_dirty = False
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
CONTENT_KEY = "\x00content"  # the content changes applied (``content_done``)
# Confirmations of an order not known yet wait under this prefix + campaign + order id.
LEAD_PREFIX = "\x00lead\x1f"


def _give_up_one(clicks: dict[str, tuple[ClickTouch, int]]) -> ClickTouch:
    """Take out the click a visitor over its bound keeps least: a flagged one (it never
    wins or assists; only an unattributed reason, ``bot_only``, reads it), else the
    oldest; the earliest by (time, id) among them. Chosen by the clicks alone, not by
    arrival, so a bound reached by flagged clicks never changes who wins."""
    flagged = [t for t, _ in clicks.values() if t.flagged]
    pool = flagged or [t for t, _ in clicks.values()]
    victim = min(pool, key=lambda t: (t.at, t.click_id))
    del clicks[victim.click_id]
    return victim


def _parked_key(okey: OrderKey) -> str:
    return f"{LEAD_PREFIX}{okey[0]}\x1f{okey[1]}"


def _touch(order: OrderPlaced) -> OrderTouch:
    survey = order.survey
    return OrderTouch(
        order.order_id,
        order.campaign_id,
        order.occurred_at,
        order.click_id,
        order.coupon_code,
        survey.affiliate_id if survey else None,
        survey.handle if survey else None,
    )


def live_touches(stream: LiveTouch) -> Callable[[OrderTouch, TermsVersion], bool]:
    """Which orders a stream's change concerns: those it now claims."""
    return lambda order, v: live_claims(stream, order, v.terms)


def handle_touches(handles: Collection[str]) -> Callable[[OrderTouch, TermsVersion], bool]:
    """Which orders new handle claims concern: those whose survey names one of them."""
    return lambda order, v: (
        order.survey_affiliate_id is None
        and order.survey_handle is not None
        and normalize_handle(order.survey_handle) in handles
    )


# What an order says that a copy of it may not change: what it pays and to whom, the
# fields the orders service compares for an order id sent again (``ORDER_TERMS_FIELDS``),
# and its currency (read with its amount). Its times, survey, customer and risk facts may
# differ between copies. How each field is read, on the order held and on the copy:
_FIELD_VALUES: dict[str, Callable[[OrderFacts | OrderPlaced], Any]] = {
    "amount_minor": lambda o: f"{o.amount_minor} {o.currency}",
    "kind": lambda o: o.kind,
    "action": lambda o: o.action,
    "non_commissionable_minor": lambda o: o.non_commissionable_minor,
    "items": lambda o: [[i.sku, i.category, i.quantity, i.price_minor] for i in o.items],
    "new_customer": lambda o: o.new_customer,
    "visitor_id": lambda o: o.visitor_id,
    "click_id": lambda o: o.click_id,
    "coupon_code": lambda o: normalize_coupon(o.coupon_code) if o.coupon_code else None,
}
# The amount first (the reason names the first field that differs), then the others in
# the orders service's order. A field appended there that is not read here fails the
# import (KeyError), so the worker never compares fewer fields than the orders service.
_ORDER_FIELDS = tuple(
    (name, _FIELD_VALUES[name])
    for name in ("amount_minor", *(f for f in ORDER_TERMS_FIELDS if f != "amount_minor"))
)


def _conflict_in(state: VisitorState | None, order: OrderPlaced) -> str:
    """``JoinPartition.conflicting_copy`` over the key's state ``state`` (None: none)."""
    if state is None:
        return ""
    okey = (order.campaign_id, order.order_id)
    pending = state.pending.get(okey)
    if pending is not None:
        return _order_conflict(pending[0], order)
    decided = state.decided.get(okey)
    if decided is None or decided.order is None:
        return ""
    return _order_conflict(decided.order, order)


def _order_conflict(held: OrderFacts | OrderPlaced, copy: OrderPlaced) -> str:
    """Why ``copy`` of the order ``held`` is refused: the first of ``_ORDER_FIELDS`` it
    changes ('' when it changes none)."""
    for name, value in _ORDER_FIELDS:
        was, says = value(held), value(copy)
        if was != says:
            if name != "amount_minor":
                was, says = json.dumps(was), json.dumps(says)
            return (
                f"{CONFLICTING_DUPLICATE}: order {copy.order_id} of campaign {copy.campaign_id}"
                f" was placed before with {name} {was} (event {held.event_id}); this one says"
                f" {says} (event {copy.event_id})"
            )
    return ""


def _click_conflict(held: ClickTouch, copy: Click) -> str:
    """Why ``copy`` of the click ``held`` is refused: it names another creator or campaign
    ('' when it names the same: a redelivery)."""
    if held.affiliate_id == copy.affiliate_id and held.campaign_id == copy.campaign_id:
        return ""
    return (
        f"{CONFLICTING_DUPLICATE}: click {copy.click_id} was recorded before for affiliate"
        f" {held.affiliate_id} of campaign {held.campaign_id}; this one says affiliate"
        f" {copy.affiliate_id} of campaign {copy.campaign_id} (event {copy.event_id})"
    )


def _eligible(click: ClickTouch, order_at: int, v: TermsVersion, terms: TermsLookup) -> bool:
    """In the window of an order at ``order_at`` (campaign and flags checked apart)."""
    window = min(v.terms.window_ms(click.affiliate_id), click_windows(terms)(click))
    return order_at - window <= click.at <= order_at


def click_windows(terms: TermsLookup) -> ClickWindow:
    """The clicking creator's window under the terms in force at the click (see
    ``afflux.shared.core.attribution.in_window``); no cut without terms for it."""

    def window(click: ClickTouch) -> int:
        version = terms(click.campaign_id, click.at)
        return MAX_EVENT_TIME_MS if version is None else version.terms.window_ms(click.affiliate_id)

    return window


def _kept_review_facts(click: Click, terms: TermsLookup) -> tuple[str, str]:
    """When its campaign reviews conversions: the start of the click's IP hash (same_ip)
    and its referrer's host if that is one of the review's coupon sites (coupon_site);
    else "" and "": other campaigns' clicks keep their state as small as before."""
    if not click.ip_hash and not click.referrer:
        return "", ""
    version = terms(click.campaign_id, click.occurred_at)
    review = None if version is None else version.terms.review
    if review is None:
        return "", ""
    return click.ip_hash[:IP_PREFIX], coupon_site_host(click.referrer, review.coupon_sites)


def encode_state(s: VisitorState) -> bytes:
    # Once per changed key and batch, so one pass over the clicks builds both the rows
    # (tuples: the same JSON arrays, cheaper to make) and the IP hashes.
    rows: list[tuple[str, str, str, int, bool, int]] = []
    ips: dict[str, str] | None = None
    sites: dict[str, str] | None = None
    for t, arrived in s.clicks.values():
        rows.append((t.click_id, t.affiliate_id, t.campaign_id, t.at, t.flagged, arrived))
        if t.ip_hash:
            if ips is None:
                ips = {}
            ips[t.click_id] = t.ip_hash
        if t.referrer_host:
            if sites is None:
                sites = {}
            sites[t.click_id] = t.referrer_host
    doc: dict[str, Any] = {"c": rows}
    if ips:  # beside the rows, so rows written before it read as before
        doc["i"] = ips
    if sites:
        doc["r"] = sites
    if s.pending:
        doc["p"] = [[o.model_dump(mode="json"), arrived] for o, arrived in s.pending.values()]
    if s.decided:
        doc["d"] = [_decided_row(c, o, d) for (c, o), d in s.decided.items()]
    if s.confirms:
        doc["w"] = [c.model_dump(mode="json") for c in s.confirms.values()]
    return compact_json_bytes(doc)


def decode_state(raw: bytes) -> VisitorState:
    doc = json.loads(raw)
    s = VisitorState()
    ips, sites = doc.get("i", {}), doc.get("r", {})
    for cid, aff, camp, at, *flags, arrived in doc.get("c", ()):
        # Rows written before "flagged" hold is_bot and is_duplicate instead.
        touch = ClickTouch(
            cid, _intern(aff), _intern(camp), at, any(flags), ips.get(cid, ""), sites.get(cid, "")
        )
        s.clicks[cid] = (touch, arrived)
    for payload, arrived in doc.get("p", ()):
        order = OrderPlaced.model_validate(payload)
        s.pending[(order.campaign_id, order.order_id)] = (order, arrived)
    for c, o, at, converted, confirmed, *rest in doc.get("d", ()):
        s.decided[(c, o)] = _decided_from(c, o, at, converted, confirmed, rest)
    for payload in doc.get("w", ()):
        confirm = LeadConfirmed.model_validate(payload)
        s.confirms[(confirm.campaign_id, confirm.order_id)] = confirm
    return s


def _decided_row(campaign: str, order_id: str, d: Decided) -> list[Any]:
    row: list[Any] = [campaign, order_id, d.at, d.converted, d.confirmed]
    if d.order is not None:
        w = d.winner
        click = w.click if w else None
        row.append(d.order.row())
        row.append(
            [
                w.affiliate_id,
                w.reason,
                click.click_id if click else None,
                click.at if click else None,
                w.corrected,
                *([w.stream_id] if w.stream_id else []),
            ]
            if w
            else None
        )
    return row


def _decided_from(
    campaign: str, order_id: str, at: int, converted: bool, confirmed: bool, rest: list[Any]
) -> Decided:
    if not rest:
        return Decided(at, converted, confirmed)
    row, w = rest
    (event_id, kind, action, amount, currency, visitor, customer, new, click_id, coupon) = row[:10]
    survey_affiliate, survey_handle = (row[10], row[11]) if len(row) > 10 else (None, None)
    items, non_commissionable = (row[12], row[13]) if len(row) > 12 else ((), 0)
    ip_hash, email_hash, referrer = (row[14], row[15], row[16]) if len(row) > 14 else (None,) * 3
    facts = OrderFacts(
        order_id,
        campaign,
        at,
        event_id,
        cast(OrderKind, _intern(kind)),
        action,
        amount,
        _intern(currency),
        visitor,
        customer,
        new,
        click_id,
        coupon,
        survey_affiliate,
        survey_handle,
        tuple(
            OrderItem(sku=sku, category=category, quantity=quantity, price_minor=price)
            for sku, category, quantity, price in items
        ),
        non_commissionable,
        ip_hash,
        email_hash,
        referrer,
    )
    winner = None
    if w is not None:
        affiliate, reason, cid, clicked_at, corrected, *stream = w
        touch = ClickTouch(cid, _intern(affiliate), campaign, clicked_at) if cid else None
        winner = Winner(_intern(affiliate), reason, touch, corrected, stream[0] if stream else None)
    return Decided(at, converted, confirmed, facts, winner)
