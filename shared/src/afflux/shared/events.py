"""The wire contract: every event afflux produces or consumes.

JSON, UTF-8, one flat object per event: the envelope fields (``event_id``,
``type``, ``schema_version``, ``occurred_at``) beside the payload fields. Fields
are only ever added; old payloads are upgraded by ``afflux.shared.core.upcasters``
before validation. ``occurred_at`` is event time in UTC milliseconds; producers
may send RFC 3339 with a zone instead and it is normalised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from afflux.shared.core.click_flags import CLICK_FLAGS, click_flagged, legacy_flags
from afflux.shared.core.clock import MAX_EVENT_TIME_MS, parse_event_time
from afflux.shared.core.content import (
    CONTENT_ID_PATTERN,
    MAX_COUNT,
    MAX_LIVE_STREAM_MS,
    PLATFORM_PATTERN,
)
from afflux.shared.core.event_time import PLACED_KINDS
from afflux.shared.core.letter_bounds import (
    KEY_BUDGET_BYTES,
    REASON_BUDGET_BYTES,
    VALUE_BUDGET_BYTES,
    bounded_text,
)
from afflux.shared.core.money import MAX_AMOUNT_MINOR
from afflux.shared.core.products import MAX_ORDER_ITEMS as MAX_ORDER_ITEMS
from afflux.shared.core.products import mixed_category
from afflux.shared.core.review import RiskSignal
from afflux.shared.core.terms import AttributionModel, TermsVersion

EVENT_TIME_DESCRIPTION = "UTC milliseconds since the epoch (RFC 3339 with zone accepted)"
EventTime = Annotated[
    int,
    BeforeValidator(parse_event_time),
    Field(ge=0, le=MAX_EVENT_TIME_MS, description=EVENT_TIME_DESCRIPTION),
    # What other languages may send: the validator above accepts both shapes.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_EVENT_TIME_MS},
                {"type": "string", "format": "date-time"},
            ],
            "description": EVENT_TIME_DESCRIPTION,
        }
    ),
]
# A time another event's field carries (a click's, an order's, a correction's): integer
# milliseconds in the same bounds as an event's own time.
TimeMs = Annotated[int, Field(ge=0, le=MAX_EVENT_TIME_MS)]
REPORTED_TIME_DESCRIPTION = (
    "the merchant's own time for the {what} (UTC ms) when the orders service moved it onto "
    "its own clock (merchant time within the clock-skew allowance, moved by the signature's "
    "offset, or to the receive time), or to its order's time (a refund after its order by "
    "the merchant's clock, before it by the event times); null otherwise"
)
Id = Annotated[str, Field(min_length=1, max_length=200)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
OrderKind = Literal["sale", "lead", "install", "action"]
# A conversion is an order's kind, or a subscription's renewal (SubscriptionRenewed).
ConversionKind = Literal["sale", "lead", "install", "action", "renewal"]
ClickFlag = Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
# Money on the wire: a JSON integer (never a string, float or boolean) of minor units.
AmountMinor = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT_MINOR)]


class Envelope(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: Id
    # Strict: "1" or true named a version by accident; read as 1, they hid a producer's bug.
    schema_version: Annotated[int, Field(strict=True, ge=1)] = 1
    occurred_at: EventTime


# A click's free text on the wire. The redirect cuts each well inside these (a user agent
# to 512 characters, and its family and version parsed from it, a referrer to 1024, at
# most 10 utm parameters of 256), and always has; a record
# written to the topic by anyone else is held to them, since readers keep some of it
# (the ledger counts clicks per ``utm_content`` for good).
MAX_CLICK_AGENT = 1024
MAX_CLICK_REFERRER = 2048
MAX_CLICK_PARAMS = 16
MAX_CLICK_PARAM_NAME = 64
MAX_CLICK_PARAM_VALUE = 512
ClickParams = Annotated[
    dict[
        Annotated[str, Field(max_length=MAX_CLICK_PARAM_NAME)],
        Annotated[str, Field(max_length=MAX_CLICK_PARAM_VALUE)],
    ],
    Field(max_length=MAX_CLICK_PARAMS),
]


class ClickRecorded(Envelope):
    """A click on a tracking link. Key: visitor_id."""

    type: Literal["ClickRecorded"] = "ClickRecorded"
    click_id: Id
    link_code: Id
    affiliate_id: Id
    campaign_id: Id
    visitor_id: Id
    ip_hash: str = Field(
        "",
        max_length=128,
        description="keyed HMAC-SHA256 of the client's address group, never the IP: an IPv4"
        " address itself, an IPv6 address its /64 network (AFFLUX_CLICKS_IPV6_PREFIX_BITS),"
        " e.g. 2001:db8:1:2::/64, an IPv4-mapped IPv6 address its IPv4 address; events from"
        " before IPv6 grouping hash the full IPv6 address",
    )
    user_agent: str = Field(
        "",
        max_length=MAX_CLICK_AGENT,
        description="empty: the raw user agent is not kept (older events may carry it)",
    )
    # As long as the user agent: parsed from it, the version was not cut before 2026-12-07.
    ua_family: str = Field(
        "", max_length=MAX_CLICK_AGENT, description="browser family parsed from the user agent"
    )
    ua_version: str = Field(
        "", max_length=MAX_CLICK_AGENT, description="major version of that browser"
    )
    referrer: str | None = Field(None, max_length=MAX_CLICK_REFERRER)
    sub_ids: ClickParams = Field(default_factory=dict, description="sub1..sub5")
    utm: ClickParams = Field(default_factory=dict, description="utm_* parameters")
    is_bot: bool = False
    is_duplicate: bool = Field(
        False,
        description="flagged for any reason other than bot (see flags); "
        "a reader of is_bot/is_duplicate alone never counts a flagged click",
    )
    flags: tuple[ClickFlag, ...] = Field(
        (),
        max_length=8,
        description="why the click is not counted: " + ", ".join(CLICK_FLAGS) + "; empty: valid",
    )

    @property
    def reasons(self) -> tuple[str, ...]:
        """The flags; for an event from before ``flags``, what is_bot/is_duplicate stand for."""
        return self.flags or legacy_flags(self.is_bot, self.is_duplicate)

    @property
    def flagged(self) -> bool:
        """Never paid per click, never wins attribution."""
        return click_flagged(self.is_bot, self.is_duplicate, self.flags)


class OrderItem(BaseModel):
    """One line of an order: ``quantity`` units of ``sku`` at ``price_minor`` each."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Annotated[str, Field(min_length=1, max_length=200)]
    quantity: Annotated[int, Field(ge=1, le=MAX_AMOUNT_MINOR)] = 1  # bounded like an amount
    price_minor: AmountMinor = Field(0, description="the price of one unit, in minor units")
    category: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="the merchant's product category (per-category rates, exclusions)"
    )

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.price_minor


