"""One campaign-period of the journal, kept up to date batch by batch.

``PeriodState.step(batch)`` is the ledger's decision: given what is loaded of a
campaign-period (its line records and the aggregates derived from them: each
creator's net sales in event-time order, their activity, click figures, the cap
scopes), it applies a batch of new facts and returns the postings to append and
the records to write. It touches only what the batch changes: the batch's lines,
the sales whose rank crosses a tier or milestone threshold, the creator's period
lines, and the lines whose cap pay moves. Nothing is recomputed for the whole
period and nothing posted is ever changed: a changed target gets a correction
posting that names the one it corrects.

The state is mutated in place (the store keeps it between batches, drops it when a
write fails, and derives it again from its records when the bound refuses a step:
every record a step changes is among its ``changed``, even when only its explanation
did); no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.engagement import ContentEvent, ContentState
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal import engagement_lines, review_lines, rules
from afflux.shared.core.journal.click_days import click_day_rule, click_days
from afflux.shared.core.journal.fill import CapScope, Key
from afflux.shared.core.journal.kpis import (
    ENGAGEMENT_LINE,
    Contribution,
    add_contribution,
    add_reach,
    kpi_contribution,
    reach_contribution,
)
from afflux.shared.core.journal.override_lines import (
    OverrideBook,
    override_components,
    posting_kind,
    posting_rule,
)
from afflux.shared.core.journal.records import LineRecord, Posting, RefundEntry
from afflux.shared.core.journal.review_lines import ReviewBook, ReviewFact
from afflux.shared.core.periods import day_of, period_bounds
from afflux.shared.core.products import refund_by_items
from afflux.shared.core.terms import TermsVersion, terms_in_force

RankKey = tuple[int, str, str]  # (time, conversion id, line id): ``rank_key``
# The rule of an older ledger's period click line, taken to zero by the day lines.
_CLICKS_BY_DAY = "clicks: paid by the day since (lines per UTC day)"
_K = TypeVar("_K", Key, RankKey)


@dataclass(frozen=True, slots=True)
class ClickFigures:
    """A creator's valid unique clicks in the period (no quality flag, each id once)."""

    affiliate_id: str
    unique_clicks: int
    first_at: int
    last_at: int
    # (day start ms, valid unique clicks that day): what the per-day click lines pay
    # (``click_days``); clicks counted before the ledger kept days fall on first_at's day.
    per_day: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class StepInput:
    conversions: tuple[ConversionFact, ...] = ()
    refunds: tuple[RefundFact, ...] = ()
    confirmations: tuple[tuple[str, str], ...] = ()  # (order id, confirmation event id)
    clicks: tuple[ClickFigures, ...] = ()  # the new figures of creators with new clicks
    content: tuple[ContentEvent, ...] = ()  # publications, snapshots, releases in topic order
    reviews: tuple[ReviewFact, ...] = ()  # decisions on conversions held for review
    # The standings of first orders whose lines are in earlier periods (order id, standing):
    # what their renewals here follow (``StepResult.first_orders`` of the order's period).
    first_orders: tuple[tuple[str, review_lines.Standing], ...] = ()


@dataclass(frozen=True, slots=True)
class StepResult:
    postings: tuple[Posting, ...]
    changed: tuple[LineRecord, ...]
    kpis: Mapping[str, int]  # counter -> increment (see ``kpis``)
    contents: tuple[ContentState, ...] = ()  # content states the batch changed
    # The orders here whose standing (hold, decision) the batch changed, held before or
    # now: what their renewals in later periods follow.
    first_orders: tuple[tuple[str, review_lines.Standing], ...] = ()


@dataclass(slots=True)
class CreatorState:
    net_sales: list[RankKey] = field(default_factory=list)  # ``rank_key``: the tiers' order
    counted: list[Key] = field(default_factory=list)  # the same sales by when they counted
    activity: list[Key] = field(default_factory=list)  # current conversions, when they counted
    clicks: ClickFigures | None = None
    scope: CapScope | None = None
    click_lines: set[str] = field(default_factory=set)  # the creator's click lines' ids


