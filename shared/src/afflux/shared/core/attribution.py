"""The attribution choice: which creator earned an order (DESIGN §3), as pure functions.

Inputs are frozen values: the visitor's click touches, the order, and the
campaign terms in force at the order's event time (``terms.terms_in_force``).
Nothing here knows Kafka, Faust or time of day; the worker and the batch oracle
feed it events.

Rules, in order:

* A click is *eligible* for an order when it is in the order's campaign, is not
  flagged (bot, duplicate, ip_duplicate, rate, embedded: any reason), and
  ``order.at - window <= click.at <= order.at``
  where ``window`` is the clicking creator's window (their override, else the
  campaign's) under the terms in force at the order, and no longer than their window
  under the terms in force at the click (``ClickWindow``): a click's cookie expires
  by the terms it was set under, so a later version lengthening the window counts
  the clicks made under it, not cookies that had expired (whose clicks the worker
  may have pruned: a replay knowing every version would otherwise differ).
* The campaign's precedence steps are tried in turn (default click_id, coupon,
  cookie). ``click_id``: the order names a click and that click is eligible; a
  named click that is unknown or not eligible does not win, the next step is
  tried. ``coupon``: the coupon code belongs to a creator. ``cookie``: the
  visitor's eligible clicks by the campaign's model.
* Models and ties: eligible clicks are ordered by (time, click id);
  ``last_click`` takes the last, ``first_click`` the first.
* Assists: for every other creator with an eligible click, that creator's pick
  under the same model, ordered by (time, click id).
* ``livestream`` (only when the precedence lists it): a live stream of the order's
  campaign with ``started_at <= order.at <= ended_at + tail`` claims it; of several,
  the terms' ``overlap`` picks (latest or earliest started, ties by stream id). A
  stream its creator published with its own key is ``held`` until the brand releases
  it and claims nothing until then.
* Survey: an order no step claims, carrying a survey answer that names a creator
  (directly, or by a handle of the terms or of the creator's content), is the
  named creator's with rule ``survey`` when the terms' survey mode attributes.
* No winner: the reason says why (see ``unattributed_reason``).
* Settled: a winner that no further click can change (``settled_winner``) is decided
  without waiting for late clicks, and lists no assists (see there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from afflux.shared.core.frozen import quick_init
from afflux.shared.core.ids import derived_id
from afflux.shared.core.terms import (
    AttributionModel,
    CampaignTerms,
    TermsVersion,
    normalize_handle,
    terms_in_force,
)

WinReason = Literal["click_id", "coupon", "cookie", "livestream", "survey"]
NoWinReason = Literal[
    "no_click",
    "outside_window",
    "bot_only",
    "unknown_click",
    "other_campaign",
    "cookie_not_in_precedence",
]


@quick_init
@dataclass(frozen=True, slots=True)
class ClickTouch:
    """What the join keeps of a click."""

    click_id: str
    affiliate_id: str
    campaign_id: str
    at: int
    flagged: bool = False  # flagged for any reason (``ClickRecorded.flagged``): never wins
    # The start of the click's IP hash, kept only for campaigns whose terms review
    # conversions (risk signal same_ip, core.review); "" otherwise.
    ip_hash: str = ""
    # The host of the click's referrer when it is one of the campaign's review
    # ``coupon_sites`` (risk signal coupon_site: "or a click's" referrer); "" otherwise.
    referrer_host: str = ""


@dataclass(frozen=True, slots=True)
class LiveTouch:
    """A creator's live stream: ``stream_id`` is ``<platform>:<content_id>``."""

    stream_id: str
    affiliate_id: str
    campaign_id: str
    started_at: int
    ended_at: int
    # Published with its creator's own key and not released by the brand yet
    # (``afflux.shared.core.content.held_for_release``): it claims no order until then.
    held: bool = False


@quick_init
@dataclass(frozen=True, slots=True)
class OrderTouch:
    """What the choice needs of an order; ``survey_*``: its survey answer, if any."""

    order_id: str
    campaign_id: str
    at: int
    click_id: str | None = None
    coupon_code: str | None = None
    survey_affiliate_id: str | None = None
    survey_handle: str | None = None


@dataclass(frozen=True, slots=True)
class Content:
    """What creators' content tells the choice: live streams, and handles (normalised
    handle -> affiliate id, see ``content_handles``)."""

    streams: tuple[LiveTouch, ...] = ()
    handles: Mapping[str, str] | None = None


