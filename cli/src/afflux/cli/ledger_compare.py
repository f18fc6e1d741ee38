"""Every creator's expected ledger, from the input topics alone, beside the payouts API's.

Expected: the batch attribution oracle over clicks, orders and refunds, then
the batch commission reference (``afflux.oracle.commission``) over each
campaign-period's facts: what every line must net to. Actual: the creator's
postings as the payouts API serves them, summed per line. Line ids are derived
from their sources, so the comparison is line by line, to the cent, except for
the lines of an order: a correction (a late click that won the order) gives the
order a new conversion id and leaves the replaced conversion's lines taken back
beside it, so an order's lines are compared as one net amount per creator.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from afflux.oracle import attribute, net_outcomes
from afflux.oracle.commission import TargetLine, reference_from_events
from afflux.shared.core.terms import TermsVersion, takes_over
from afflux.shared.events import (
    AnyEvent,
    CampaignTermsPublished,
    ClickRecorded,
    ContentPublished,
    ContentReleased,
    ContentStats,
    ConversionAttributed,
    ConversionReviewed,
    Envelope,
)

Key = tuple[str, str]  # campaign, period


def campaign_versions(events: Sequence[AnyEvent]) -> dict[str, tuple[TermsVersion, ...]]:
    versions: dict[str, tuple[TermsVersion, ...]] = {}
    for e in events:
        # As every service's campaign view takes them (``takes_over``).
        if isinstance(e, CampaignTermsPublished) and takes_over(
            versions.get(e.campaign_id, ()), e.versions
        ):
            versions[e.campaign_id] = e.versions
    return versions


def attribution_differences(events: Sequence[AnyEvent], outputs: Iterable[Envelope]) -> list[str]:
    """Per order, the stack's conversion once its corrections are netted (the one no later
    conversion superseded) against the oracle's, which decides on event times alone: its
    creator, rule, click and live stream."""
    versions = campaign_versions(events)
    inputs = [e for e in events if not isinstance(e, CampaignTermsPublished | ConversionReviewed)]
    oracle = attribute(inputs, versions).conversions
    outputs = list(outputs)
    want, want_streams = net_outcomes(oracle), final_streams(oracle)
    have, have_streams = net_outcomes(outputs), final_streams(outputs)
    differences = []
    for key in sorted(want.keys() | have.keys()):
        w, h = want.get(key), have.get(key)
        wanted = (w.affiliate_id, w.reason, w.click_id, want_streams[key]) if w else "unattributed"
        had = (h.affiliate_id, h.reason, h.click_id, have_streams[key]) if h else "unattributed"
        if wanted != had:
            differences.append(f"order {key[0]}/{key[1]}: {had}, the oracle says {wanted}")
    return differences


def final_streams(events: Iterable[Envelope]) -> dict[tuple[str, str], str | None]:
    """(campaign, order) -> the live stream of its conversion no later one superseded."""
    conversions = [e for e in events if isinstance(e, ConversionAttributed)]
    superseded = {e.supersedes for e in conversions}
    return {
        (e.campaign_id, e.order_id): e.live_stream_id
        for e in conversions
        if e.conversion_id not in superseded
    }


@dataclass(frozen=True)
class Line:
    """A reference line where it lives: what the creator's postings for it must net to."""

    line_id: str
    affiliate_id: str
    campaign_id: str
    period: str
    currency: str
    kind: str
    order_id: str | None
    amount_minor: int

    @classmethod
    def of(cls, campaign_id: str, period: str, currency: str, line: TargetLine) -> Line:
        return cls(
            line.line_id,
            line.affiliate_id,
            campaign_id,
            period,
            currency,
            line.kind,
            line.order_id,
            line.pays_minor,
        )


def expected_lines(events: Sequence[AnyEvent]) -> dict[str, list[Line]]:
    """affiliate -> its expected lines."""
    versions = campaign_versions(events)
    inputs = [e for e in events if not isinstance(e, CampaignTermsPublished | ConversionReviewed)]
    result = attribute(inputs, versions)
    return lines_of(events, [*result.conversions, *result.reversals])


def lines_of(events: Sequence[AnyEvent], outputs: Sequence[Envelope]) -> dict[str, list[Line]]:
    """affiliate -> the lines the commission reference makes of attribution ``outputs``
    (conversions, forwarded confirmations, reversals; copies by id counted once) and the
    clicks, content and review decisions among ``events``, placed as the payouts ledger
    places them."""
    versions = campaign_versions(events)
    unique = list({e.event_id: e for e in outputs}.values())
    clicks = [
        e
        for e in events
        if isinstance(
            e,
            ClickRecorded | ContentPublished | ContentStats | ContentReleased | ConversionReviewed,
        )
    ]
    out: dict[str, list[Line]] = defaultdict(list)
    for (cid, period), lines in reference_from_events([*unique, *clicks], versions).items():
        currency = max(versions[cid], key=lambda v: v.version).terms.currency
        for line in lines:
            if line.pays_minor:
                out[line.affiliate_id].append(Line.of(cid, period, currency, line))
    return out


