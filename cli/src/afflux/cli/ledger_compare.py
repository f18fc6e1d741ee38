"""Every creator's expected ledger, from the input topics alone, beside the payouts API's.

Expected: the batch attribution oracle over clicks, orders and refunds, then
the pure commission engine over each campaign-period's facts. Actual: the
ledger lines the payouts API serves. Line ids are derived from their sources,
so the comparison is line by line, to the cent, except for the lines of an
order: a correction (a late click that won the order) gives the order a new
conversion id and leaves the replaced conversion's lines taken back beside it,
so an order's lines are compared as one net amount per creator.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import httpx

from afflux.oracle import attribute, net_outcomes
from afflux.shared.core.commission import (
    ClickTally,
    ConversionFact,
    Line,
    PeriodFacts,
    RefundFact,
    ledger_lines,
)
from afflux.shared.core.periods import period_of
from afflux.shared.core.terms import TermsVersion, terms_in_force
from afflux.shared.events import (
    AnyEvent,
    CampaignTermsPublished,
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    Envelope,
    LeadConfirmed,
)

Key = tuple[str, str]  # campaign, period


def campaign_versions(events: Sequence[AnyEvent]) -> dict[str, tuple[TermsVersion, ...]]:
    versions: dict[str, tuple[TermsVersion, ...]] = {}
    for e in events:
        if isinstance(e, CampaignTermsPublished) and len(e.versions) >= len(
            versions.get(e.campaign_id, ())
        ):
            versions[e.campaign_id] = e.versions
    return versions


def attribution_differences(events: Sequence[AnyEvent], outputs: Iterable[Envelope]) -> list[str]:
    """Per order, the stack's conversion once its corrections are netted (the one no later
    conversion superseded) against the oracle's, which decides on event times alone."""
    versions = campaign_versions(events)
    inputs = [e for e in events if not isinstance(e, CampaignTermsPublished)]
    want = net_outcomes(attribute(inputs, versions).conversions)
    have = net_outcomes(outputs)
    differences = []
    for key in sorted(want.keys() | have.keys()):
        w, h = want.get(key), have.get(key)
        wanted = (w.affiliate_id, w.reason, w.click_id) if w else "unattributed"
        had = (h.affiliate_id, h.reason, h.click_id) if h else "unattributed"
        if wanted != had:
            differences.append(f"order {key[0]}/{key[1]}: {had}, the oracle says {wanted}")
    return differences


def expected_lines(events: Sequence[AnyEvent]) -> dict[str, list[Line]]:
    """affiliate -> its expected lines."""
    versions = campaign_versions(events)
    inputs = [e for e in events if not isinstance(e, CampaignTermsPublished)]
    result = attribute(inputs, versions)
    return lines_of(events, [*result.conversions, *result.reversals])