class PeriodState:
    def __init__(
        self, campaign_id: str, period: str, currency: str, versions: Sequence[TermsVersion]
    ) -> None:
        self.campaign_id = campaign_id
        self.period = period
        self.currency = currency
        self.versions = tuple(versions)
        self.start, self.end = period_bounds(period)
        opened = terms_in_force(self.versions, self.start)
        self.terms = opened.terms  # the period terms: caps and period lines
        self.terms_version = opened.version
        self.lock = self.terms.lock_days * MS_PER_DAY
        self.thresholds = self._thresholds()
        self.lines: dict[str, LineRecord] = {}
        self.by_order: dict[str, list[str]] = defaultdict(list)
        self.confirmations: dict[str, str] = {}
        self.creators: dict[str, CreatorState] = defaultdict(self._new_creator)
        budget = self.terms.plan.campaign_budget_minor
        self.budget = None if budget is None else CapScope(budget)
        self.seq = 0  # postings written so far
        self.contents: dict[str, ContentState] = {}  # <platform>:<content_id> -> its state
        self._ids: dict[tuple[str, ...], str] = {}  # period lines' derived ids
        self.override_book = OverrideBook(self.terms.overrides)  # agency override caps
        self.review_book = ReviewBook(self.versions)  # what burst counts
        # line id -> when it began to count (review_lines.counted_at), for each conversion
        # line in a creator's ``counted`` or ``activity``: where to find it to move it.
        self.moments: dict[str, int] = {}
        # first order id -> the renewal lines of its subscription in the period
        self.renewals: dict[str, set[str]] = defaultdict(set)
        # first order id -> its standing in its own (earlier) period, as last given
        self.outside: dict[str, review_lines.Standing] = {}

    def opened_under(self, versions: Sequence[TermsVersion]) -> bool:
        """Whether ``versions`` give the period the terms it opened with (the version in
        force at its start): not when a version in force from its start was read only
        after the period was opened."""
        return terms_in_force(versions, self.start).version == self.terms_version

    def use_versions(self, versions: Sequence[TermsVersion]) -> None:
        """Terms published since the state was loaded: a conversion names the version it
        was decided under. The period terms (in force when it opened) stay."""
        if len(versions) != len(self.versions) or tuple(versions) != self.versions:
            self.versions = tuple(versions)
            self.thresholds = self._thresholds()

    def _thresholds(self) -> list[int]:
        """The net-sale ranks where a sale's pay can change: tier starts, milestones."""
        return sorted(
            {t.from_sales for v in self.versions for t in v.terms.plan.tiers}
            | {m.at_sales for m in self.terms.plan.milestones}
        )

    def _new_creator(self) -> CreatorState:
        cap = self.terms.plan.creator_cap_minor
        return CreatorState(scope=None if cap is None else CapScope(cap))

    # -- loading ---------------------------------------------------------------

    @classmethod
    def load(
        cls,
        campaign_id: str,
        period: str,
        currency: str,
        versions: Sequence[TermsVersion],
        records: Iterable[LineRecord],
        clicks: Iterable[ClickFigures],
        confirmations: Mapping[str, str],
        seq: int,
        contents: Iterable[ContentState] = (),
    ) -> PeriodState:
        """The state of a stored period, its aggregates derived from its records."""
        state = cls(campaign_id, period, currency, versions)
        state.seq = seq
        state.contents = {c.key: c for c in contents}
        state.confirmations = dict(confirmations)
        for figures in clicks:
            state.creators[figures.affiliate_id].clicks = figures
        by_creator: dict[str, list[tuple[Key, int]]] = defaultdict(list)
        in_budget: list[tuple[Key, int]] = []
        for record in records:
            state.lines[record.line_id] = record
            creator = state.creators[record.affiliate_id]
            if record.kind == "click":
                creator.click_lines.add(record.line_id)
            if record.order_id is not None and record.kind in CONVERSION_LINE_KINDS:
                state.by_order[record.order_id].append(record.line_id)
            if record.conversion is not None and record.conversion.first_order_id:
                state.renewals[record.conversion.first_order_id].add(record.line_id)
            moment = (review_lines.counted_at(record), record.line_id)
            if record.in_net_sales:
                creator.net_sales.append(rank_key(record))
                creator.counted.append(moment)
            if record.in_activity:
                creator.activity.append(moment)
            if record.in_net_sales or record.in_activity:
                state.moments[record.line_id] = moment[0]
            if record.scope_key is not None and record.override is None:
                by_creator[record.affiliate_id].append((record.scope_key, record.net))
                in_budget.append((record.scope_key, record.creator_paid))
        for creator_id, creator in state.creators.items():
            creator.net_sales.sort()
            creator.counted.sort()
            creator.activity.sort()
            if creator.scope is not None:
                creator.scope = CapScope.build(creator.scope.cap, by_creator[creator_id])
        if state.budget is not None:
            state.budget = CapScope.build(state.budget.cap, in_budget)
        for record in state.lines.values():
            c = record.conversion
            if (
                c is not None
                and c.first_order_id
                and record.follows is not None
                and state.first_order(c.first_order_id) is None
            ):
                state.outside[c.first_order_id] = record.follows
        state.override_book.load(state.lines.values())
        state.review_book.load(state.lines.values())
        return state

    # -- the step --------------------------------------------------------------

    def step(self, batch: StepInput) -> StepResult:
        before: dict[str, Contribution] = {}  # line id -> KPI contribution before the batch
        was: dict[str, tuple[object, ...]] = {}  # line id -> its record before the batch
        dirty: set[str] = set()
        creators: dict[str, int] = defaultdict(int)  # creator -> net-sale moves
        orders: dict[str, review_lines.Standing | None] = {}  # order -> standing before

        def touch(record: LineRecord) -> None:
            order = record.order_id
            if order is not None and record.kind != "renewal" and order not in orders:
                orders[order] = self.first_order(order)
            if record.line_id not in before:
                before[record.line_id] = kpi_contribution(record, self.end)
                was[record.line_id] = _snapshot(record)
            dirty.add(record.line_id)

        for c in batch.conversions:
            record = self._conversion_record(c.conversion_id, c.affiliate_id)
            touch(record)
            record.conversion = c
            record.affiliate_id = c.affiliate_id
            record.order_id = c.order_id
            record.kind = c.kind if c.kind in ("sale", "lead", "renewal") else "action"
            record.time = c.occurred_at
            record.terms_version = c.terms_version
            record.approve_at = c.occurred_at + rules.lock_ms(self.versions, c.terms_version)
            record.confirmation = self.confirmations.get(c.order_id)
            if record.line_id not in self.by_order[c.order_id]:
                self.by_order[c.order_id].append(record.line_id)
            if c.first_order_id:
                self.renewals[c.first_order_id].add(record.line_id)
        for r in batch.refunds:
            record = self._conversion_record(r.conversion_id, "")
            touch(record)
            entry = RefundEntry(
                r.reversal_id, r.event_id, r.amount_minor, r.occurred_at, r.reason, r.items
            )
            if entry not in record.refunds:
                record.refunds = tuple(
                    sorted((*record.refunds, entry), key=lambda e: (e.occurred_at, e.reversal_id))
                )
        for order, event_id in batch.confirmations:
            self.confirmations[order] = event_id
            for line_id in self.by_order.get(order, ()):
                record = self.lines[line_id]
                touch(record)
                record.confirmation = event_id
        for figures in batch.clicks:
            self.creators[figures.affiliate_id].clicks = figures
            creators[figures.affiliate_id] += 0  # its click and base-fee lines

        for f in batch.reviews:
            record = self._conversion_record(f.conversion_id, "")
            touch(record)
            review_lines.take(record, f)
        self.review_book.judge(self.versions, self.lines, dirty, touch)
        for order, standing in batch.first_orders:
            self.outside[order] = standing
        self._follow_first_orders(dirty, touch, {o for o, _ in batch.first_orders})
        first_orders = self._changed_first_orders(orders)

        # Membership in each creator's net sales and activity (a held line only once
        # approved, from the approval on); every creator with a changed conversion gets
        # its period lines looked at again.
        for line_id in list(dirty):
            record = self.lines[line_id]
            if record.conversion is None:
                continue
            creator = self.creators[record.affiliate_id]
            counts = review_lines.counts(record)
            moment = review_lines.counted_at(record)
            old = (self.moments.get(line_id, moment), line_id)
            new = (moment, line_id)
            net = rules.is_net_sale(record, self.end) and counts
            if net != record.in_net_sales:
                _toggle(creator.net_sales, rank_key(record), net)
                creators[record.affiliate_id] += 1
            _move(creator.counted, record.in_net_sales, net, old, new)
            record.in_net_sales = net
            active = not rules.is_superseded(record) and counts
            _move(creator.activity, record.in_activity, active, old, new)
            record.in_activity = active
            if net or active:
                self.moments[line_id] = moment
            else:
                self.moments.pop(line_id, None)
            creators[record.affiliate_id] += 0

        # Sales whose rank may have crossed a threshold (tiers, milestones).
        for creator_id, moves in creators.items():
            if not moves:
                continue
            sales = self.creators[creator_id].net_sales
            for threshold in self.thresholds:
                for index in range(max(0, threshold - moves - 1), threshold + moves - 1):
                    if index < len(sales):
                        other = self.lines[sales[index][2]]
                        touch(other)

        changed_keys: set[str] = set()
        for line_id in sorted(dirty):
            record = self.lines[line_id]
            if record.conversion is not None:
                self._price_conversion(record)
            changed_keys.add(line_id)
        for creator_id in sorted(creators):
            for record in self._period_lines(creator_id, touch):
                touch(record)
                changed_keys.add(record.line_id)

        # Each content's reach before the batch: its creator's counters move by the difference.
        reach_before = {e.key: reach_contribution(self.contents.get(e.key)) for e in batch.content}
        changed_contents = engagement_lines.fold_events(self.contents, batch.content, self.versions)
        for record in self._engagement_lines(changed_contents, touch):
            touch(record)
            changed_keys.add(record.line_id)

        moved = self._fill(changed_keys)
        # Agency overrides follow every line whose pay may have moved.
        moved |= self.override_book.follow(self.lines, dirty | moved, rules.components, touch)
        result = self._post(dirty | moved, before, was)
        if first_orders:
            result = replace(result, first_orders=first_orders)
        if not changed_contents:
            return result
        kpis = dict(result.kpis)
        for content in sorted(changed_contents):
            add_reach(
                kpis, reach_before.get(content, ()), reach_contribution(self.contents[content])
            )
        return replace(
            result,
            kpis=kpis,
            contents=tuple(self.contents[k] for k in sorted(changed_contents)),
        )

    def _follow_first_orders(
        self, dirty: set[str], touch: Callable[[LineRecord], None], given: set[str]
    ) -> None:
        """The renewals whose line or first order's line the batch changed, or whose first
        order's standing it ``given``, take that order's standing (held, approved,
        declined): its line's here, else the one its own period gave."""
        renewals: set[str] = set()
        for order in given:
            renewals |= self.renewals.get(order, set())
        for line_id in list(dirty):
            record = self.lines[line_id]
            c = record.conversion
            if c is None:
                continue
            if c.first_order_id:
                renewals.add(line_id)
            if record.order_id in self.renewals:
                renewals |= self.renewals[record.order_id]
        for line_id in sorted(renewals):
            record = self.lines[line_id]
            c = record.conversion
            if c is None or not c.first_order_id:
                continue
            first = self.first_order(c.first_order_id)
            if first is None:
                first = self.outside.get(c.first_order_id)
            self.review_book.follow(self.versions, record, first, touch)

    def _changed_first_orders(
        self, orders: Mapping[str, review_lines.Standing | None]
    ) -> tuple[tuple[str, review_lines.Standing], ...]:
        out = []
        for order, was in sorted(orders.items()):
            now = self.first_order(order)
            if now == was:
                continue
            if (was is not None and was[0]) or (now is not None and now[0]):
                out.append((order, now if now is not None else ((), None)))
        return tuple(out)

    def first_order(self, order_id: str) -> review_lines.Standing | None:
        """The standing of the order's current conversion line (a renewal's first order),
        None when the period has none."""
        for line_id in sorted(self.by_order.get(order_id, ())):
            record = self.lines[line_id]
            c = record.conversion
            if c is None or c.kind == "renewal" or rules.is_superseded(record):
                continue
            return review_lines.first_order_standing(record)
        return None

    def _engagement_lines(
        self, changed: set[str], touch: Callable[[LineRecord], None]
    ) -> list[LineRecord]:
        """The engagement lines of the changed contents (of all the creator's contents of
        the period, when its minimum is per creator and period), as they should be now;
        each touched before it changes, so that a new explanation alone is written too."""
        creators = {
            p.affiliate_id for k in changed if (p := self.contents[k].publication) is not None
        }
        out: list[LineRecord] = []
        for creator_id, states in engagement_lines.by_creator(self.contents).items():
            if creator_id not in creators:
                continue
            total = engagement_lines.creator_interactions(states)
            for state in states:
                plan = engagement_lines.plan_of(self.versions, state)
                per_creator = plan is not None and plan.minimum_scope == "creator_period"
                if state.key not in changed and not per_creator:
                    continue
                line_id = engagement_lines.engagement_line_id(self.campaign_id, state.key)
                found = engagement_lines.priced(self.versions, state, total)
                if found is None or (plan is None and line_id not in self.lines):
                    continue
                pay, approve_at, version = found
                assert state.publication is not None
                record = self.lines.get(line_id)
                if record is None or record.affiliate_id != creator_id:
                    # New, or a squat the brand's publication took over in its own period
                    # (``TakenOver``): the squat's line never paid (held since publication),
                    # and the content's line is now its author's.
                    record = self.lines[line_id] = LineRecord(line_id, creator_id, "engagement")
                touch(record)
                record.gross = record.net = pay.amount_minor
                record.time = state.publication.published_at
                record.approve_at = approve_at
                record.rule = pay.rule
                record.terms_version = version
                latest = state.latest
                record.sources = (
                    (state.publication.event_id,)
                    + ((latest.event_id,) if latest is not None else ())
                    + ((state.released,) if state.released else ())
                )
                out.append(record)
        return out

    def _conversion_record(self, conversion_id: str, affiliate_id: str) -> LineRecord:
        line_id = derived_id("line", conversion_id)
        record = self.lines.get(line_id)
        if record is None:
            record = self.lines[line_id] = LineRecord(line_id, affiliate_id, "")
        return record

    def _price_conversion(self, record: LineRecord) -> None:
        c = record.conversion
        assert c is not None
        rank = None
        if record.in_net_sales:
            sales = self.creators[record.affiliate_id].net_sales
            rank = bisect_left(sales, rank_key(record)) + 1
        gross = rules.conversion_gross(record, self.versions, rank)
        priced = rules.survey_reduced(gross, record, self.versions)
        record.gross, record.rule = priced if priced is not None else (0, "earns nothing")
        review_lines.priced(record)
        record.sources = (
            (c.event_id,)
            + ((record.confirmation,) if record.confirmation else ())
            + tuple(r.event_id for r in record.refunds)
        )
        cuts = rules.reductions(record)
        record.net = record.gross - cuts.total()
        if cuts.notes:
            record.rule += "; " + "; ".join(cuts.notes)

    def _period_lines(
        self, creator_id: str, touch: Callable[[LineRecord], None]
    ) -> list[LineRecord]:
        """The creator's click, base-fee and bonus lines as they should be now (a line
        no longer earned stays, at zero, so its postings are reversed); each touched
        before it changes, so that a new explanation alone (a count past the paid-click
        cap, a later click window) is written too."""
        creator = self.creators[creator_id]
        plan = self.terms.plan
        out: list[LineRecord] = []
        figures = creator.clicks
        if plan.click is not None or figures is not None:
            out += self._click_lines(touch, creator_id, figures)
        fee = plan.base_fee_minor or 0
        base_id = self._line_id("base_fee", self.campaign_id, self.period, creator_id)
        if fee or base_id in self.lines:
            first = [creator.activity[0][0]] if creator.activity else []
            if figures is not None and figures.unique_clicks > 0:
                first.append(figures.first_at)
            at = min(first) if first and fee else None
            out.append(
                self._period_line(
                    touch,
                    ("base_fee", self.campaign_id, self.period, creator_id),
                    creator_id,
                    "base_fee",
                    fee if at is not None else 0,
                    at if at is not None else self.lines.get(base_id, _NO_LINE).time,
                    f"base fee {fee} for the period",
                    self._fee_sources(creator, at) if at is not None else (),
                )
            )
        # A milestone is reached when its n-th net sale counts: the n-th by when they
        # counted (a sale at its time, a held one at its approval), so a bonus that held
        # sales bring waits for their approval, and one approval never dates it later.
        sales = creator.counted
        for milestone in plan.milestones:
            bonus_id = self._line_id(
                "bonus", self.campaign_id, self.period, creator_id, str(milestone.at_sales)
            )
            reached = len(sales) >= milestone.at_sales
            if not reached and bonus_id not in self.lines:
                continue
            if reached:
                at, sale_line = sales[milestone.at_sales - 1]
                sale = self.lines[sale_line].conversion
                sources: tuple[str, ...] = (sale.event_id,) if sale is not None else ()
            else:  # no longer reached: it still names the sale that had reached it
                at, sources = self.lines[bonus_id].time, self.lines[bonus_id].sources
            out.append(
                self._period_line(
                    touch,
                    (
                        "bonus",
                        self.campaign_id,
                        self.period,
                        creator_id,
                        str(milestone.at_sales),
                    ),
                    creator_id,
                    "bonus",
                    milestone.bonus_minor if reached else 0,
                    at,
                    f"milestone bonus at {milestone.at_sales} net sales"
                    + ("" if reached else " (net sales fell below it before the period ended)"),
                    sources,
                )
            )
        return out

    def _click_lines(
        self,
        touch: Callable[[LineRecord], None],
        creator_id: str,
        figures: ClickFigures | None,
    ) -> list[LineRecord]:
        """The creator's per-click lines, one per UTC day with valid clicks
        (``click_days``); every other day of the period whose line exists (a ledger
        written before days were kept had one line for the period, at its first click)
        stays, at zero."""
        plan = self.terms.plan.click
        days = (
            click_days(
                figures.per_day,
                figures.unique_clicks,
                figures.first_at,
                plan.paid_click_cap,
            )
            if plan is not None and figures is not None and figures.unique_clicks > 0
            else []
        )
        out: list[LineRecord] = []
        current: set[str] = set()
        per_click = plan.per_click_minor if plan is not None else 0
        cap = plan.paid_click_cap if plan is not None else None
        for day in days:
            date = day_of(day.day_start)
            parts = ("click", self.campaign_id, self.period, creator_id, date)
            line_id = self._line_id(*parts)
            current.add(line_id)
            rule = click_day_rule(date, day, per_click, cap)
            gross, at = day.paid * per_click, day.line_time
            if self._unchanged(line_id, gross, at, rule):
                continue  # a day without new clicks: most of them, in a batch
            out.append(
                self._period_line(
                    touch,
                    parts,
                    creator_id,
                    "click",
                    gross,
                    at,
                    rule,
                    # The tally window the line pays for (clicks have no event to name).
                    (f"clicks:{day.day_start}..{day.line_time}",),
                )
            )
        known = self.creators[creator_id].click_lines
        known.update(current)
        for line_id in sorted(known - current):
            record = self.lines[line_id]
            if self._unchanged(line_id, 0, record.time, _CLICKS_BY_DAY):
                continue
            touch(record)
            record.gross = record.net = 0
            record.rule = _CLICKS_BY_DAY
            record.terms_version = self.terms_version
            out.append(record)
        return out

    def _unchanged(self, line_id: str, gross: int, at: int, rule: str) -> bool:
        """Whether the period line stands as ``_period_line`` would set it already."""
        record = self.lines.get(line_id)
        return (
            record is not None
            and record.gross == gross
            and record.time == at
            and record.approve_at == at + self.lock
            and record.rule == rule
            and record.terms_version == self.terms_version
        )

    def _line_id(self, *parts: str) -> str:
        line_id = self._ids.get(parts)
        if line_id is None:
            line_id = self._ids[parts] = derived_id("line", *parts)
        return line_id

    def _fee_sources(self, creator: CreatorState, at: int) -> tuple[str, ...]:
        """What made the creator active in the period at ``at``: their first counted
        conversion's event, else the click tally window (as the click line names it)."""
        if creator.activity and creator.activity[0][0] == at:
            conversion = self.lines[creator.activity[0][1]].conversion
            if conversion is not None:
                return (conversion.event_id,)
        figures = creator.clicks
        if figures is not None and figures.unique_clicks > 0 and figures.first_at == at:
            return (f"clicks:{figures.first_at}..{figures.last_at}",)
        return ()

    def _period_line(
        self,
        touch: Callable[[LineRecord], None],
        parts: tuple[str, ...],
        creator_id: str,
        kind: str,
        gross: int,
        at: int,
        rule: str,
        sources: tuple[str, ...],
    ) -> LineRecord:
        line_id = self._line_id(*parts)
        record = self.lines.get(line_id)
        if record is None:
            record = self.lines[line_id] = LineRecord(line_id, creator_id, kind)
        touch(record)
        record.gross = record.net = gross
        record.time = at
        record.approve_at = at + self.lock
        record.rule = rule
        record.terms_version = self.terms_version
        record.sources = sources
        return record

    # -- caps ------------------------------------------------------------------

    def _fill(self, changed: set[str]) -> set[str]:
        """Put the changed lines in their scopes; set what every line whose pay moved
        is paid now (creator cap first, then the campaign budget over what it left)."""
        by_creator: dict[str, set[str]] = defaultdict(set)
        for line_id in changed:
            by_creator[self.lines[line_id].affiliate_id].add(line_id)
        budget_changed: set[str] = set()
        for creator_id, line_ids in by_creator.items():
            scope = self.creators[creator_id].scope
            if scope is None:
                for line_id in line_ids:
                    record = self.lines[line_id]
                    budget_changed.add(line_id)
                    record.creator_paid = record.net
                continue
            scope.touched.clear()
            for line_id in sorted(line_ids):
                record = self.lines[line_id]
                scope.set(line_id, (record.time, line_id), record.net)
            for line_id in scope.touched | line_ids:
                record = self.lines[line_id]
                paid = scope.paid(line_id)
                if paid != record.creator_paid or line_id in line_ids:
                    record.creator_paid = paid
                    budget_changed.add(line_id)
        for line_id in budget_changed:
            record = self.lines[line_id]
            record.scope_key = (record.time, line_id) if record.net > 0 else None
        if self.budget is None:
            for line_id in budget_changed:
                self.lines[line_id].paid = self.lines[line_id].creator_paid
            return budget_changed
        self.budget.touched.clear()
        for line_id in sorted(budget_changed):
            record = self.lines[line_id]
            self.budget.set(line_id, (record.time, line_id), record.creator_paid)
        moved = set(budget_changed)
        for line_id in self.budget.touched | budget_changed:
            record = self.lines[line_id]
            paid = self.budget.paid(line_id)
            if paid != record.paid or line_id in budget_changed:
                record.paid = paid
                moved.add(line_id)
        return moved

    # -- postings --------------------------------------------------------------

    def _post(
        self,
        lines: set[str],
        before: dict[str, Contribution],
        was: dict[str, tuple[object, ...]],
    ) -> StepResult:
        postings: list[Posting] = []
        changed: list[LineRecord] = []
        kpis: dict[str, int] = defaultdict(int)
        for line_id in sorted(lines):
            record = self.lines[line_id]
            made = self._post_line(record)
            postings += made
            if made or was.get(line_id) != _snapshot(record):  # unchanged: nothing to write
                changed.append(record)
            new = kpi_contribution(record, self.end)
            old = before.get(line_id, new)  # a line only re-capped keeps its facts
            _add_kpis(kpis, record, old, new, made)
        return StepResult(tuple(postings), tuple(changed), dict(kpis))

    def _post_line(self, record: LineRecord) -> list[Posting]:
        targets = override_components(record) if record.override else rules.components(record)
        out: list[Posting] = []
        for component in sorted(set(targets) | set(record.posted)):
            target = targets.get(component, 0)
            posted, last = record.posted.get(component, (0, ""))
            if target == posted:
                continue
            name, approve_at = component
            amount = target - posted
            record.postings += 1
            self.seq += 1
            posting = Posting(
                # The line's id is already a digest of its sources: its n-th posting is
                # named by the number, the same on every replay of the same arrival.
                posting_id=f"{record.line_id}.{record.postings}",
                seq=self.seq,
                line_id=record.line_id,
                affiliate_id=record.affiliate_id,
                campaign_id=self.campaign_id,
                period=self.period,
                currency=self.currency,
                kind=_kind(record, name, posted, target, targets),
                line_kind=record.kind,
                component=name,
                amount_minor=amount,
                approve_at=approve_at,
                # The line's time for its own component (the lock after it is fixed, so a
                # moved line's old component keeps its old date); the refund's for a clawback.
                occurred_at=(
                    approve_at
                    if name.startswith("clawback")
                    else review_lines.line_time(record, approve_at)
                ),
                rule=_why(record, name, posted, target),
                # A cap's cut or release is the period's terms' doing (caps are the terms
                # in force when it opened), whatever version priced the line.
                terms_version=(
                    self.terms_version if name.startswith("cap:") else record.terms_version
                ),
                order_id=record.order_id,
                source_event_ids=record.sources,
                corrects=last or None,
            )
            out.append(posting)
            if target:
                record.posted[component] = (target, posting.posting_id)
            else:
                record.posted[component] = (0, posting.posting_id)
        return out