def _one_category_per_sku(items: tuple[OrderItem, ...]) -> tuple[OrderItem, ...]:
    """An order lists each sku under one category (``products.mixed_category``): refused
    at the later item's ``category``, so the orders API names ``items.N.category``."""
    if len(items) < 2:
        return items
    found = mixed_category([(item.sku, item.category) for item in items])
    if found is None:
        return items
    index, reason = found
    error = PydanticCustomError("mixed_category", "{reason}", {"reason": reason})
    detail = InitErrorDetails(type=error, loc=(index, "category"), input=items[index].category)
    raise ValidationError.from_exception_data("OrderItem", [detail])


# An order's items as the orders API takes them: each sku under one category. The event
# on the topic takes any (``OrderItems``): a rule the event gained would dead-letter
# orders an earlier version had taken and not yet handed to the worker at an upgrade
# (their commission lost), and a replay would refuse what the first run paid. Such an
# order, written before the rule or straight to the topic, is priced as before it: a
# refund naming the sku takes its share at the rate its rows blend to.
OrderItems = tuple[OrderItem, ...]
OrderItemsAtEntry = Annotated[OrderItems, AfterValidator(_one_category_per_sku)]

NonCommissionableReason = Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]


class RefundItem(BaseModel):
    """An item a refund names: its sku and either the quantity or the amount refunded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Annotated[str, Field(min_length=1, max_length=200)]
    quantity: Annotated[int, Field(strict=True, ge=1, le=MAX_AMOUNT_MINOR)] | None = None
    amount_minor: Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT_MINOR)] | None = None

    @model_validator(mode="after")
    def _quantity_or_amount(self) -> RefundItem:
        if (self.quantity is None) == (self.amount_minor is None):
            raise ValueError("give exactly one of quantity or amount_minor")
        return self


HandleText = Annotated[str, Field(min_length=1, max_length=100)]


class SurveyAnswer(BaseModel):
    """A post-purchase survey answer ("how did you hear about us?") naming a creator:
    by affiliate id, or by a handle matched against creators' handles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    affiliate_id: Id | None = None
    handle: HandleText | None = None

    @model_validator(mode="after")
    def _names_someone(self) -> SurveyAnswer:
        if self.affiliate_id is None and self.handle is None:
            raise ValueError("affiliate_id: give affiliate_id or handle")
        return self