def lines_of(events: Sequence[AnyEvent], outputs: Sequence[Envelope]) -> dict[str, list[Line]]:
    """affiliate -> the lines the commission engine makes of attribution ``outputs``
    (conversions, forwarded confirmations, reversals; copies by id counted once) and the
    clicks among ``events``, as the payouts ledger does."""
    versions = campaign_versions(events)
    inputs = [e for e in events if not isinstance(e, CampaignTermsPublished)]
    unique = list({e.event_id: e for e in outputs}.values())

    def period(cid: str, at: int) -> str:
        return period_of(at, terms_in_force(versions[cid], at).terms.plan.period)

    conversions: dict[Key, list[ConversionFact]] = defaultdict(list)
    order_period: dict[tuple[str, str], str] = {}
    confirmations: dict[Key, dict[str, str]] = defaultdict(dict)
    refunds: dict[Key, list[RefundFact]] = defaultdict(list)
    for e in unique:
        if isinstance(e, ConversionAttributed):
            key = (e.campaign_id, period(e.campaign_id, e.occurred_at))
            order_period[(e.campaign_id, e.order_id)] = key[1]
            conversions[key].append(
                ConversionFact(
                    e.conversion_id,
                    e.event_id,
                    e.order_id,
                    e.affiliate_id,
                    e.kind,
                    e.action,
                    e.amount_minor,
                    e.currency,
                    e.new_customer,
                    e.occurred_at,
                    e.terms_version,
                )
            )
    for e in unique:
        if isinstance(e, LeadConfirmed) and (e.campaign_id, e.order_id) in order_period:
            key = (e.campaign_id, order_period[(e.campaign_id, e.order_id)])
            confirmations[key][e.order_id] = e.event_id
    for r in unique:
        if isinstance(r, ConversionReversed):
            key = (r.campaign_id, period(r.campaign_id, r.order_occurred_at))
            refunds[key].append(
                RefundFact(
                    r.reversal_id,
                    r.event_id,
                    r.order_id,
                    r.amount_minor,
                    r.occurred_at,
                    r.conversion_id,
                    r.reason,
                )
            )
    clicks: dict[Key, dict[str, list[int]]] = defaultdict(dict)  # affiliate -> [unique, first]
    seen: set[str] = set()
    for e in inputs:
        if isinstance(e, ClickRecorded) and e.campaign_id in versions and e.click_id not in seen:
            seen.add(e.click_id)
            if e.flagged:
                continue
            tally = clicks[(e.campaign_id, period(e.campaign_id, e.occurred_at))].setdefault(
                e.affiliate_id, [0, e.occurred_at]
            )
            tally[0] += 1
            tally[1] = min(tally[1], e.occurred_at)
    out: dict[str, list[Line]] = defaultdict(list)
    for cid, p in set(conversions) | set(refunds) | set(clicks):
        facts = PeriodFacts(
            campaign_id=cid,
            period=p,
            conversions=tuple(conversions[(cid, p)]),
            confirmed_orders=frozenset(confirmations[(cid, p)]),
            confirmation_ids=confirmations[(cid, p)],
            refunds=tuple(refunds[(cid, p)]),
            clicks=tuple(ClickTally(a, n, first) for a, (n, first) in clicks[(cid, p)].items()),
        )
        currency = max(versions[cid], key=lambda v: v.version).terms.currency
        for line in ledger_lines(facts, versions[cid], currency):
            out[line.affiliate_id].append(line)
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


async def actual_lines(payouts_url: str, affiliates: Sequence[str]) -> dict[str, dict[str, int]]:
    """affiliate -> comparison key -> amount, as the payouts API serves the lines."""
    out: dict[str, dict[str, int]] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        listed = await http.get(f"{payouts_url}/v1/kpis/creators")
        listed.raise_for_status()
        everyone = set(affiliates) | {row["affiliate_id"] for row in listed.json()["creators"]}
        for affiliate in sorted(everyone):
            answer = await http.get(f"{payouts_url}/v1/creators/{affiliate}/ledger")
            if answer.status_code == 404:
                out[affiliate] = {}
                continue
            answer.raise_for_status()
            mine = out[affiliate] = {}
            for x in answer.json()["lines"]:
                key = net_key(x["line_id"], x["campaign_id"], x["period"], x["order_id"])
                mine[key] = mine.get(key, 0) + x["amount_minor"]
    return out


async def ledger_differences(events: Sequence[AnyEvent], payouts_url: str) -> tuple[list[str], int]:
    """The differences, line by line, and how many creator ledgers were compared."""
    expected = expected_lines(events)
    actual = await actual_lines(payouts_url, sorted(expected))
    return line_differences(expected, actual), len(set(expected) | set(actual))


def line_differences(
    expected: dict[str, list[Line]], actual: dict[str, dict[str, int]]
) -> list[str]:
    """Expected lines against actual amounts by comparison key (see ``net_key``); an
    order whose lines net to nothing on one side and are absent on the other agrees."""
    differences = []
    for affiliate in sorted(set(expected) | set(actual)):
        want = netted(expected.get(affiliate, [])).get(affiliate, {})
        have = actual.get(affiliate, {})
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
                    f" {w} {line.currency} ({line.rule})"
                )
        want_total = sum(want.values())
        have_total = sum(have.values())
        if want_total != have_total:
            differences.append(f"{affiliate}: total {have_total}, the oracle says {want_total}")
    return differences