_NO_LINE = LineRecord("", "", "")
CONVERSION_LINE_KINDS = ("sale", "lead", "action", "renewal", "")  # "": conversion still due


def _snapshot(record: LineRecord) -> tuple[object, ...]:
    """What a record holds beyond its postings (which change it whenever they are made)."""
    return (
        record.affiliate_id,
        record.kind,
        record.time,
        record.approve_at,
        record.conversion,
        record.refunds,
        record.confirmation,
        record.gross,
        record.net,
        record.creator_paid,
        record.paid,
        record.rule,
        record.sources,
        record.in_net_sales,
        record.in_activity,
        record.scope_key,
        record.mirrored,
        record.review,
        record.held,
        record.follows,
    )


def _move(keys: list[Key], was_in: bool, now_in: bool, old: Key, new: Key) -> None:
    """A line's place in the sorted ``keys``: out at ``old`` if it was in, in at ``new``
    if it is now (nothing when it stays in at the same place, or stays out)."""
    if was_in == now_in and (not now_in or old == new):
        return
    if was_in:
        _toggle(keys, old, False)
    if now_in:
        _toggle(keys, new, True)


def rank_key(record: LineRecord) -> RankKey:
    """A sale's place among its creator's net sales: event time, ties by conversion id (as
    the rules say, so that two sales of one millisecond rank the same on every replay and
    in the batch reference), then the line id."""
    conversion = record.conversion
    return (record.time, conversion.conversion_id if conversion else "", record.line_id)


