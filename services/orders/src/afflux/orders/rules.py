"""What merchants may send, and the checks that turn a request into an event.

Pure: request models, and functions of (request, campaign terms, merchant, now)
that return the event to produce or raise Rejected naming the field and why.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from afflux.orders.claims import RefundClaim
from afflux.orders.errors import Rejected
from afflux.orders.placement import Placement
from afflux.shared.core.clock import from_ms
from afflux.shared.core.ids import derived_id, visitor_id_in
from afflux.shared.core.order_terms import ORDER_TERMS_FIELDS
from afflux.shared.core.products import ItemRefundPart, item_refund_parts, refund_items_problem
from afflux.shared.core.terms import (
    CampaignTerms,
    answered_creator_problem,
    normalize_coupon,
    normalize_handle,
)
from afflux.shared.core.visible_text import invisible_character, new_id_problem
from afflux.shared.events import (
    MAX_ORDER_ITEMS,
    EventTime,
    HandleText,
    Id,
    LeadConfirmed,
    NonCommissionableReason,
    OrderItem,
    OrderItemsAtEntry,
    OrderKind,
    OrderPlaced,
    OrderRefunded,
    RefundItem,
    SubscriptionRenewed,
    SurveyAnswer,
    SurveyAnswered,
)

MAX_BATCH = 1000
MAX_ID_CHARS = 200  # as ``afflux.shared.events.Id``


def path_order_id(order_id: str) -> str:
    """An order id named in a request's path (``/v1/leads/{order_id}/confirm``, ``/survey``):
    refused as the body's ``Id`` would be, before an event is built from it."""
    if len(order_id) > MAX_ID_CHARS:
        raise Rejected(422, "order_id", f"at most {MAX_ID_CHARS} characters")
    return order_id


def _plain_id(value: str) -> str:
    """An order or refund id as a merchant's books hold it: "o-1 " is another id than
    "o-1", and so is "o-1" with a zero-width space, a byte order mark or a C1 control,
    so a retry whose id gained a space, a newline or an invisible character was accepted
    as a second order and paid twice; refused instead, naming the character
    (``afflux.shared.core.visible_text``)."""
    if value != value.strip():
        raise ValueError("leading or trailing whitespace")
    problem = new_id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# A new order's, refund's or renewal's own id (its idempotency key): no edge whitespace,
