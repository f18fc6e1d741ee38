"""Webhook rules: who hears of an event and what a creator's endpoint receives of it,
when a failed delivery is tried again, which URLs and addresses may be called, and ids
that stay the same across redeliveries."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from afflux.payouts.webhooks import policy
from afflux.payouts.webhooks.policy import Endpoint
from afflux.payouts.webhooks.routing import merchant_of
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    Assist,
    CampaignTermsPublished,
    ConversionAttributed,
    ConversionReversed,
    Envelope,
    OrderItem,
    PayoutIssued,
    RefundItem,
)
from afflux.shared.io.campaign_view import CampaignDirectory

pytestmark = pytest.mark.unit

AT = 1_794_700_800_000  # 2026-11-15T00:00:00Z


def conversion() -> ConversionAttributed:
    return ConversionAttributed(
        event_id="ev-1",
        occurred_at=AT,
        conversion_id="conv-1",
        order_id="o-1",
        campaign_id="shop",
        affiliate_id="creator-1",
        reason="cookie",
        model="last_click",
        window_ms=1,
        terms_version=1,
        amount_minor=10_000,
        currency="EUR",
        order_event_id="oev-1",
    )


def reversal() -> ConversionReversed:
    return ConversionReversed(
        event_id="rev-1",
        occurred_at=AT,
        reversal_id="rev-1",
        refund_id="ref-1",
        conversion_id="conv-1",
        order_id="o-1",
        campaign_id="shop",
        affiliate_id="creator-1",
        amount_minor=500,
        requested_minor=500,
        refunded_total_minor=500,
        order_amount_minor=10_000,
        currency="EUR",
        order_occurred_at=AT,
    )


def payout() -> PayoutIssued:
    return PayoutIssued(
        event_id="pay-1",
        occurred_at=AT,
        payout_id="pay-1",
        affiliate_id="creator-1",
        campaign_id="shop",
        period="2026-11",
        amount_minor=1_000,
        currency="EUR",
    )


def endpoint(endpoint_id: str, *types: str, kind: policy.OwnerKind = "merchant") -> Endpoint:
    owner = "m-1" if kind == "merchant" else "creator-1"
    return Endpoint(endpoint_id, kind, owner, "https://example.com/h", types, "whsec_x", 0)


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (conversion, "conversion.attributed"),
        (reversal, "conversion.reversed"),
        (payout, "payout.issued"),
    ],
)
def test_each_topic_event_has_its_webhook_type(make: object, expect: str) -> None:
    assert callable(make)
    assert policy.event_type_of(make()) == expect
    assert policy.EVENT_TYPES[expect] in ("conversions", "reversals", "payouts")


def test_an_event_goes_to_its_creator_and_its_campaigns_merchant() -> None:
    owners = policy.owners_of(conversion(), "m-1")
    assert owners == [("affiliate", "creator-1"), ("merchant", "m-1")]


def test_an_event_of_an_unknown_campaign_goes_to_its_creator_only() -> None:
    assert policy.owners_of(payout(), None) == [("affiliate", "creator-1")]


def test_only_endpoints_subscribed_to_the_type_are_chosen() -> None:
    both = endpoint("ep-both", "conversion.attributed", "conversion.reversed")
    payouts_only = endpoint("ep-pay", "payout.issued")
    chosen = policy.subscribed([both, payouts_only], "conversion.reversed")
    assert [e.endpoint_id for e in chosen] == ["ep-both"]


def test_the_webhook_id_is_the_same_for_the_same_endpoint_and_event() -> None:
    assert policy.webhook_id("ep-1", "ev-1") == policy.webhook_id("ep-1", "ev-1")
    assert policy.webhook_id("ep-1", "ev-1") != policy.webhook_id("ep-2", "ev-1")
    assert policy.webhook_id("ep-1", "ev-1") != policy.webhook_id("ep-1", "ev-2")
    assert policy.webhook_id("ep-1", "ev-1").startswith("msg_")


def test_the_body_is_the_same_bytes_whenever_built() -> None:
    event = conversion().model_dump(mode="json")
    body = policy.payload("conversion.attributed", event)
    assert body == policy.payload("conversion.attributed", dict(reversed(event.items())))
    parsed = json.loads(body)
    assert parsed["type"] == "conversion.attributed"
    assert parsed["timestamp"] == "2026-11-15T00:00:00.000Z"
    assert parsed["data"]["order_id"] == "o-1"


# A conversion with every field set, as in the leak the creator view closes: creator-01
# won the order of the merchant's customer Jane, after creator-02 had clicked too.
CUSTOMER, VISITOR, RIVAL = "cust-jane.doe@example.com", "v_543c0a", "creator-02"
RIVAL_CLICK = f"{VISITOR}.c7ce19"
FULL_CONVERSION = ConversionAttributed(
    event_id="conv-1",
    occurred_at=AT,
    conversion_id="conv-1",
    order_id="o-1",
    campaign_id="shop",
    affiliate_id="creator-01",
    reason="survey",
    model="first_click",
    window_ms=86_400_000,
    click_id=f"{VISITOR}.9f2c44",
    clicked_at=AT - 60_000,
    lag_ms=60_000,
    assists=(Assist(affiliate_id=RIVAL, click_id=RIVAL_CLICK, clicked_at=AT - 120_000),),
    terms_version=3,
    kind="renewal",
    action="signup",
    amount_minor=4_999,
    currency="EUR",
    visitor_id=VISITOR,
    customer_id=CUSTOMER,
    new_customer=True,
    order_event_id="oev-secret-1",
    items=(OrderItem(sku="sku-lipstick-red", quantity=2, price_minor=2_000, category="lips"),),
    non_commissionable_minor=999,
    renewal_number=2,
    first_order_id="o-0",
    supersedes="conv-of-creator-02",
    correction_reason="late_survey",
    corrected_at=AT + 5_000,
    live_stream_id="tiktok:live-1",
    survey_affiliate_id=RIVAL,
    risk_signals=("same_ip", "fast_conversion"),
)
FULL_REVERSAL = ConversionReversed(
    event_id="rev-1",
    occurred_at=AT + 1,
    reversal_id="rev-1",
    refund_id="conv-of-creator-02",  # a reattribution names the conversion that replaced it
    conversion_id="conv-1",
    order_id="o-1",
    campaign_id="shop",
    affiliate_id="creator-01",
    amount_minor=500,
    requested_minor=700,
    refunded_total_minor=500,
    order_amount_minor=4_999,
    currency="EUR",
    order_occurred_at=AT,
    reason="reattributed",
    items=(RefundItem(sku="sku-lipstick-red", quantity=1),),
)
FULL_PAYOUT = payout().model_copy(update={"line_ids": ("line-1", "line-2")})


@dataclass(frozen=True)
class CreatorSees:
    event: Envelope
    event_type: str
    fields: tuple[str, ...]  # every field of the creator's body, in order


CREATOR_SEES = [
    CreatorSees(
        FULL_CONVERSION,
        "conversion.attributed",
        (
            "action",
            "affiliate_id",
            "amount_minor",
            "campaign_id",
            "clicked_at",
            "conversion_id",
            "correction_reason",
            "currency",
            "event_id",
            "first_order_id",
            "kind",
            "lag_ms",
            "live_stream_id",
            "non_commissionable_minor",
            "occurred_at",
            "order_id",
            "reason",
            "renewal_number",
            "schema_version",
            "terms_version",
            "type",
        ),
    ),
    CreatorSees(
        FULL_REVERSAL,
        "conversion.reversed",
        (
            "affiliate_id",
            "amount_minor",
            "campaign_id",
            "conversion_id",
            "currency",
            "event_id",
            "occurred_at",
            "order_amount_minor",
            "order_id",
            "order_occurred_at",
            "reason",
            "refunded_total_minor",
            "reversal_id",
            "schema_version",
            "type",
        ),
    ),
    CreatorSees(
        FULL_PAYOUT,
        "payout.issued",
        (
            "affiliate_id",
            "amount_minor",
            "campaign_id",
            "currency",
            "event_id",
            "line_ids",
            "occurred_at",
            "payout_id",
            "period",
            "schema_version",
            "type",
        ),
    ),
]


@pytest.mark.parametrize("case", CREATOR_SEES, ids=lambda c: c.event_type)
def test_a_creators_body_holds_exactly_the_fields_its_own_api_shows(case: CreatorSees) -> None:
    data = case.event.model_dump(mode="json")
    body = json.loads(policy.payload_for("affiliate", case.event_type, data))
    assert tuple(sorted(body["data"])) == case.fields
    assert body["data"] == {name: data[name] for name in case.fields}  # values as on the topic
    assert body["type"] == case.event_type


@pytest.mark.parametrize(
    ("event_type", "model"),
    [
        ("conversion.attributed", ConversionAttributed),
        ("conversion.reversed", ConversionReversed),
        ("payout.issued", PayoutIssued),
    ],
)
def test_every_field_of_an_event_is_decided_for_creators(
    event_type: str, model: type[Envelope]
) -> None:
    # A field added to the event fails here until CREATOR_VIEWS keeps or withholds it.
    view = policy.CREATOR_VIEWS[event_type]
    assert view.kept.isdisjoint(view.withheld)
    assert view.kept | view.withheld == set(model.model_fields)
    assert set(policy.CREATOR_VIEWS) == set(policy.EVENT_TYPES)


@dataclass(frozen=True)
class Withheld:
    event: Envelope
    event_type: str
    field: str
    whose: str  # whose data the field is


WITHHELD = [
    Withheld(FULL_CONVERSION, "conversion.attributed", "customer_id", "the merchant's customer"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "visitor_id", "the customer's browser"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "click_id", "holds the visitor id"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "new_customer", "the merchant's customer"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "items", "the merchant's basket"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "order_event_id", "the merchant's event"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "risk_signals", "the merchant's checks"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "corrected_at", "a survey answer's time"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "model", "the campaign's settings"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "window_ms", "the campaign's settings"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "assists", "rival creators' clicks"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "supersedes", "a rival's conversion"),
    Withheld(FULL_CONVERSION, "conversion.attributed", "survey_affiliate_id", "a rival"),
    Withheld(FULL_REVERSAL, "conversion.reversed", "refund_id", "a rival's conversion"),
    Withheld(FULL_REVERSAL, "conversion.reversed", "requested_minor", "the merchant's refund"),
    Withheld(FULL_REVERSAL, "conversion.reversed", "items", "the merchant's basket"),
]


@pytest.mark.parametrize("case", WITHHELD, ids=lambda c: f"{c.event_type}:{c.field}")
def test_a_creators_body_never_holds_merchant_customer_or_rival_fields(case: Withheld) -> None:
    data = case.event.model_dump(mode="json")
    assert data[case.field] not in (None, (), [], False)  # set, so its absence means withheld
    creator = json.loads(policy.payload_for("affiliate", case.event_type, data))["data"]
    merchant = json.loads(policy.payload_for("merchant", case.event_type, data))["data"]
    assert case.field not in creator, case.whose
    assert merchant[case.field] == data[case.field]  # the merchant keeps what it had


@pytest.mark.parametrize("case", CREATOR_SEES, ids=lambda c: c.event_type)
def test_no_customer_or_rival_value_appears_anywhere_in_a_creators_body(
    case: CreatorSees,
) -> None:
    body = policy.payload_for("affiliate", case.event_type, case.event.model_dump(mode="json"))
    for secret in (CUSTOMER, VISITOR, RIVAL, "oev-secret-1", "sku-lipstick-red", "same_ip"):
        assert secret.encode() not in body


@pytest.mark.parametrize("case", CREATOR_SEES, ids=lambda c: c.event_type)
def test_a_merchants_body_is_the_event_as_its_topic_carries_it(case: CreatorSees) -> None:
    data = case.event.model_dump(mode="json")
    assert policy.payload_for("merchant", case.event_type, data) == policy.payload(
        case.event_type, data
    )


def test_a_field_no_decision_names_is_left_out_of_a_creators_body() -> None:
    data = FULL_PAYOUT.model_dump(mode="json") | {"added_later": "merchant data"}
    assert "added_later" not in policy.creator_view("payout.issued", data)


@pytest.mark.parametrize("case", CREATOR_SEES, ids=lambda c: c.event_type)
def test_a_body_scheduled_whole_is_sent_to_a_creator_as_its_view(case: CreatorSees) -> None:
    data = case.event.model_dump(mode="json")
    whole = policy.payload(case.event_type, data).decode()
    view = policy.payload_for("affiliate", case.event_type, data).decode()
    assert policy.body_to_send("affiliate", whole) == view  # scheduled before creator views
    assert policy.body_to_send("affiliate", view) == view  # the same bytes: same signature
    assert policy.body_to_send("merchant", whole) == whole


SLOW: policy.Owner = ("merchant", "m-slow")
OTHER: policy.Owner = ("merchant", "m-other")
CREATOR: policy.Owner = ("affiliate", "m-slow")  # a creator of the same name: another owner


@dataclass(frozen=True)
class Admitting:
    owners: tuple[policy.Owner, ...]  # the claimed deliveries' owners, in claim order
    busy: dict[policy.Owner, int]  # requests in flight before the claim
    free: int
    expect: tuple[policy.Admission, ...]


START, NO_SLOT, AT_SHARE = "start", "no_slot", "owner_at_share"


@pytest.mark.parametrize(
    "case",
    [
        # An owner starts up to its share (2 here), whatever endpoints its deliveries go to.
        Admitting((SLOW,) * 3, {}, 8, (START, START, AT_SHARE)),
        # Its requests already in flight count: at its share, none of its own start...
        Admitting((SLOW, OTHER, SLOW), {SLOW: 2}, 8, (AT_SHARE, START, AT_SHARE)),
        # ...and another owner's still do, up to the free slots.
        Admitting((SLOW, OTHER, OTHER), {SLOW: 2}, 1, (AT_SHARE, START, NO_SLOT)),
        # Past the free slots a delivery waits for one, its owner under its share or not.
        Admitting((OTHER, SLOW, SLOW), {}, 1, (START, NO_SLOT, NO_SLOT)),
        # The owner is its kind and id: a merchant and a creator of one name are two owners.
        Admitting((SLOW, CREATOR, CREATOR), {SLOW: 2}, 8, (AT_SHARE, START, START)),
        Admitting((), {SLOW: 2}, 8, ()),  # nothing claimed
        Admitting((SLOW,), {}, 0, (NO_SLOT,)),  # no slot free
    ],
)
def test_an_owner_starts_at_most_its_share_of_the_slots(case: Admitting) -> None:
    busy_before = dict(case.busy)
    got = policy.admissions(case.owners, case.busy, share=2, free=case.free)
    assert tuple(got) == case.expect
    assert case.busy == busy_before  # the caller counts what it starts


@pytest.mark.parametrize(
    ("owners_with_work", "share"),
    [
        (0, 4),  # nobody else: a quarter of 16, never more
        (1, 4),
        (4, 4),  # four owners fill the 16 slots at a quarter each
        (5, 3),  # a fifth with work: the four are over their part, the freed slot is its
        (8, 2),
        (16, 1),
        (40, 1),  # more owners than slots: one each, never none
    ],
)
def test_an_owners_share_is_an_equal_part_of_the_slots_at_most_a_quarter(
    owners_with_work: int, share: int
) -> None:
    assert policy.fair_share(16, owners_with_work, most=4) == share


@dataclass(frozen=True)
class Backoff:
    attempt: int
    draw: float
    expect: float


@pytest.mark.parametrize(
    "case",
    [
        Backoff(1, 0.999, 0.999),  # after the first failure: up to the base (1 s)
        Backoff(1, 0.0, 0.0),  # full jitter: a draw of 0 retries at once
        Backoff(2, 0.5, 1.0),  # the ceiling doubles: 2 s
        Backoff(4, 0.5, 4.0),  # 8 s
        Backoff(7, 0.5, 30.0),  # 64 s is above the 60 s cap: the cap
        Backoff(200, 0.5, 30.0),  # a huge attempt number never overflows
    ],
)
def test_backoff_is_exponential_with_full_jitter_under_a_cap(case: Backoff) -> None:
    delay = policy.retry_delay_s(case.attempt, base_s=1.0, cap_s=60.0, draw=case.draw)
    assert delay == pytest.approx(case.expect)


def test_backoff_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        policy.retry_delay_s(0, base_s=1.0, cap_s=60.0, draw=0.5)


def test_the_default_schedule_of_eight_attempts_ends_within_about_an_hour() -> None:
    # The largest possible wait, all draws at their top, with the service's defaults.
    worst = sum(policy.retry_delay_s(n, base_s=30, cap_s=3600, draw=1.0) for n in range(1, 8))
    assert worst == 30 * (2**7 - 1)


@pytest.mark.parametrize(
    ("status", "ok"),
    [(199, False), (200, True), (204, True), (299, True), (300, False), (410, False), (500, False)],
)
def test_only_a_2xx_answer_counts_as_delivered(status: int, ok: bool) -> None:
    assert policy.delivered(status) is ok


@dataclass(frozen=True)
class Url:
    url: str
    refused: str | None  # a word of the reason, None when accepted


@pytest.mark.parametrize(
    "case",
    [
        Url("https://hooks.example.com/afflux", None),  # the usual
        Url("http://127.0.0.1:8080/h", None),  # http is allowed (addresses are judged apart)
        Url("ftp://example.com/h", "scheme"),  # only http and https
        Url("file:///etc/passwd", "scheme"),  # never a local file
        Url("gopher://example.com/", "scheme"),  # nor other protocols
        Url("https://user:pw@example.com/h", "credentials"),  # no credentials in URLs
        Url("https:///h", "host"),  # a host is needed
        Url("https://example.com:99999/h", "port"),  # a port that cannot be
        Url("https://example.com/" + "a" * 2048, "2048"),  # too long
        Url("http://[::1/h", "not a URL"),  # an unclosed IPv6 bracket
        Url("https://example.com/a b", "whitespace"),  # never sent as it stands
    ],
)
def test_endpoint_urls(case: Url) -> None:
    if case.refused is None:
        policy.check_url(case.url)
    else:
        with pytest.raises(policy.RefusedUrl, match=case.refused):
            policy.check_url(case.url)


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("93.184.215.14", None),  # a public address
        ("2606:4700::1111", None),  # a public IPv6 address
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.0.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata services
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6 is judged as its IPv4
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.100.100.200", "global"),  # carrier NAT space: Alibaba Cloud's metadata service
        ("100.64.0.1", "global"),  # the shared address space's first address (RFC 6598)
        ("100.128.0.1", None),  # just past it: a public address
        ("192.0.0.192", "global"),  # IETF protocol assignments: Oracle Cloud's old metadata
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 is judged as its IPv4 (169.254.169.254)
        ("2002:5db8:d70e::1", None),  # 6to4 of a public IPv4
        ("fec0::1", "global"),  # IPv6 site-local (deprecated, RFC 3879): Python calls it global
        ("feff:ffff::1", "global"),  # the site-local range's last /16 (fec0::/10)
        ("fe80::1", "link-local"),  # just below it: link-local, as before
        ("ff00::1", "multicast"),  # just above it: multicast, as before
        ("192.88.99.1", "global"),  # 6to4 relay anycast (deprecated, RFC 7526)
        ("192.88.99.255", "global"),  # the relay range's last address
        ("192.88.98.255", None),  # just below it: a public address
        ("192.88.100.1", None),  # just above it: a public address
        ("2002:c058:6301::1", "global"),  # 6to4 of the relay anycast, judged as 192.88.99.1
        ("::ffff:192.88.99.1", "global"),  # IPv4-mapped relay anycast
    ],
)
def test_private_addresses_are_refused_unless_allowed(address: str, refused: str | None) -> None:
    reason = policy.address_refused(address, allow_private=False)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert refused in reason
    assert policy.address_refused(address, allow_private=True) is None


def test_the_merchant_is_the_one_of_the_terms_in_force_at_the_events_time() -> None:
    def version(number: int, effective_from: int, merchant: str) -> TermsVersion:
        terms = CampaignTerms.model_validate(
            {
                "campaign_id": "shop",
                "merchant_id": merchant,
                "currency": "EUR",
                "plan": {"sale": {"rate": {"percent": "10"}}},
            }
        )
        return TermsVersion(
            version=number, effective_from=effective_from, published_at=0, terms=terms
        )

    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id="shop",
            versions=(version(1, 0, "m-old"), version(2, AT + 1, "m-new")),
        )
    )
    assert merchant_of(directory, conversion()) == "m-old"  # at AT: the first terms
    later = conversion().model_copy(update={"occurred_at": AT + 1})
    assert merchant_of(directory, later) == "m-new"  # from the second's effective_from
    unknown = conversion().model_copy(update={"campaign_id": "other"})
    assert merchant_of(directory, unknown) is None


@pytest.mark.parametrize(
    ("occurred_at", "stamp"),
    [
        (1_790_000_000_123, "2026-09-21T14:13:20.123Z"),
        (58_400_791_911_627, "3820-08-25T02:11:51.627Z"),  # a float of seconds gave .626
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_the_payload_timestamp_is_the_events_exact_millisecond(
    occurred_at: int, stamp: str
) -> None:
    body = json.loads(policy.payload("conversion.attributed", {"occurred_at": occurred_at}))

    assert body["timestamp"] == stamp


def test_a_merchants_body_past_the_bound_goes_without_its_items_and_counts_them() -> None:
    """An order of 500 items the batch API took made a body the sender refused for good:
    the merchant never heard of that conversion, and a replay could not help."""
    data = FULL_CONVERSION.model_dump(mode="json")
    item = data["items"][0]
    data["items"] = [item | {"sku": f"sku-{n:04d}-" + "x" * 180} for n in range(500)]
    whole = policy.payload("conversion.attributed", data)
    assert len(whole) > 65_536

    body = policy.payload_for("merchant", "conversion.attributed", data)

    assert len(body) <= 65_536
    sent = json.loads(body)["data"]
    assert "items" not in sent
    assert sent["items_omitted"] == 500
    assert {k: v for k, v in sent.items() if k != "items_omitted"} == {
        k: v for k, v in data.items() if k != "items"
    }
    # Within the bound (a larger one set), the items go as they are.
    assert policy.payload_for("merchant", "conversion.attributed", data, len(whole)) == whole


@pytest.mark.parametrize("owner", ["merchant", "affiliate"])
def test_a_payout_naming_more_lines_than_the_bound_holds_goes_without_them(owner: str) -> None:
    """A payout names every line it paid, a creator's whole history in the campaign: past
    about 1,650 lines every later payout was refused for good, to both endpoints."""
    ids = tuple(f"line_{n:032x}" for n in range(1_700))
    data = FULL_PAYOUT.model_copy(update={"line_ids": ids}).model_dump(mode="json")
    assert len(policy.payload("payout.issued", data)) > 65_536

    body = policy.payload_for(owner, "payout.issued", data)  # type: ignore[arg-type]

    assert len(body) <= 65_536
    sent = json.loads(body)["data"]
    assert "line_ids" not in sent
    assert sent["line_ids_omitted"] == 1_700
    assert (sent["payout_id"], sent["amount_minor"]) == (data["payout_id"], data["amount_minor"])


def test_a_creators_payout_body_sent_keeps_the_count_and_the_senders_bound() -> None:
    """Made its creator view again when sent, the body lost ``line_ids_omitted``, and a
    larger configured bound was not the one used."""
    ids = tuple(f"line_{n:032x}" for n in range(3_000))
    data = FULL_PAYOUT.model_copy(update={"line_ids": ids}).model_dump(mode="json")
    stored = policy.payload_for("affiliate", "payout.issued", data).decode()

    sent = json.loads(policy.body_to_send("affiliate", stored))["data"]
    assert sent["line_ids_omitted"] == 3_000

    roomy = policy.payload_for("affiliate", "payout.issued", data, 1 << 20).decode()
    sent = json.loads(policy.body_to_send("affiliate", roomy, 1 << 20))["data"]
    assert sent["line_ids"] == list(ids)