def _toggle(keys: list[_K], key: _K, present: bool) -> None:
    if present:
        insort(keys, key)
    else:
        index = bisect_left(keys, key)
        if index < len(keys) and keys[index] == key:
            del keys[index]


_FIRST = {
    "click": "click_pay",
    "base_fee": "base_fee",
    "bonus": "bonus",
    "engagement": "engagement_pay",
}
_GONE = {
    "base_fee": "base_fee_reversal",
    "bonus": "bonus_reversal",
    "engagement": "engagement_reversal",
}


def _kind(
    record: LineRecord,
    name: str,
    posted: int,
    target: int,
    targets: Mapping[tuple[str, int], int],
) -> str:
    if record.override:
        return posting_kind(name, posted, target)
    if name == "accrual":
        if posted == 0:
            return _FIRST.get(record.kind, "accrual")
        if target == 0:
            if any(n == "accrual" for n, _ in targets):
                return "moved"
            if review_lines.is_declined(record):
                return "review_decline"
            return _GONE.get(record.kind, "reversal")
        if record.kind == "sale":
            return "tier_adjustment"
        if record.kind == "engagement":
            return "engagement_correction"
        return "click_pay" if record.kind == "click" else "adjustment"
    if name == "refund":
        return "refund_reduction"
    if name.startswith("clawback"):
        return "clawback"
    return "cap_cut" if target < posted else "cap_release"