class OrderPlaced(Envelope):
    """A sale, lead, install or other action.

    Key: visitor_id, else the click's visitor, else order_id.
    """

    type: Literal["OrderPlaced"] = "OrderPlaced"
    order_id: Id
    campaign_id: Id
    merchant_id: Id
    kind: OrderKind = "sale"
    action: str | None = Field(None, description="the action kind when kind is 'action'")
    amount_minor: AmountMinor = 0
    currency: Currency
    visitor_id: Id | None = None
    click_id: Id | None = None
    coupon_code: str | None = None
    customer_id: str | None = None
    new_customer: bool = False
    items: OrderItems = Field(
        (),
        description="the order's items; a sku may be on several (the orders API takes them"
        " all of one category; one under several, taken before that rule or written"
        " straight to the topic, is priced by sku: its rows' rates blend)",
    )
    reported_occurred_at: EventTime | None = Field(
        None, description=REPORTED_TIME_DESCRIPTION.format(what="order")
    )
    undated: bool = Field(
        False,
        description="the merchant sent no time (a postback without occurred_at): occurred_at"
        " is the receive time, and no refund of the order is refused as dated before it",
    )
    non_commissionable_minor: AmountMinor = Field(
        0,
        description="the part of amount_minor no commission is paid on (shipping, taxes):"
        " with items, amount_minor is the items' sum plus this",
    )
    non_commissionable_reason: NonCommissionableReason | None = Field(
        None, description="what the non-commissionable part is, e.g. shipping, tax"
    )
    survey: SurveyAnswer | None = Field(
        None, description="the buyer's post-purchase survey answer, when given with the order"
    )
    customer_ip_hash: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None,
        description="the buyer's IP, hashed as the clicks service hashes click IPs (risk"
        " signal same_ip): HMAC-SHA256 under its key of the address group, an IPv4 address"
        " itself, an IPv6 address its /64 network (2001:db8:1:2::/64), an IPv4-mapped one its"
        " IPv4 address (afflux.shared.core.address_group); never the IP itself",
    )
    customer_email_hash: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="the buyer's hashed email (risk signal self_referral)"
    )
    referrer: Annotated[str, Field(max_length=2048)] | None = Field(
        None, description="the referrer of the visit that ordered (risk signal coupon_site)"
    )


class LeadConfirmed(Envelope):
    """The merchant confirmed a lead; it becomes payable. Key: as its order."""

    type: Literal["LeadConfirmed"] = "LeadConfirmed"
    order_id: Id
    campaign_id: Id


