"""The fraud review queue: risk signals on a conversion, and which of them hold it.

A conversion carries the signals raised by what was known when it was decided
(``risk_signals``, computed by the attribution worker, which holds the click and
the order, with ``signals``); the ledger adds ``burst`` (it sees every
conversion of a creator in the period). The campaign terms choose which signals
hold a conversion (``review.hold_on``): a held conversion accrues as usual but is
not approved at its lock; an admin or the merchant approves it (approved from
``max(lock end, decision time)``) or declines it (its line is reversed with the
reason), each decision a ``ConversionReviewed`` event on the ``reviews`` topic.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from afflux.shared.core.clock import MS_PER_SECOND
from afflux.shared.core.domains import normalize_domain

RiskSignal = Literal["fast_conversion", "same_ip", "self_referral", "coupon_site", "burst"]
SIGNALS: tuple[str, ...] = (
    "fast_conversion",
    "same_ip",
    "self_referral",
    "coupon_site",
    "burst",
)
BURST_WINDOW_MS = 3_600_000  # the sliding hour of ``burst``
# How much of an IP hash same_ip compares (and the attribution worker keeps per click):
# 64 bits, so a false match is negligible while a click's state stays small.
IP_PREFIX = 16
# A held conversion's approval date while it waits for a decision: never reached.
HELD_UNTIL = 2**53 - 1


class ReviewThresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_click_to_conversion_s: Annotated[int, Field(ge=0, le=86_400)] = Field(
        10, description="fast_conversion: an order less than this long after its click"
    )
    burst_per_hour: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        20,
        description="burst: a conversion that makes more than this many of its creator's"
        " conversions of the campaign-period within one hour (event time, sliding)",
    )


class ReviewTerms(BaseModel):
    """Which risk signals hold a conversion for review, and what the signals compare."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hold_on: tuple[RiskSignal, ...] = Field(
        (), description="signals that hold a conversion until an admin or the merchant decides"
    )
    thresholds: ReviewThresholds = Field(default_factory=ReviewThresholds)
    coupon_sites: tuple[str, ...] = Field(
        (),
        description="referrer hosts of coupon sites (a subdomain matches too): coupon_site",
    )
    creator_email_hashes: dict[str, str] = Field(
        default_factory=dict,
        description="affiliate_id -> the creator's registered hashed email: self_referral",
    )

    @field_validator("coupon_sites")
    @classmethod
    def _hosts(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        # As allowed domains are held: "site.example.." keeps its dots (an empty label,
        # no host) instead of passing as site.example. One that is nothing once
        # normalised (".") is dropped: as "" it would match every host ending in a dot.
        return tuple(site for h in hosts if (site := normalize_domain(h)))

    @field_validator("hold_on")
    @classmethod
    def _once(cls, signals: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(signals)) != len(signals):
            raise ValueError("hold_on: name each signal at most once")
        return signals


@dataclass(frozen=True, slots=True)
class SignalFacts:
    """What the attribution worker knows of one conversion when it decides it."""

    affiliate_id: str
    reason: str  # the rule that won: click_id, coupon, cookie, livestream, survey
    lag_ms: int | None = None  # order time minus the winning click's time
    click_ip_hash: str | None = None  # the winning click's
    customer_ip_hash: str | None = None  # the order's
    customer_email_hash: str | None = None  # the order's
    creator_clicked: bool = False  # the visitor has a click of the winning creator
    referrers: tuple[str, ...] = ()  # the order's referrer and the visitor's clicks'


def signals(review: ReviewTerms | None, facts: SignalFacts) -> tuple[str, ...]:
    """The risk signals of one conversion (every signal the facts raise, whether or not
    it holds the conversion: they are reported either way), in ``SIGNALS`` order."""
    if review is None:
        return ()
    raised: set[str] = set()
    limit = review.thresholds.min_click_to_conversion_s * MS_PER_SECOND
    if facts.lag_ms is not None and facts.lag_ms < limit:
        raised.add("fast_conversion")
    click_ip, customer_ip = facts.click_ip_hash, facts.customer_ip_hash
    if click_ip and customer_ip and click_ip[:IP_PREFIX] == customer_ip[:IP_PREFIX]:
        raised.add("same_ip")
    registered = review.creator_email_hashes.get(facts.affiliate_id)
    if registered and registered == facts.customer_email_hash:
        raised.add("self_referral")
    if (
        facts.reason == "coupon"
        and not facts.creator_clicked
        and any(on_site(r, review.coupon_sites) for r in facts.referrers)
    ):
        raised.add("coupon_site")
    return tuple(s for s in SIGNALS if s in raised)


def on_site(referrer: str, hosts: tuple[str, ...]) -> bool:
    """Whether ``referrer`` (a URL or a bare host) is one of ``hosts`` or below one; its
    host compared as a destination's is with allowed domains (``normalize_domain``)."""
    return bool(coupon_site_host(referrer, hosts))


def coupon_site_host(referrer: str | None, hosts: tuple[str, ...]) -> str:
    """The normalised host of ``referrer`` when it is on one of ``hosts``, else ""."""
    if not referrer or not hosts:
        return ""
    try:
        split = urlsplit(referrer).hostname if "//" in referrer else referrer.split("/")[0]
    except ValueError:  # a malformed URL (an unclosed IPv6 bracket) is no site
        return ""
    host = normalize_domain(split or "")
    if not host:
        return ""
    return host if any(host == h or host.endswith("." + h) for h in hosts) else ""


def holding(review: ReviewTerms | None, raised: tuple[str, ...]) -> tuple[str, ...]:
    """The raised signals the terms hold a conversion on."""
    if review is None or not review.hold_on:
        return ()
    return tuple(s for s in raised if s in review.hold_on)


def is_burst(times: list[int], at: int, per_hour: int) -> bool:
    """Whether the conversion at ``at`` makes more than ``per_hour`` conversions within
    the hour ending at it (``times``: the creator's conversion times, sorted, itself
    included)."""
    count = bisect_right(times, at) - bisect_left(times, at - BURST_WINDOW_MS + 1)
    return count > per_hour