def _why(record: LineRecord, name: str, posted: int, target: int) -> str:
    if record.override:
        return posting_rule(record, name, posted, target)
    if name == "accrual":
        if posted and target and record.kind == "sale":
            return f"{record.rule}, re-ranked (was {posted})"
        if posted and record.kind == "engagement":
            return f"{record.rule} (was {posted})"
        if target or not record.gross:  # a period line that lapsed says why in its rule
            return record.rule
        return f"moved: {record.rule}"
    if name == "refund":
        return "reduced before approval: " + record.rule
    if name.startswith("clawback"):
        reversal = name.partition(":")[2]
        found = [
            (r, a)
            for r, a in zip(record.refunds, rules.applied_refunds(record), strict=True)
            if r.reversal_id == reversal
        ]
        if found and found[0][0].reason == rules.REATTRIBUTED:
            return f"clawback: {rules.REATTRIBUTED_RULE}, after approval"
        amount = found[0][1] if found else 0  # what it takes of the order, capped
        c = record.conversion
        # As a refund before approval says it (journal.rules): priced per item it named,
        # not on its amount (a 60.00 refund of a sku at another rate took back 9.00, not
        # the 6.60 its amount's share would, and the rule did not say why).
        by_item = (
            found
            and c is not None
            and refund_by_items(amount, c.items, c.non_commissionable_minor, found[0][0].items)
        )
        return f"clawback: refund of {amount} after approval" + (
            " (pro rata per item)" if by_item else ""
        )
    scope = name.partition(":")[2]
    if target < posted:
        return f"cut: the {scope} cap is used up by earlier lines of the period"
    return f"released: {scope} cap room freed by a refund, a reversal or a re-rank"


def _add_kpis(
    kpis: dict[str, int],
    record: LineRecord,
    old: Contribution,
    new: Contribution,
    postings: Sequence[Posting],
) -> None:
    add_contribution(kpis, record, old, new)
    for posting in postings:
        if record.kind == ENGAGEMENT_LINE:  # its postings: a cap's re-fill moves them too
            kpis[f"engagement_pay|{record.affiliate_id}"] += posting.amount_minor
        kpis[f"commission|{record.affiliate_id}"] += posting.amount_minor
        day = day_of(posting.occurred_at)
        kpis[f"commission|{record.affiliate_id}|{day}"] += posting.amount_minor
        if record.override:  # what the brand pays the agency on this creator's pay
            kpis[f"override_on|{record.override[1]}|{record.affiliate_id}"] += posting.amount_minor