# no control, format (zero-width), separator, private-use or unassigned characters.
# Ids naming an order already accepted stay ``Id``.
PlainId = Annotated[Id, AfterValidator(_plain_id)]
# A JSON integer only: "4999", 4999.0 and true are refused, never coerced.
StrictMinor = Annotated[int, Field(strict=True)]


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderRequest(_Request):
    """``POST /v1/orders``: a sale, lead, install or other action."""

    order_id: PlainId
    campaign_id: Id
    occurred_at: EventTime
    kind: OrderKind = "sale"
    action: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    amount_minor: StrictMinor | None = None
    currency: str | None = None
    visitor_id: Id | None = None
    click_id: Id | None = None
    coupon_code: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    customer_id: Annotated[str, Field(max_length=200)] | None = None
    # Strict: "yes", "on" and 1 were read as true.
    new_customer: Annotated[bool, Field(strict=True)] = False
    items: Annotated[OrderItemsAtEntry, Field(max_length=MAX_ORDER_ITEMS)] = ()
    non_commissionable_minor: StrictMinor | None = None
    non_commissionable_reason: NonCommissionableReason | None = None
    survey: SurveyAnswer | None = None
    customer_ip_hash: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    customer_email_hash: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    referrer: Annotated[str, Field(max_length=2048)] | None = None

    @field_validator("visitor_id")
    @classmethod
    def _the_visitor_not_its_cookie(cls, value: str | None) -> str | None:
        """A merchant that reads the visitor cookie where it can (a tracking domain of its
        own) may send it whole: the id in it is the visitor, the seal no part of it."""
        return None if value is None else visitor_id_in(value)

    @field_validator("coupon_code")
    @classmethod
    def _a_code_a_customer_typed(cls, value: str | None) -> str | None:
        """Codes are compared trimmed (``normalize_coupon``), so a trailing newline is
        fine; a control character inside (NUL, ESC) comes from no customer's typing but
        from a broken integration, and reached logs and pages. Invisible format
        characters (a zero-width space, a soft hyphen) come with codes pasted from a
        creator's bio: taken as before, the code matching none, so a cookie or click
        still wins the sale rather than the whole order being refused."""
        code = None if value is None else normalize_coupon(value)
        if code == "":  # it was taken as the order's claim, and matched nobody
            raise ValueError("blank: give the code as the customer entered it, or leave it out")
        control = next((c for c in code or "" if unicodedata.category(c) == "Cc"), None)
        if control is not None:
            raise ValueError(f"contains U+{ord(control):04X} (a control character)")
        return value

    @field_validator("visitor_id", "click_id")
    @classmethod
    def _names_a_visitor_or_click(cls, value: str | None) -> str | None:
        """Visitors and clicks are named by the clicks service, never with a character
        that shows as nothing: such an id matches no click, yet as an order's only claim
        it would stand for good (and NUL or U+202E reach logs and pages)."""
        problem = None if value is None else invisible_character(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("items", mode="before")
    @classmethod
    def _quantities_are_integers(cls, items: object) -> object:
        """A quantity multiplies a price, so like an amount it is a JSON integer: "2", 2.0
        and true were coerced (true to 1 unit)."""
        if isinstance(items, list | tuple):
            for index, item in enumerate(items):
                quantity = item.get("quantity", 1) if isinstance(item, dict) else 1
                if type(quantity) is not int:
                    raise ValueError(f"items.{index}.quantity: must be a JSON integer")
        return items

    @field_validator("survey")
    @classmethod
    def _survey_names_a_handle(cls, survey: SurveyAnswer | None) -> SurveyAnswer | None:
        if survey is not None:
            _names_a_creator(survey.affiliate_id)
            _names_a_handle(survey.handle)
        return survey


class SurveyRequest(_Request):
    """``POST /v1/orders/{order_id}/survey``: the buyer's post-purchase survey answer
    naming a creator, by affiliate id or by handle."""

    campaign_id: Id
    affiliate_id: Id | None = None
    handle: HandleText | None = None

    @field_validator("affiliate_id")
    @classmethod
    def _an_affiliate(cls, affiliate_id: str | None) -> str | None:
        return _names_a_creator(affiliate_id)

    @field_validator("handle")
    @classmethod
    def _a_handle(cls, handle: str | None) -> str | None:
        return _names_a_handle(handle)


def _names_a_creator(affiliate_id: str | None) -> str | None:
    """An affiliate id with an invisible character, or not in NFC, looks like a
    creator's yet names nobody, and as an order's first answer it would stand for good:
    refused."""
    problem = None if affiliate_id is None else new_id_problem(affiliate_id)
    if problem is not None:
        raise ValueError(f"affiliate_id: {problem}")
    return affiliate_id


def _names_a_handle(handle: str | None) -> str | None:
    """A handle that is nothing but spaces and @ names nobody, yet as an order's first
    answer it would stand for good (a later, real answer is a 409): refused instead."""
    if handle is not None and not normalize_handle(handle):
        raise ValueError("handle: names nobody (only spaces and @)")
    problem = None if handle is None else invisible_character(handle)
    if problem is not None:  # "@dee" with a zero-width space names nobody either
        raise ValueError(f"handle: {problem}")
    return handle


class BatchRequest(_Request):
    """``POST /v1/orders:batch``: up to 1,000 orders, each judged on its own."""

    orders: Annotated[list[object], Field(min_length=1, max_length=MAX_BATCH)]


class RefundRequest(_Request):
    """``POST /v1/refunds``: a full or partial refund, idempotent by refund id."""

    refund_id: PlainId
    order_id: Id  # an order already accepted, whatever its id (before PlainId)
    campaign_id: Id
    occurred_at: EventTime
    amount_minor: StrictMinor
    currency: str
    items: Annotated[tuple[RefundItem, ...], Field(max_length=MAX_ORDER_ITEMS)] = ()


class RenewalRequest(_Request):
    """``POST /v1/renewals``: a subscription's renewal, idempotent by its renewal order id."""

    order_id: Id = Field(description="the subscription's first order")
    renewal_number: Annotated[int, Field(strict=True, ge=1, le=100_000)]
    renewal_order_id: PlainId | None = Field(
        None,
        description="the renewal's own order id, which its refunds name; default"
        " '<order_id>:renewal-<renewal_number>'",
    )
    campaign_id: Id
    occurred_at: EventTime
    amount_minor: StrictMinor
    currency: str


class LeadConfirmRequest(_Request):
    """``POST /v1/leads/{order_id}/confirm``; ``occurred_at`` defaults to now."""

    campaign_id: Id
    occurred_at: EventTime | None = None


def survey_event(
    order_id: str, request: SurveyRequest, terms: CampaignTerms, merchant_id: str, now_ms: int
) -> SurveyAnswered:
    """The SurveyAnswered event for an answer to a known order, or Rejected. Its time is
    the service's (an answer's own time decides nothing); one answer per order."""
    check_merchant(terms, merchant_id)
    if request.affiliate_id is None and request.handle is None:
        raise Rejected(422, "affiliate_id", "give affiliate_id or handle")
    check_answered_creator(terms, request.affiliate_id, "affiliate_id")
    return SurveyAnswered(
        event_id=derived_id("survey", request.campaign_id, order_id),
        occurred_at=now_ms,
        order_id=order_id,
        campaign_id=request.campaign_id,
        answer=SurveyAnswer(affiliate_id=request.affiliate_id, handle=request.handle),
    )


def check_answered_creator(terms: CampaignTerms, affiliate_id: str | None, field: str) -> None:
    problem = None if affiliate_id is None else answered_creator_problem(terms, affiliate_id)
    if problem is not None:
        raise Rejected(422, field, problem)


def unknown_campaign() -> Rejected:
    """The answer for a campaign the merchant may not name: one this service does not
    know, and one of another merchant alike, so campaign ids cannot be probed."""
    return Rejected(422, "campaign_id", "unknown campaign")


def check_merchant(terms: CampaignTerms, merchant_id: str) -> None:
    """``terms`` name ``merchant_id``; another merchant's campaign answers as an unknown one."""
    if terms.merchant_id != merchant_id:
        raise unknown_campaign()


def check_event_time(occurred_at: int, now_ms: int, max_future_ms: int) -> None:
    if occurred_at > now_ms + max_future_ms:
        raise Rejected(422, "occurred_at", f"more than {max_future_ms // 1000} s in the future")


def check_currency(currency: str | None, terms: CampaignTerms, *, required: bool) -> str:
    if currency is None:
        if required:
            raise Rejected(422, "currency", "required")
        return terms.currency
    if currency != terms.currency:
        raise Rejected(422, "currency", f"campaign {terms.campaign_id} is paid in {terms.currency}")
    return currency


def check_amount_limit(amount_minor: int, terms: CampaignTerms, limit: int | None = None) -> None:
    """At most ``limit``, by default the campaign's ``max_order_minor`` (10^12 minor units
    unless its terms say otherwise)."""
    largest = terms.max_order_minor if limit is None else limit
    if amount_minor > largest:
        raise Rejected(
            422,
            "amount_minor",
            f"must be at most {largest} (campaign {terms.campaign_id}'s max_order_minor)",
        )


def order_event(
    request: OrderRequest,
    terms: CampaignTerms,
    merchant_id: str,
    placed: Placement,
) -> OrderPlaced:
    """The OrderPlaced event for an accepted order, at its ``placed`` time, or Rejected."""
    check_merchant(terms, merchant_id)
    if request.survey is not None:
        check_answered_creator(terms, request.survey.affiliate_id, "survey.affiliate_id")
    is_sale = request.kind == "sale"
    currency = check_currency(request.currency, terms, required=is_sale)
    amount = request.amount_minor
    if is_sale and amount is None:
        raise Rejected(422, "amount_minor", "required for a sale")
    if amount is not None and (amount <= 0 if is_sale else amount < 0):
        raise Rejected(
            422, "amount_minor", "must be positive" if is_sale else "must not be negative"
        )
    if amount is not None:
        check_amount_limit(amount, terms)
    non_commissionable = check_items(request, amount or 0)
    if request.kind == "action" and request.action is None:
        raise Rejected(422, "action", "required when kind is 'action' (e.g. install, signup)")
    if request.kind != "action" and request.action not in (None, request.kind):
        # The ledger prices any kind but a sale or lead by its action when it has one: an
        # install naming "signup" was paid the signup's rate.
        raise Rejected(
            422, "action", f"only with kind 'action' (this order's kind is '{request.kind}')"
        )
    if not (request.visitor_id or request.click_id or request.coupon_code):
        raise Rejected(
            422, "visitor_id", "give at least one of visitor_id, click_id or coupon_code"
        )
    return OrderPlaced(
        event_id=derived_id("order", request.campaign_id, request.order_id),
        occurred_at=placed.occurred_at,
        reported_occurred_at=placed.reported_occurred_at,
        undated=placed.undated,
        order_id=request.order_id,
        campaign_id=request.campaign_id,
        merchant_id=merchant_id,
        kind=request.kind,
        action=request.action,
        amount_minor=amount or 0,
        currency=currency,
        visitor_id=request.visitor_id,
        click_id=request.click_id,
        coupon_code=request.coupon_code,
        customer_id=request.customer_id,
        new_customer=request.new_customer,
        items=request.items,
        non_commissionable_minor=non_commissionable,
        non_commissionable_reason=request.non_commissionable_reason,
        survey=request.survey,
        customer_ip_hash=request.customer_ip_hash,
        customer_email_hash=request.customer_email_hash,
        referrer=request.referrer,
    )


def order_terms(event: OrderPlaced) -> str:
    """The canonical text of the order's ``ORDER_TERMS_FIELDS``, kept with its claim."""
    # The same text as the event's JSON dump of these fields, without pydantic's dump of
    # the whole event, which cost a few percent of the service's CPU on the hot path.
    values: list[Any] = []
    for name in ORDER_TERMS_FIELDS:
        value = getattr(event, name)
        if name == "items":
            value = [item.model_dump(mode="json") for item in value]
        elif name == "coupon_code" and value is not None:  # as CampaignTerms.coupon_owner does
            value = normalize_coupon(value)
        values.append(value)
    return json.dumps(values, separators=(",", ":"))


def order_terms_conflict(accepted: str, event: OrderPlaced) -> Rejected | None:
    """The 409 for an order id accepted with other terms: names the first field that
    differs and what was accepted for it. None when none of the fields the claim kept
    differs (a claim kept before a field was appended): the order is a duplicate."""
    sent: list[Any] = json.loads(order_terms(event))
    kept: list[Any] = json.loads(accepted)
    field = next(
        (name for name, a, b in zip(ORDER_TERMS_FIELDS, kept, sent, strict=False) if a != b),
        None,
    )
    if field is None:
        return None
    was = kept[ORDER_TERMS_FIELDS.index(field)]
    return Rejected(
        409,
        field,
        f"order {event.order_id} was already accepted with {field} {json.dumps(was)}; an"
        " order id is accepted once, so a changed order needs a new id (or a refund)",
    )


def unsure_order_conflict(sent_before: str, event: OrderPlaced) -> Rejected:
    """The 409 for an order id sent before with other terms in a request the broker did not
    acknowledge: that copy may be on the topic, so this one is not taken beside it."""
    sent: list[Any] = json.loads(order_terms(event))
    kept: list[Any] = json.loads(sent_before)
    field = next(
        (name for name, a, b in zip(ORDER_TERMS_FIELDS, kept, sent, strict=False) if a != b),
        "order_id",
    )
    was = kept[ORDER_TERMS_FIELDS.index(field)] if field in ORDER_TERMS_FIELDS else None
    return Rejected(
        409,
        field,
        f"order {event.order_id} was sent before with {field} {json.dumps(was)} and the broker"
        " did not acknowledge it in time: it may have been recorded. Send that same order"
        " again to learn, or a new order_id",
    )


def check_items(request: OrderRequest, amount: int) -> int:
    """The order's non-commissionable part, once its items (if any) and that part make up
    its amount exactly; otherwise Rejected naming the field."""
    rest = request.non_commissionable_minor or 0
    if rest < 0 or rest > amount:
        raise Rejected(422, "non_commissionable_minor", f"must be from 0 to amount_minor {amount}")
    if not request.items:
        return rest
    items = sum(item.amount_minor for item in request.items)
    if items + rest != amount:
        raise Rejected(
            422,
            "items",
            f"the items sum to {items} and non_commissionable_minor is {rest}, but amount_minor"
            f" is {amount}: name the difference (shipping, taxes) as non_commissionable_minor",
        )
    return rest


def check_refund_items(request: RefundRequest) -> None:
    """A refund names each sku once, and the amounts it names fit in the refund."""
    seen: set[str] = set()
    named = 0
    for index, item in enumerate(request.items):
        if item.sku in seen:
            raise Rejected(422, f"items.{index}.sku", "named twice in this refund")
        seen.add(item.sku)
        named += item.amount_minor or 0
    if named > request.amount_minor:
        raise Rejected(
            422, "items", f"the items name {named}, more than amount_minor {request.amount_minor}"
        )


def accepted_items(kept: str) -> tuple[tuple[OrderItem, ...], int]:
    """The items and the non-commissionable part of an order's accepted terms
    (``order_terms``)."""
    values: list[Any] = json.loads(kept)
    named = dict(zip(ORDER_TERMS_FIELDS, values, strict=False))
    rows = named.get("items") or []
    items = tuple(OrderItem.model_validate(row) for row in rows)
    return items, int(named.get("non_commissionable_minor") or 0)


def check_refund_items_value(
    refund: OrderRefunded, order_items: Sequence[OrderItem], non_commissionable_minor: int
) -> None:
    """A refund naming items names what it refunds: its ``amount_minor`` is the items
    named plus, at most, the order's part that is no item (shipping, taxes); otherwise
    Rejected (422 naming ``items``). The rule is the ledger's
    (``afflux.shared.core.products.refund_items_problem``), which prices a refund that
    breaks it on its amount alone, ignoring the items named, so a merchant learns here
    that the items it named would not be what the ledger takes back:
    - a quantity stands for that share of the item's amount: a goodwill refund of 500
      naming one shoe of 2000 by quantity is a partial refund of the shoe, named by its
      ``amount_minor``;
    - money refunded beyond the items named and the order's non-item part: a refund of a
      whole order of 3000 naming only its shoe of 2000 names every item refunded, or none.
    A sku the order does not have (a typo), or any item of an order that lists none, is
    refused naming it: the ledger would price such a refund pro rata on its amount, and
    the merchant would not learn that what it named was not what was taken back."""
    units_of: dict[str, int] = {}
    for item in order_items:
        units_of[item.sku] = units_of.get(item.sku, 0) + item.quantity
    named_units: dict[str, int] = {}
    for at, row in enumerate(refund.items):
        if row.sku not in units_of:
            listed = ", ".join(repr(sku) for sku in sorted(units_of)[:20]) or "none"
            raise Rejected(
                422,
                f"items.{at}.sku",
                f"the order has no sku {row.sku!r} (its skus: {listed})",
            )
        # More units than the order has cannot be refunded: the ledger would take the
        # whole item and say nothing of the rest.
        named_units[row.sku] = named_units.get(row.sku, 0) + (row.quantity or 0)
        if named_units[row.sku] > units_of[row.sku]:
            raise Rejected(
                422,
                f"items.{at}.quantity",
                f"the order has {units_of[row.sku]} of sku {row.sku!r}; this refund names"
                f" {named_units[row.sku]}",
            )
    rows = [(item.sku, item.category, item.quantity, item.price_minor) for item in order_items]
    named = [(row.sku, row.quantity, row.amount_minor) for row in refund.items]
    problem = refund_items_problem(refund.amount_minor, rows, non_commissionable_minor, named)
    if problem:
        raise Rejected(422, "items", problem)


def refund_item_parts(
    refund: OrderRefunded, order_items: Sequence[OrderItem], non_commissionable_minor: int
) -> tuple[ItemRefundPart, ...]:
    """What the refund takes of each of the order's skus when the ledger prices it by its
    items (none otherwise), for the claim to check against the order's earlier refunds."""
    rows = [(item.sku, item.category, item.quantity, item.price_minor) for item in order_items]
    named = [(row.sku, row.quantity, row.amount_minor) for row in refund.items]
    return item_refund_parts(refund.amount_minor, rows, non_commissionable_minor, named)


def item_refunded_beyond(claim: RefundClaim) -> Rejected:
    """422 naming ``items``: the refund names more of a sku than its earlier refunds left.
    The ledger caps an item's refunds at the item, so the money refunded beyond it would
    take no commission back."""
    whole = claim.item_whole_minor or 0
    taken = claim.item_taken_minor or 0
    return Rejected(
        422,
        "items",
        f"sku {claim.item_sku}: earlier refunds of this order took {taken} of its {whole},"
        f" {max(whole - taken, 0)} left to refund; name what this refund refunds of it by"
        " amount_minor, or the items it refunds instead",
    )


def refund_event(
    request: RefundRequest,
    terms: CampaignTerms,
    merchant_id: str,
    placed: Placement,
    *,
    largest_order_minor: int | None = None,
) -> OrderRefunded:
    """The OrderRefunded event, at its ``placed`` time, for a refund that passes the
    stateless checks, or Rejected. ``largest_order_minor``: the largest ``max_order_minor``
    of any of the campaign's versions (default: ``terms``'), since the order refunded may
    have been placed under another version than the refund's."""
    check_merchant(terms, merchant_id)
    check_currency(request.currency, terms, required=True)
    if request.amount_minor <= 0:
        raise Rejected(422, "amount_minor", "must be positive")
    check_amount_limit(request.amount_minor, terms, largest_order_minor)
    check_refund_items(request)
    return OrderRefunded(
        event_id=derived_id("refund", request.campaign_id, request.refund_id),
        occurred_at=placed.occurred_at,
        reported_occurred_at=placed.reported_occurred_at,
        refund_id=request.refund_id,
        order_id=request.order_id,
        campaign_id=request.campaign_id,
        amount_minor=request.amount_minor,
        currency=request.currency,
        items=request.items,
    )


def refund_before_order(order_at_ms: int) -> Rejected:
    """The 422 for a refund dated before the order it refunds (``order_at_ms``: the
    order's time it is before): a refund cannot precede the sale it takes back."""
    order_at = from_ms(order_at_ms).isoformat(timespec="milliseconds")
    return Rejected(
        422, "occurred_at", f"the refund is dated before its order (order at {order_at})"
    )


def renewal_event(
    request: RenewalRequest,
    terms: CampaignTerms,
    merchant_id: str,
    placed: Placement,
) -> SubscriptionRenewed:
    """The SubscriptionRenewed event, at its ``placed`` time, or Rejected."""
    check_merchant(terms, merchant_id)
    check_currency(request.currency, terms, required=True)
    if request.amount_minor < 0:
        raise Rejected(422, "amount_minor", "must not be negative")
    check_amount_limit(request.amount_minor, terms)
    renewal_order = request.renewal_order_id or renewal_order_id(
        request.order_id, request.renewal_number
    )
    if renewal_order == request.order_id:
        raise Rejected(422, "renewal_order_id", "must differ from the first order's id")
    if len(renewal_order) > MAX_ID_CHARS:
        raise Rejected(
            422,
            "renewal_order_id",
            f"the default {renewal_order[:40]!r}... is over {MAX_ID_CHARS} characters: "
            "give renewal_order_id",
        )
    return SubscriptionRenewed(
        event_id=derived_id("renewal", request.campaign_id, renewal_order),
        occurred_at=placed.occurred_at,
        reported_occurred_at=placed.reported_occurred_at,
        order_id=request.order_id,
        renewal_order_id=renewal_order,
        renewal_number=request.renewal_number,
        campaign_id=request.campaign_id,
        merchant_id=merchant_id,
        amount_minor=request.amount_minor,
        currency=request.currency,
    )


def renewal_order_id(first_order_id: str, number: int) -> str:
    return f"{first_order_id}:renewal-{number}"


def lead_confirmed_event(
    order_id: str,
    request: LeadConfirmRequest,
    terms: CampaignTerms,
    merchant_id: str,
    now_ms: int,
    max_future_ms: int,
) -> LeadConfirmed:
    check_merchant(terms, merchant_id)
    occurred_at = request.occurred_at if request.occurred_at is not None else now_ms
    check_event_time(occurred_at, now_ms, max_future_ms)
    return LeadConfirmed(
        event_id=derived_id("lead", request.campaign_id, order_id),
        occurred_at=occurred_at,
        order_id=order_id,
        campaign_id=request.campaign_id,
    )