class SurveyAnswered(Envelope):
    """A survey answer that came after its order. Key: as its order (it must reach the
    partition holding the order's state). The first answer of an order stands."""

    type: Literal["SurveyAnswered"] = "SurveyAnswered"
    order_id: Id
    campaign_id: Id
    answer: SurveyAnswer


class OrderRefunded(Envelope):
    """A full or partial refund of an order. Key: order_id."""

    type: Literal["OrderRefunded"] = "OrderRefunded"
    refund_id: Id
    order_id: Id
    campaign_id: Id
    amount_minor: Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT_MINOR)]
    currency: Currency
    reported_occurred_at: EventTime | None = Field(
        None, description=REPORTED_TIME_DESCRIPTION.format(what="refund")
    )
    items: tuple[RefundItem, ...] = Field(
        (),
        description="the items refunded: the commission is reversed pro rata per item;"
        " empty: pro rata over the whole order",
    )


RenewalNumber = Annotated[int, Field(ge=1, le=100_000)]
MAX_WINDOW_MS = 366 * 86_400_000  # a cookie window is at most 365 days


class SubscriptionRenewed(Envelope):
    """A renewal of the subscription first bought in ``order_id``.

    Key: order_id (the first order's), on the refunds topic, so the renewal meets the first
    order's outcome where its refunds do. The renewal is an order of its own,
    ``renewal_order_id``, which its refunds name.
    """

    type: Literal["SubscriptionRenewed"] = "SubscriptionRenewed"
    order_id: Id = Field(description="the subscription's first order")
    renewal_order_id: Id
    renewal_number: Annotated[RenewalNumber, Field(strict=True)]
    campaign_id: Id
    merchant_id: Id
    amount_minor: AmountMinor
    currency: Currency
    reported_occurred_at: EventTime | None = Field(
        None, description=REPORTED_TIME_DESCRIPTION.format(what="renewal")
    )


class Assist(BaseModel):
    """Another creator's eligible click, kept on the conversion for reporting."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    affiliate_id: Id
    click_id: Id
    clicked_at: EventTime


class ConversionAttributed(Envelope):
    """An order attributed to a creator. Key: order_id. ``occurred_at`` is the order's time."""

    type: Literal["ConversionAttributed"] = "ConversionAttributed"
    conversion_id: Id
    order_id: Id
    campaign_id: Id
    affiliate_id: Id
    reason: Literal["click_id", "coupon", "cookie", "livestream", "survey"]
    model: AttributionModel
    window_ms: Annotated[int, Field(ge=0, le=MAX_WINDOW_MS)]
    click_id: Id | None = None
    clicked_at: TimeMs | None = None
    lag_ms: Annotated[int, Field(ge=-MAX_EVENT_TIME_MS, le=MAX_EVENT_TIME_MS)] | None = Field(
        None, description="order time minus click time"
    )
    assists: tuple[Assist, ...] = ()
    terms_version: int
    kind: ConversionKind = "sale"
    action: str | None = None
    amount_minor: AmountMinor = 0
    currency: Currency
    visitor_id: Id | None = None
    customer_id: str | None = None
    new_customer: bool = False
    order_event_id: Id
    items: tuple[OrderItem, ...] = Field((), description="the order's items (per-product rates)")
    non_commissionable_minor: AmountMinor = 0
    renewal_number: RenewalNumber | None = Field(
        None, description="kind 'renewal': which renewal of the first order this is"
    )
    first_order_id: Id | None = Field(
        None, description="kind 'renewal': the subscription's first order, whose winner it pays"
    )
    supersedes: Id | None = Field(
        None,
        description="a correction: the conversion id this one replaces (reversed in full with"
        " reason 'reattributed'); null for a first decision or an order that was unattributed",
    )
    correction_reason: Literal["late_click", "late_content", "late_survey"] | None = Field(
        None,
        description="set on a correction: a click, a creator's content (a live stream, its"
        " end, a handle) or a survey answer that arrived after the order was decided changes"
        " its winner by event time",
    )
    corrected_at: TimeMs | None = Field(
        None,
        description="a correction: the broker time (UTC ms) of the record that caused it; the"
        " replaced conversion's reversal takes this time",
    )
    live_stream_id: Id | None = Field(
        None, description="rule livestream: the stream that won, '<platform>:<content_id>'"
    )
    survey_affiliate_id: Id | None = Field(
        None,
        description="the creator the order's survey answer names (resolved), whatever the rule;"
        " null without an answer or when it names nobody known",
    )
    risk_signals: tuple[RiskSignal, ...] = Field(
        (),
        description="risk signals raised when the order was decided: fast_conversion, same_ip,"
        " self_referral, coupon_site (the ledger adds burst); the terms' review.hold_on"
        " chooses which hold it",
    )


