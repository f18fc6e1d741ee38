"""Webhook rules: who hears of an event, when a failed delivery is tried again, which
URLs and addresses may be called, and ids that stay the same across redeliveries."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from afflux.payouts.webhooks import policy
from afflux.payouts.webhooks.policy import Endpoint
from afflux.payouts.webhooks.routing import merchant_of
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ConversionAttributed,
    ConversionReversed,
    PayoutIssued,
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
