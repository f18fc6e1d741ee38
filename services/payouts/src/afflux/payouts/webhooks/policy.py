"""What goes where and what a creator's endpoint may receive of it, how many requests one
owner may have in flight, when to try again, and which addresses may be called: pure
rules.

Nothing here reads the clock, the network or Redis: times, random draws and resolved
addresses are inputs, so each rule is a table in a unit test.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from afflux.shared.core.clock import from_ms
from afflux.shared.core.ids import derived_id
from afflux.shared.events import ConversionAttributed, ConversionReversed, Envelope, PayoutIssued

OwnerKind = Literal["merchant", "affiliate"]
Owner = tuple[OwnerKind, str]

# The event types an endpoint may subscribe to, and the topic that carries each.
EVENT_TYPES: dict[str, str] = {
    "conversion.attributed": "conversions",
    "conversion.reversed": "reversals",
    "payout.issued": "payouts",
}
TOPICS = tuple(dict.fromkeys(EVENT_TYPES.values()))
MAX_URL_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: str
    owner_kind: OwnerKind
    owner_id: str
    url: str
    event_types: tuple[str, ...]
    secret: str
    created_at: int  # ms
    description: str = ""

    @property
    def owner(self) -> Owner:
        return (self.owner_kind, self.owner_id)

    def public(self) -> dict[str, Any]:
        """What the admin API shows: everything but the secret."""
        return {
            "endpoint_id": self.endpoint_id,
            "owner_kind": self.owner_kind,
            "owner_id": self.owner_id,
            "url": self.url,
            "event_types": list(self.event_types),
            "created_at": self.created_at,
            "description": self.description,
        }


def event_type_of(event: Envelope) -> str | None:
    """The webhook event type of an event on one of the topics, None for the others."""
    if isinstance(event, ConversionAttributed):
        return "conversion.attributed"
    if isinstance(event, ConversionReversed):
        return "conversion.reversed"
    if isinstance(event, PayoutIssued):
        return "payout.issued"
    return None


def owners_of(event: Envelope, merchant_id: str | None) -> list[tuple[OwnerKind, str]]:
    """Who hears of ``event``: its creator, and the merchant running its campaign
    (``merchant_id`` from the campaign terms; None when the campaign is unknown)."""
    affiliate = getattr(event, "affiliate_id", None)
    owners: list[tuple[OwnerKind, str]] = []
    if isinstance(affiliate, str):
        owners.append(("affiliate", affiliate))
    if merchant_id:
        owners.append(("merchant", merchant_id))
    return owners


def subscribed(endpoints: Iterable[Endpoint], event_type: str) -> list[Endpoint]:
    """The endpoints, among an owner's, that asked for ``event_type``."""
    return [e for e in endpoints if event_type in e.event_types]


def webhook_id(endpoint_id: str, event_id: str) -> str:
    """The ``webhook-id`` of one event at one endpoint: derived, so every attempt, a
    redelivery after a crash and a replay carry the same id (receivers dedupe on it)."""
    return derived_id("msg", endpoint_id, event_id)


@dataclass(frozen=True, slots=True)
class CreatorView:
    """One event type as a creator's endpoint receives it: the ``kept`` fields, never the
    ``withheld`` ones. Together they are every field of the event, each one decided."""

    kept: frozenset[str]
    withheld: frozenset[str]


_ENVELOPE = frozenset({"type", "event_id", "schema_version", "occurred_at"})