class ConversionReversed(Envelope):
    """A refund matched to its conversion, or a conversion replaced by a correction.

    Key: order_id.
    """

    type: Literal["ConversionReversed"] = "ConversionReversed"
    reversal_id: Id
    refund_id: Id
    conversion_id: Id
    order_id: Id
    campaign_id: Id
    affiliate_id: Id
    amount_minor: AmountMinor = Field(
        description="refund applied, capped so cumulative refunds never exceed the order amount"
    )
    requested_minor: AmountMinor
    refunded_total_minor: AmountMinor
    order_amount_minor: AmountMinor
    currency: Currency
    order_occurred_at: TimeMs
    reason: Literal["refund", "reattributed"] = Field(
        "refund",
        description="'reattributed': the whole remaining amount, because a correction (a later"
        " click, a creator's live stream or a survey answer) gave the order to another winner"
        " (refund_id then holds the superseding conversion id)",
    )
    items: tuple[RefundItem, ...] = Field(
        (), description="the refund's items, as the merchant named them"
    )


UnattributedReason = Literal[
    "no_click",
    "outside_window",
    "bot_only",
    "unknown_click",
    "other_campaign",
    # Unflagged clicks inside the window, but the campaign's precedence has no cookie step.
    "cookie_not_in_precedence",
    "duplicate_order",
    # A renewal whose first order earned no creator, is unknown, or is past the limit, or
    # one dated before its first order.
    "first_order_unattributed",
    "first_order_unknown",
    "renewal_beyond_limit",
    "no_recurring_terms",
    "renewal_before_first_order",
    # A renewal whose number another renewal order of the first order took, or whose first
    # order is itself a renewal.
    "renewal_number_taken",
    "first_order_is_renewal",
]


class OrderUnattributed(Envelope):
    """An order no creator earned. Key: order_id."""

    type: Literal["OrderUnattributed"] = "OrderUnattributed"
    order_id: Id
    campaign_id: Id
    reason: UnattributedReason
    kind: ConversionKind = "sale"
    amount_minor: AmountMinor = 0
    currency: Currency
    order_event_id: Id
    survey_affiliate_id: Id | None = Field(
        None,
        description="the creator the order's survey answer names (resolved), reported though"
        " it did not attribute the order; null without an answer or when it names nobody known",
    )


class RefundUnmatched(Envelope):
    """A refund whose order was never attributed. Key: order_id."""

    type: Literal["RefundUnmatched"] = "RefundUnmatched"
    refund_id: Id
    order_id: Id
    campaign_id: Id
    reason: Literal["order_unattributed", "order_unknown"]
    amount_minor: AmountMinor
    currency: Currency


class CampaignTermsPublished(Envelope):
    """Every version of one campaign's terms (compacted topic: the latest record holds all)."""

    type: Literal["CampaignTermsPublished"] = "CampaignTermsPublished"
    campaign_id: Id
    versions: tuple[TermsVersion, ...]


class PayoutIssued(Envelope):
    """A payout batch line for finance systems. Key: affiliate_id."""

    type: Literal["PayoutIssued"] = "PayoutIssued"
    payout_id: Id
    affiliate_id: Id
    campaign_id: Id
    period: str
    amount_minor: int
    currency: Currency
    line_ids: tuple[str, ...] = ()