NO_CONTENT = Content()


@dataclass(frozen=True, slots=True)
class Attributed:
    affiliate_id: str
    reason: WinReason
    window_ms: int
    click: ClickTouch | None
    assists: tuple[ClickTouch, ...]
    stream: LiveTouch | None = None  # the winning live stream (rule livestream)


@dataclass(frozen=True, slots=True)
class Unattributed:
    reason: NoWinReason


Decision = Attributed | Unattributed

# The clicking creator's cookie window under the terms in force at the click's time.
ClickWindow = Callable[[ClickTouch], int]


def click_windows(versions: Sequence[TermsVersion]) -> ClickWindow:
    """``ClickWindow`` over one campaign's ``versions`` (non-empty)."""
    return lambda click: terms_in_force(versions, click.at).terms.window_ms(click.affiliate_id)


def in_window(
    click: ClickTouch,
    order: OrderTouch,
    terms: CampaignTerms,
    click_window: ClickWindow | None = None,
) -> bool:
    """``order.at - window <= click.at <= order.at`` with the creator's window at the
    order, cut to their window at the click when ``click_window`` tells it."""
    if not order.at - terms.window_ms(click.affiliate_id) <= click.at <= order.at:
        return False
    return click_window is None or order.at - click_window(click) <= click.at


def is_eligible(
    click: ClickTouch,
    order: OrderTouch,
    terms: CampaignTerms,
    click_window: ClickWindow | None = None,
) -> bool:
    return (
        click.campaign_id == order.campaign_id
        and not click.flagged
        and in_window(click, order, terms, click_window)
    )


def pick(clicks: Sequence[ClickTouch], model: AttributionModel) -> ClickTouch:
    """The model's click among ``clicks`` (non-empty), ties broken by click id."""
    key = _order_key
    return max(clicks, key=key) if model == "last_click" else min(clicks, key=key)


def _order_key(click: ClickTouch) -> tuple[int, str]:
    return (click.at, click.click_id)


def assists_for(
    eligible: Sequence[ClickTouch], winner: str, model: AttributionModel
) -> tuple[ClickTouch, ...]:
    """One click per other creator (their pick under the model), by (time, click id)."""
    by_creator: dict[str, list[ClickTouch]] = {}
    for click in eligible:
        if click.affiliate_id != winner:
            by_creator.setdefault(click.affiliate_id, []).append(click)
    picks = [pick(clicks, model) for clicks in by_creator.values()]
    return tuple(sorted(picks, key=_order_key))


def settled_winner(
    order: OrderTouch,
    clicks: Iterable[ClickTouch],
    terms: CampaignTerms,
    click_window: ClickWindow | None = None,
) -> Attributed | None:
    """The winner of ``order`` if no click yet to come can change it, else None.

    More clicks never take a winner away (each step picks from a larger set), but a
    step can gain one. So a winner is settled when its step and every step before it
    in ``terms.precedence`` are answered whatever clicks still come:

    * ``click_id``: the order names no click (never wins), or names one of ``clicks``
      (known: click ids are unique, so a later copy changes nothing). A known eligible
      click wins; a known ineligible one never will. A named click not known yet may
      still arrive: not settled.
    * ``coupon``: the code's owner is in the terms, not in the clicks: settled either way.
    * ``cookie``: any later click may become the model's pick: never settled.
    * ``livestream``: a stream (or a stream's end) may still come: never settled.

    A settled winner lists no assists: the other creators' clicks may still be on
    their way, and the decision must be the same whenever it is made (at once, after
    the grace, or again after a restart), so it cannot depend on which had come.
    ``choose`` returns this winner whenever there is one.
    """
    for step in terms.precedence:
        if step in ("cookie", "livestream"):
            return None
        if step == "coupon":
            owner = terms.coupon_owner(order.coupon_code)
            if owner is not None:
                return Attributed(owner, "coupon", terms.window_ms(owner), None, ())
            continue
        if not order.click_id:
            continue
        named = [c for c in clicks if c.click_id == order.click_id]
        if not named:
            return None
        eligible = [c for c in named if is_eligible(c, order, terms, click_window)]
        if eligible:
            click = eligible[0]
            window = terms.window_ms(click.affiliate_id)
            return Attributed(click.affiliate_id, "click_id", window, click, ())
    return None