# A creator's endpoint receives what the creator reads through its own API (its ledger's
# postings and lines, statement, balance and KPIs: its ids, amounts, times and rules),
# and nothing of the merchant's customer or of other creators: the raw event gave it
# the customer id, the visitor id and the rival creators' clicks (``assists``). A field
# added to an event is withheld until it is decided here, and
# tests/unit/payouts/test_webhook_policy.py fails until then.
CREATOR_VIEWS: dict[str, CreatorView] = {
    "conversion.attributed": CreatorView(
        kept=_ENVELOPE
        | {
            # Its conversion's ids and rule (postings, KPIs' conversions_by_rule).
            "conversion_id",
            "order_id",
            "campaign_id",
            "affiliate_id",
            "reason",
            "terms_version",
            "kind",
            "action",
            # The amounts the line's rule names ("10 % of 49.99 EUR", "renewal 2").
            "amount_minor",
            "currency",
            "non_commissionable_minor",
            "renewal_number",
            "first_order_id",  # its own first order: a renewal pays that order's winner
            "live_stream_id",  # rule livestream: its own stream (its content KPIs)
            "correction_reason",  # it won the order by a late fact of its own
            # Its own winning click's time, not the click's id (below).
            "clicked_at",
            "lag_ms",
        },
        withheld=frozenset(
            {
                # The merchant's customer and order: who bought, in which browser, what,
                # and what the merchant's risk checks made of it.
                "customer_id",
                "visitor_id",
                "click_id",  # "<visitor_id>.<nonce>": the visitor id again
                "new_customer",
                "items",
                "order_event_id",
                "risk_signals",
                "corrected_at",  # the time of the record behind a correction (a survey's)
                # The campaign's attribution settings, which no creator API shows.
                "model",
                "window_ms",
                # Other creators: their clicks, the conversion a correction replaced,
                # the creator a survey answer named.
                "assists",
                "supersedes",
                "survey_affiliate_id",
            }
        ),
    ),
    "conversion.reversed": CreatorView(
        kept=_ENVELOPE
        | {
            "reversal_id",
            "conversion_id",
            "order_id",
            "campaign_id",
            "affiliate_id",
            "amount_minor",  # the refund applied to its line
            "refunded_total_minor",  # what its own reversals of the order add up to
            "order_amount_minor",  # the amount its line's rule names
            "currency",
            "order_occurred_at",
            "reason",  # refund, or reattributed (a later click, stream or survey answer won)
        },
        withheld=frozenset(
            {
                # The merchant's refund as sent: its id (for a reattribution, the id of
                # the conversion that replaced this one, another creator's), the amount
                # asked before capping, the items.
                "refund_id",
                "requested_minor",
                "items",
            }
        ),
    ),
    "payout.issued": CreatorView(
        kept=_ENVELOPE
        | {
            "payout_id",
            "affiliate_id",
            "campaign_id",
            "period",
            "amount_minor",
            "currency",
            "line_ids",
        },
        withheld=frozenset(),
    ),
}