def net_key(line_id: str, campaign_id: str, period: str, order_id: str | None) -> str:
    """What a line is compared under: an order's lines net together, others by line id."""
    return f"order {campaign_id} {period} {order_id}" if order_id else line_id


def netted(lines: Iterable[Line]) -> dict[str, dict[str, int]]:
    """affiliate -> comparison key -> amount."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for x in lines:
        key = net_key(x.line_id, x.campaign_id, x.period, x.order_id)
        out[x.affiliate_id][key] = out[x.affiliate_id].get(key, 0) + x.amount_minor
    return out


async def creator_postings(
    http: httpx.AsyncClient, payouts_url: str, creator: str
) -> list[dict[str, Any]]:
    """Every posting of ``creator``, page after page."""
    postings: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1000"} | ({"cursor": cursor} if cursor else {})
        answer = await http.get(f"{payouts_url}/v1/creators/{creator}/ledger", params=params)
        answer.raise_for_status()
        page = answer.json()
        postings += page["postings"]
        cursor = page.get("next_cursor")
        if not cursor:
            return postings


def admin_headers(admin_token: str) -> dict[str, str]:
    """The payouts API answers a creator's figures to admin (docs/portal.md, "Access")."""
    return {"Authorization": f"Bearer {admin_token}"}


async def actual_lines(
    payouts_url: str, affiliates: Sequence[str], admin_token: str
) -> dict[str, dict[str, int]]:
    """affiliate -> comparison key -> amount: the creator's postings as the payouts API
    serves them (every page), summed per line."""
    out: dict[str, dict[str, int]] = {}
    async with httpx.AsyncClient(timeout=30, headers=admin_headers(admin_token)) as http:
        listed = await http.get(f"{payouts_url}/v1/kpis/creators")
        listed.raise_for_status()
        everyone = set(affiliates) | {row["affiliate_id"] for row in listed.json()["creators"]}
        for affiliate in sorted(everyone):
            mine: dict[str, int] = {}
            known = await http.get(f"{payouts_url}/v1/creators/{affiliate}/balance")
            if known.status_code != 404:
                for x in await creator_postings(http, payouts_url, affiliate):
                    key = net_key(x["line_id"], x["campaign_id"], x["period"], x["order_id"])
                    mine[key] = mine.get(key, 0) + x["amount_minor"]
            out[affiliate] = {k: v for k, v in mine.items() if v}
    return out


async def ledger_differences(
    events: Sequence[AnyEvent], payouts_url: str, admin_token: str
) -> tuple[list[str], int]:
    """The differences, line by line, and how many creator ledgers were compared."""
    expected = expected_lines(events)
    actual = await actual_lines(payouts_url, sorted(expected), admin_token)
    return line_differences(expected, actual), len(set(expected) | set(actual))


def line_differences(
    expected: dict[str, list[Line]], actual: dict[str, dict[str, int]]
) -> list[str]:
    """Expected lines against actual amounts by comparison key (see ``net_key``); an
    order whose lines net to nothing on one side and are absent on the other agrees."""
    differences = []
    for affiliate in sorted(set(expected) | set(actual)):
        want = {
            k: v for k, v in netted(expected.get(affiliate, [])).get(affiliate, {}).items() if v
        }
        have = {k: v for k, v in actual.get(affiliate, {}).items() if v}
        about = {
            net_key(x.line_id, x.campaign_id, x.period, x.order_id): x
            for x in expected.get(affiliate, [])
        }
        for key in sorted(set(want) | set(have)):
            w, h = want.get(key, 0), have.get(key, 0)
            if w == h:
                continue
            line = about.get(key)
            if line is None:
                differences.append(f"{affiliate}: unexpected {key} of {h}")
            elif key not in have:
                differences.append(
                    f"{affiliate}: missing {line.kind} {key} of {w} {line.currency}"
                    f" ({line.campaign_id} {line.period})"
                )
            else:
                differences.append(
                    f"{affiliate}: {line.kind} {key} is {h}, the oracle says"
                    f" {w} {line.currency} ({line.campaign_id} {line.period})"
                )
        want_total = sum(want.values())
        have_total = sum(have.values())
        if want_total != have_total:
            differences.append(f"{affiliate}: total {have_total}, the oracle says {want_total}")
    return differences