ContentKind = Literal["post", "story", "video", "live"]
Platform = Annotated[
    str,
    Field(pattern=PLATFORM_PATTERN, description="lower case, e.g. instagram, tiktok, youtube"),
]
ContentId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=CONTENT_ID_PATTERN,
        description="the platform's id: no whitespace, control character or '/'",
    ),
]
# A cumulative count from a platform: a JSON integer (never a string, float or boolean).
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]


class ContentPublished(Envelope):
    """A creator's post, story, video or live stream for a campaign.

    Key: ``<platform>:<content_id>``. A content's identity is (platform, content_id); a later
    ContentPublished for the same content replaces the earlier (latest on the topic wins),
    which is how a live stream's end arrives.
    """

    type: Literal["ContentPublished"] = "ContentPublished"
    content_id: ContentId
    platform: Platform
    affiliate_id: Id
    campaign_id: Id
    kind: ContentKind
    url: Annotated[str, Field(max_length=2048, pattern=r"^https?://\S+$")]
    published_at: EventTime
    live_started_at: EventTime | None = Field(
        None, description="required when kind is 'live': when the stream started"
    )
    live_ended_at: EventTime | None = Field(
        None,
        description="when the stream ended, not before live_started_at and at most 24 h"
        " after it; absent while still live (a later ContentPublished for the same content"
        " carries it)",
    )
    handle: str | None = Field(
        None, max_length=200, description="the creator's handle on that platform"
    )
    received_at: EventTime | None = Field(
        None,
        description="when afflux accepted the publication (set by the content API, absent "
        "on records written straight to the topic): its engagement pay is approved lock_days "
        "after the later of this and published_at, so a backdated published_at does not "
        "shorten the lock",
    )
    reported_by: Literal["creator", "merchant", "admin"] | None = Field(
        None,
        description="whose key published it over HTTP (null: written to the topic, taken as"
        " the brand's); a content first published with the creator's own key is held until"
        " the brand releases it: its live stream claims no order and it earns no engagement"
        " pay before that",
    )

    @model_validator(mode="after")
    def _live_times(self) -> ContentPublished:
        if self.kind == "live" and self.live_started_at is None:
            raise ValueError("live_started_at: required when kind is 'live'")
        if self.live_ended_at is not None:
            if self.live_started_at is None:
                raise ValueError("live_ended_at: given without live_started_at")
            if self.live_ended_at < self.live_started_at:
                raise ValueError("live_ended_at: before live_started_at")
            if self.live_ended_at - self.live_started_at > MAX_LIVE_STREAM_MS:
                raise ValueError(
                    f"live_ended_at: more than {MAX_LIVE_STREAM_MS // 3_600_000} h after"
                    " live_started_at (the longest a live stream may last)"
                )
        return self


class ContentStats(Envelope):
    """A platform's cumulative snapshot of one content's counts at ``as_of``.

    Key: ``<platform>:<content_id>``. ``occurred_at`` is ``as_of`` (filled in when absent).
    The latest snapshot by ``as_of`` wins; an older one is stale.
    """

    type: Literal["ContentStats"] = "ContentStats"
    content_id: ContentId
    platform: Platform
    as_of: EventTime = Field(description="the platform's snapshot time (UTC ms)")
    views: Count
    impressions: Count
    likes: Count
    comments: Count
    shares: Count
    saves: Count
    followers: Count = Field(description="the creator's followers at as_of")
    reported_by: Literal["creator", "merchant", "admin"] | None = Field(
        None,
        description="whose key posted the snapshot over HTTP (null: written to the topic,"
        " by a platform integration); a creator's own figures hold the content until the"
        " brand confirms them with a release",
    )

    @model_validator(mode="before")
    @classmethod
    def _occurred_at_is_as_of(cls, data: object) -> object:
        if isinstance(data, dict) and "occurred_at" not in data and "as_of" in data:
            return {**data, "occurred_at": data["as_of"]}
        return data

    @model_validator(mode="after")
    def _same_time(self) -> ContentStats:
        if self.occurred_at != self.as_of:
            raise ValueError("occurred_at: must equal as_of")
        return self