def creator_view(event_type: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``event`` its creator's endpoint receives: only those kept for its
    type (a field no decision names is left out)."""
    view = CREATOR_VIEWS.get(event_type)
    kept = view.kept if view is not None else _ENVELOPE
    # A kept list dropped past the body bound leaves its count (``payload_for``).
    counts = {f"{name}_omitted" for name in DROPPABLE if name in kept}
    return {name: value for name, value in event.items() if name in kept or name in counts}


def payload(event_type: str, event: Mapping[str, Any]) -> bytes:
    """The body: ``{"type", "timestamp", "data"}`` (Standard Webhooks' shape), the same
    bytes for the same event, whenever built."""
    occurred = int(event["occurred_at"])
    # Exact milliseconds: a float of seconds lost one for times past the year 2286.
    stamp = from_ms(occurred).isoformat(timespec="milliseconds")
    body = {"type": event_type, "timestamp": stamp.replace("+00:00", "Z"), "data": event}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


DEFAULT_MAX_BODY_BYTES = 65_536


def payload_for(
    owner_kind: OwnerKind,
    event_type: str,
    event: Mapping[str, Any],
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> bytes:
    """The body an owner's endpoint receives: a merchant's, the event as its topic
    carries it; a creator's, its creator view. A body past ``max_body_bytes`` goes
    without the lists of ``DROPPABLE`` (``items_omitted``, ``line_ids_omitted`` counting
    them), as long as it is: the ids and amounts are what an owner reconciles by."""
    data = creator_view(event_type, event) if owner_kind == "affiliate" else event
    body = payload(event_type, data)
    for field in DROPPABLE:
        if len(body) <= max_body_bytes:
            break
        listed = data.get(field)
        if isinstance(listed, list) and listed:
            data = {k: v for k, v in data.items() if k != field} | {f"{field}_omitted": len(listed)}
            body = payload(event_type, data)
    return body


# Lists that grow with an order or a creator's history, which an endpoint can read back
# from the APIs: past the bound a body goes without them, counting them. The orders
# batch takes an order of 500 items, and a payout names every line it paid (a creator's
# whole history in the campaign): their bodies were refused for good, and the owner never
# heard of that conversion or payout.
DROPPABLE = ("items", "line_ids")


def body_to_send(
    owner_kind: OwnerKind, body: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> str:
    """A scheduled body as ``owner_kind``'s endpoint may receive it: a creator's made
    its creator view again (the same bytes when it is one already), so a delivery
    scheduled with the whole event (before creator views, or by an older sender)
    never reaches a creator."""
    if owner_kind != "affiliate":
        return body
    parsed = json.loads(body)
    return payload_for(owner_kind, parsed["type"], parsed["data"], max_body_bytes).decode()


# What becomes of a claimed delivery: sent now; due again at once (no slot was free); or
# due again a moment later, behind the other owners' due deliveries (its owner has its
# share of the slots).
Admission = Literal["start", "no_slot", "owner_at_share"]


def admissions(
    owners: Sequence[Owner], busy: Mapping[Owner, int], *, share: int, free: int
) -> list[Admission]:
    """For each claimed delivery, given by its endpoint's owner in claim order: started
    while one of the ``free`` slots is left and its owner has fewer than ``share``
    requests in flight (``busy``, and those started before it here).

    Per owner, not per endpoint: a share per endpoint let one owner's four slow
    endpoints hold every slot of 16, and every other owner's deliveries waited for them."""
    in_flight = dict(busy)
    started = 0
    out: list[Admission] = []
    for owner in owners:
        if in_flight.get(owner, 0) >= share:
            out.append("owner_at_share")
        elif started >= free:
            out.append("no_slot")
        else:
            out.append("start")
            started += 1
            in_flight[owner] = in_flight.get(owner, 0) + 1
    return out


def fair_share(slots: int, owners_with_work: int, *, most: int) -> int:
    """How many requests one owner may have in flight: an equal part of the ``slots``
    among the owners with work (requests in flight or deliveries due), at most ``most``
    (a quarter of the slots), at least one.

    An owner over it starts nothing more until it is under again, so a slot a request's
    timeout frees goes to an owner under its part, a newcomer first: with a fixed quarter
    four slow owners held every slot, and a fifth waited for all their backlogs."""
    return max(1, min(most, slots // max(1, owners_with_work)))


def retry_delay_s(attempt: int, *, base_s: float, cap_s: float, draw: float) -> float:
    """Exponential backoff with full jitter: a uniform delay in [0, min(cap, base * 2^(n-1)))
    after failed attempt ``n`` (``draw`` is a uniform number in [0, 1))."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    ceiling: float = min(cap_s, base_s * 2.0 ** min(attempt - 1, 62))
    return draw * ceiling


def delivered(status: int) -> bool:
    """Any 2xx answer means the endpoint took the event; everything else is tried again."""
    return 200 <= status < 300


class RefusedUrl(ValueError):
    pass


def check_url(url: str) -> tuple[str, int]:
    """The host and port an acceptable endpoint URL is called at, or RefusedUrl naming the
    reason: http or https only, a host, no credentials in the URL, at most 2048 characters.

    The host is the one the HTTP client (httpx) connects to, in ASCII: a Unicode name as
    IDNA 2008 encodes it (``ß.example`` is ``xn--zca.example``). It was ``urlsplit``'s
    Unicode name, which ``getaddrinfo`` encodes with IDNA 2003 (``ss.example``), another
    name, maybe in another zone: a name checked as a public address was called at
    loopback. Looked up in ASCII, a name is never encoded again on the way."""
    if len(url) > MAX_URL_LENGTH:
        raise RefusedUrl(f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise RefusedUrl(f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise RefusedUrl(f"scheme {parts.scheme or '(none)'!r}: only http and https are called")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("credentials in the URL are refused; authenticate with the signature")
    try:
        _ = parts.port  # one that cannot be (99999) raises here; httpx takes it
    except ValueError as exc:
        raise RefusedUrl(f"bad port: {exc}") from exc
    if not parts.hostname:
        raise RefusedUrl("no host")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise RefusedUrl("whitespace or control characters in the URL")
    try:
        target = httpx.URL(url)  # what the client will be asked to call
    except httpx.InvalidURL as exc:
        raise RefusedUrl(f"not a URL the client calls: {exc}") from exc
    if target.userinfo:
        raise RefusedUrl("credentials in the URL are refused; authenticate with the signature")
    host = target.raw_host.decode("ascii")
    if not host:
        raise RefusedUrl("no host")
    return host, target.port if target.port is not None else _DEFAULT_PORTS[target.scheme]


_DEFAULT_PORTS = {"http": 80, "https": 443}


# Not reachable from the internet, yet not ``is_private`` to Python 3.11: the carrier NAT
# space (RFC 6598, where Alibaba Cloud's metadata service is, 100.100.100.200) and the IETF
# protocol assignments (192.0.0.0/24, Oracle Cloud's former metadata address 192.0.0.192).
# And two deprecated ranges Python 3.11 calls global: IPv6 site-local fec0::/10 (RFC 3879;
# old stacks and some internal networks still route it) and the 6to4 relay anycast
# 192.88.99.0/24 (RFC 7526; answered by whatever relay the local network routes it to).
_NOT_GLOBAL = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("192.88.99.0/24"),
    ipaddress.ip_network("fec0::/10"),
)


def address_refused(address: str, *, allow_private: bool) -> str | None:
    """Why ``address`` (a resolved IP) may not be called, or None. Unless private addresses
    are allowed (development, or a setting), loopback, private, link-local (cloud metadata
    at 169.254.169.254), multicast, reserved and unspecified addresses are refused, and any
    other address that is not global (carrier NAT space, 192.0.0.0/24, the 6to4 relay
    anycast 192.88.99.0/24, IPv6 site-local fec0::/10). IPv4-mapped and 6to4 IPv6
    addresses are judged as the IPv4 address they carry."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    if allow_private:
        return None
    for name, hit in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if hit:
            return f"{address} is a {name} address"
    if not ip.is_global or any(ip in network for network in _NOT_GLOBAL):
        return f"{address} is not a global address"
    return None