def choose(
    order: OrderTouch,
    clicks: Iterable[ClickTouch],
    terms: CampaignTerms,
    content: Content = NO_CONTENT,
    click_window: ClickWindow | None = None,
) -> Decision:
    """The creator who earned ``order`` under ``terms``, or why nobody did
    (``click_window``: see ``in_window``; the worker, the what-if replay and the batch
    reference all give it)."""
    touches = list(clicks)
    settled = settled_winner(order, touches, terms, click_window)
    if settled is not None:
        return settled
    eligible = [c for c in touches if is_eligible(c, order, terms, click_window)]
    for step in terms.precedence:
        if step == "livestream":
            winner = _live_step(order, content.streams, eligible, terms)
        else:
            winner = _try_step(step, order, eligible, terms)
        if winner is not None:
            return winner
    owner = survey_owner(order, terms, content.handles)
    if owner is not None and terms.survey is not None and terms.survey.attributes:
        return Attributed(
            owner, "survey", terms.window_ms(owner), None, assists_for(eligible, owner, terms.model)
        )
    return Unattributed(unattributed_reason(order, touches, terms, click_window))


def live_claims(stream: LiveTouch, order: OrderTouch, terms: CampaignTerms) -> bool:
    """``started_at <= order.at <= ended_at + tail``, in the order's campaign; a stream
    ending before it started, or held until the brand releases it, claims nothing."""
    return (
        not stream.held
        and stream.campaign_id == order.campaign_id
        and stream.started_at <= stream.ended_at
        and stream.started_at <= order.at <= stream.ended_at + terms.livestream.tail_ms
    )


def live_pick(
    order: OrderTouch, streams: Iterable[LiveTouch], terms: CampaignTerms
) -> LiveTouch | None:
    """The stream that claims ``order``: of those live at its time (plus the tail), the
    latest (or earliest) started, as the terms' ``overlap`` says; ties by stream id."""
    claiming = [s for s in streams if live_claims(s, order, terms)]
    if not claiming:
        return None
    if terms.livestream.overlap == "latest_started":
        return max(claiming, key=lambda s: (s.started_at, s.stream_id))
    return min(claiming, key=lambda s: (s.started_at, s.stream_id))


def _live_step(
    order: OrderTouch,
    streams: Iterable[LiveTouch],
    eligible: Sequence[ClickTouch],
    terms: CampaignTerms,
) -> Attributed | None:
    stream = live_pick(order, streams, terms)
    if stream is None:
        return None
    owner = stream.affiliate_id
    assists = assists_for(eligible, owner, terms.model)
    return Attributed(owner, "livestream", terms.window_ms(owner), None, assists, stream)


def survey_owner(
    order: OrderTouch, terms: CampaignTerms, content_handles: Mapping[str, str] | None = None
) -> str | None:
    """The creator an order's survey answer names: its affiliate id as given, else its
    handle in the terms' survey handles, else a handle of the creator's content."""
    if order.survey_affiliate_id:
        return order.survey_affiliate_id
    if not order.survey_handle:
        return None
    owner = terms.survey.handle_owner(order.survey_handle) if terms.survey else None
    if owner is None and content_handles:
        owner = content_handles.get(normalize_handle(order.survey_handle))
    return owner


def content_handles(claims: Iterable[tuple[str, str]]) -> dict[str, str]:
    """(handle, affiliate id) pairs from content as a lookup. A handle two creators
    claim names nobody: a content's handle is the publisher's word, so any creator could
    otherwise take the survey answers naming another's handle by publishing it (a
    campaign maps such a handle in its terms' ``survey.handles``, which come first).
    The answer never depends on the order the content came in."""
    owners: dict[str, set[str]] = {}
    for handle, affiliate in claims:
        key = normalize_handle(handle)
        if key:
            owners.setdefault(key, set()).add(affiliate)
    return {key: next(iter(who)) for key, who in owners.items() if len(who) == 1}


def _try_step(
    step: WinReason,
    order: OrderTouch,
    eligible: Sequence[ClickTouch],
    terms: CampaignTerms,
) -> Attributed | None:
    if step == "click_id":
        named = [c for c in eligible if c.click_id == order.click_id] if order.click_id else []
        if not named:
            return None
        click = named[0]
    elif step == "coupon":
        owner = terms.coupon_owner(order.coupon_code)
        if owner is None:
            return None
        return Attributed(
            affiliate_id=owner,
            reason="coupon",
            window_ms=terms.window_ms(owner),
            click=None,
            assists=assists_for(eligible, owner, terms.model),
        )
    else:
        if not eligible:
            return None
        click = pick(eligible, terms.model)
    return Attributed(
        affiliate_id=click.affiliate_id,
        reason=step,
        window_ms=terms.window_ms(click.affiliate_id),
        click=click,
        assists=assists_for(eligible, click.affiliate_id, terms.model),
    )