class ContentReleased(Envelope):
    """A content held for review, or published by its creator's own key, released by an
    admin or the campaign's merchant: for good, it counts from then on (its engagement is
    paid, its live stream claims orders). Key: ``<platform>:<content_id>``."""

    type: Literal["ContentReleased"] = "ContentReleased"
    content_id: ContentId
    platform: Platform
    released_by: Id = Field(description="who released it: 'admin' or 'merchant:<id>'")
    note: str | None = Field(None, max_length=500, description="why, for the audit trail")


class ConversionReviewed(Envelope):
    """An admin's or the merchant's decision on a conversion held for review: approved
    (approved from then on, or at its lock's end if later) or declined (its commission
    reversed, with the reason). Key: order_id, on the ``reviews`` topic."""

    type: Literal["ConversionReviewed"] = "ConversionReviewed"
    conversion_id: Id
    order_id: Id
    campaign_id: Id
    affiliate_id: Id
    order_occurred_at: TimeMs = Field(description="the order's time: its ledger period")
    decision: Literal["approve", "decline"]
    reason: str = Field("", max_length=500, description="why; shown on the decline's posting")
    decided_by: Id = Field(description="'admin' or 'merchant:<id>'")


def _bounded(budget: int) -> Callable[[str | None], str | None]:
    """A validator cutting a dead letter's text to ``budget`` encoded bytes, so that every
    letter can be sent (``letter_bounds``)."""

    def bound(text: str | None) -> str | None:
        return text if text is None else bounded_text(text, budget)

    return bound


class DeadLetter(Envelope):
    """A message a consumer could not decode or validate. Key: the source key."""

    type: Literal["DeadLetter"] = "DeadLetter"
    source_topic: str
    source_partition: int
    source_offset: int
    consumer: str
    reason: Annotated[str, AfterValidator(_bounded(REASON_BUDGET_BYTES))]
    error_class: str | None = Field(
        None, description="the exception that refused the record, e.g. ValidationError"
    )
    key: Annotated[str | None, AfterValidator(_bounded(KEY_BUDGET_BYTES))] = None
    value: Annotated[str, AfterValidator(_bounded(VALUE_BUDGET_BYTES))] = Field(
        description="the raw value, UTF-8 with invalid bytes replaced; a key, value or "
        "reason too large to send is cut to its budget and ends with a marker naming its "
        "size and SHA-256 digest"
    )


AnyEvent = Annotated[
    ClickRecorded
    | OrderPlaced
    | LeadConfirmed
    | SurveyAnswered
    | OrderRefunded
    | SubscriptionRenewed
    | ConversionAttributed
    | ConversionReversed
    | OrderUnattributed
    | RefundUnmatched
    | CampaignTermsPublished
    | PayoutIssued
    | ContentPublished
    | ContentStats
    | ContentReleased
    | ConversionReviewed
    | DeadLetter,
    Field(discriminator="type"),
]

EVENT_TYPES: tuple[type[Envelope], ...] = (
    ClickRecorded,
    OrderPlaced,
    LeadConfirmed,
    SurveyAnswered,
    OrderRefunded,
    SubscriptionRenewed,
    ConversionAttributed,
    ConversionReversed,
    OrderUnattributed,
    RefundUnmatched,
    CampaignTermsPublished,
    PayoutIssued,
    ContentPublished,
    ContentStats,
    ContentReleased,
    ConversionReviewed,
    DeadLetter,
)

# The models of ``core.event_time.PLACED_KINDS`` (what the orders service places in event
# time, held to the campaign's backfill limit), for isinstance: built from the names, so
# the rule has one home.
PLACED_TYPES = cast(
    "tuple[type[OrderPlaced | OrderRefunded | SubscriptionRenewed], ...]",
    tuple(t for t in EVENT_TYPES if t.__name__ in PLACED_KINDS),
)