def unattributed_reason(
    order: OrderTouch,
    touches: Sequence[ClickTouch],
    terms: CampaignTerms,
    click_window: ClickWindow | None = None,
) -> NoWinReason:
    """Why no creator earned the order, most specific first, from the clicks at or
    before the order's time only.

    ``unknown_click``: the order names a click the visitor did not make by the
    order's time (visible to the join); ``no_click``: the visitor has no clicks by
    then; ``other_campaign``: only clicks in other campaigns;
    ``cookie_not_in_precedence``: unflagged clicks inside the window, which only a
    cookie step could have taken, and the campaign's precedence has none; ``bot_only``:
    the only clicks inside the window are flagged (for any reason); ``outside_window``:
    clicks in the campaign, none inside the window (older than it, or expired under
    the terms in force at the click).

    A click after the order can never win it, and whether it is held when the order
    is decided depends on when it arrived (within the grace or later): so it gives no
    reason either, and the reason is the same whatever the arrival order.
    """
    touches = [c for c in touches if c.at <= order.at]
    if order.click_id and all(c.click_id != order.click_id for c in touches):
        return "unknown_click"
    if not touches:
        return "no_click"
    in_campaign = [c for c in touches if c.campaign_id == order.campaign_id]
    if not in_campaign:
        return "other_campaign"
    inside = [c for c in in_campaign if in_window(c, order, terms, click_window)]
    if any(not c.flagged for c in inside):
        return "cookie_not_in_precedence"  # with a cookie step, such a click wins
    if inside:
        return "bot_only"
    return "outside_window"


def capped_refund(order_amount_minor: int, refunded_minor: int, requested_minor: int) -> int:
    """What a refund may take off: never more than is left of the order amount."""
    return max(0, min(requested_minor, order_amount_minor - refunded_minor))


def largest_window_ms(versions: Iterable[TermsVersion]) -> int:
    """The longest window any version grants any creator (for pruning clicks)."""
    return max((v.terms.max_window_ms() for v in versions), default=0)


def conversion_id(campaign_id: str, order_id: str) -> str:
    """The id of an order's conversion (also of its OrderUnattributed): one per order."""
    return derived_id("conv", campaign_id, order_id)


def correction_id(campaign_id: str, order_id: str, click_id: str) -> str:
    """The id of a conversion that replaces an order's earlier decision (a late click won)."""
    return derived_id("conv", campaign_id, order_id, click_id)


def unattributed_id(campaign_id: str, order_id: str) -> str:
    return derived_id("unatt", campaign_id, order_id)


def renewal_conversion_id(campaign_id: str, renewal_order_id: str) -> str:
    """The id of a renewal's conversion: never an order's (``conversion_id``), so a renewal
    whose ``renewal_order_id`` is another order's id (written straight to the topic) makes
    a line of its own, which the refund stage can reverse, instead of sharing the order's."""
    return derived_id("conv", "renewal", campaign_id, renewal_order_id, "")


def renewal_unattributed_id(campaign_id: str, renewal_order_id: str) -> str:
    """The id of a renewal's OrderUnattributed: never an order's (``unattributed_id``)."""
    return derived_id("unatt", "renewal", campaign_id, renewal_order_id)


def reversal_id(
    campaign_id: str, order_id: str, refund_id: str, conversion_id: str | None = None
) -> str:
    """A refund's reversal of the order's first conversion, or (``conversion_id`` given)
    of a conversion that replaced it."""
    if conversion_id is None or conversion_id == derived_id("conv", campaign_id, order_id):
        return derived_id("rev", campaign_id, order_id, refund_id)
    return derived_id("rev", campaign_id, order_id, refund_id, conversion_id)


def reattribution_reversal_id(campaign_id: str, order_id: str, superseded: str) -> str:
    """The reversal of a conversion replaced by a correction."""
    return derived_id("rev", campaign_id, order_id, "reattributed", superseded)


def refund_unmatched_id(campaign_id: str, order_id: str, refund_id: str) -> str:
    return derived_id("refund-unmatched", campaign_id, order_id, refund_id)
