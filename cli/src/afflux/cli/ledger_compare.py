"""Every creator's expected ledger, from the input topics alone, beside the payouts API's.

Expected: the batch attribution oracle over clicks, orders and refunds, then
the pure commission engine over each campaign-period's facts. Actual: the
ledger lines the payouts API serves. Line ids are derived from their sources,
so the comparison is line by line, to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import httpx

from afflux.shared.core.commission import (
    ClickTally,
    ConversionFact,
    Line,
    PeriodFacts,
    RefundFact,
    ledger_lines,
    version_at,
)
from afflux.shared.core.periods import period_of
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import (
    AnyEvent,
    CampaignTermsPublished,
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    LeadConfirmed,
)
from afflux.shared.oracle import attribute

Key = tuple[str, str]  # campaign, period


def campaign_versions(events: Sequence[AnyEvent]) -> dict[str, tuple[TermsVersion, ...]]:
    versions: dict[str, tuple[TermsVersion, ...]] = {}
    for e in events:
        if isinstance(e, CampaignTermsPublished) and len(e.versions) >= len(
            versions.get(e.campaign_id, ())
        ):
            versions[e.campaign_id] = e.versions
    return versions


def expected_lines(
    events: Sequence[AnyEvent], arrivals: Mapping[str, int] | None = None
) -> dict[str, list[Line]]:
    """affiliate -> its expected lines; ``arrivals`` (event id -> broker timestamp) makes
    clicks that reached the broker after their order's grace late, as in the worker."""
    versions = campaign_versions(events)
    inputs = [e for e in events if not isinstance(e, CampaignTermsPublished)]
    result = attribute(inputs, versions, arrivals)

    def period(cid: str, at: int) -> str:
        return period_of(at, version_at(versions[cid], at).terms.plan.period)

    conversions: dict[Key, list[ConversionFact]] = defaultdict(list)
    order_period: dict[tuple[str, str], str] = {}
    confirmations: dict[Key, dict[str, str]] = defaultdict(dict)
    refunds: dict[Key, list[RefundFact]] = defaultdict(list)
    for e in result.conversions:
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
    for e in result.conversions:
        if isinstance(e, LeadConfirmed) and (e.campaign_id, e.order_id) in order_period:
            key = (e.campaign_id, order_period[(e.campaign_id, e.order_id)])
            confirmations[key][e.order_id] = e.event_id
    for r in result.reversals:
        if isinstance(r, ConversionReversed):
            key = (r.campaign_id, period(r.campaign_id, r.order_occurred_at))
            refunds[key].append(
                RefundFact(r.reversal_id, r.event_id, r.order_id, r.amount_minor, r.occurred_at)
            )
    clicks: dict[Key, dict[str, list[int]]] = defaultdict(dict)  # affiliate -> [unique, first]
    seen: set[str] = set()
    for e in inputs:
        if isinstance(e, ClickRecorded) and e.campaign_id in versions and e.click_id not in seen:
            seen.add(e.click_id)
            if e.is_bot or e.is_duplicate:
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


async def actual_lines(payouts_url: str, affiliates: Sequence[str]) -> dict[str, dict[str, int]]:
    """affiliate -> line id -> amount, as the payouts API serves them."""
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
            out[affiliate] = {x["line_id"]: x["amount_minor"] for x in answer.json()["lines"]}
    return out


async def ledger_differences(
    events: Sequence[AnyEvent], payouts_url: str, arrivals: Mapping[str, int] | None = None
) -> tuple[list[str], int]:
    """The differences, line by line, and how many creator ledgers were compared."""
    expected = expected_lines(events, arrivals)
    actual = await actual_lines(payouts_url, sorted(expected))
    differences = []
    for affiliate in sorted(set(expected) | set(actual)):
        want = {x.line_id: x for x in expected.get(affiliate, [])}
        have = actual.get(affiliate, {})
        for line_id in sorted(set(want) | set(have)):
            w = want.get(line_id)
            h = have.get(line_id)
            if w is None:
                differences.append(f"{affiliate}: unexpected line {line_id} of {h}")
            elif h is None:
                differences.append(
                    f"{affiliate}: missing {w.kind} line {line_id} of {w.amount_minor}"
                    f" {w.currency} ({w.campaign_id} {w.period}, order {w.order_id})"
                )
            elif h != w.amount_minor:
                differences.append(
                    f"{affiliate}: {w.kind} line {line_id} is {h}, the oracle says"
                    f" {w.amount_minor} {w.currency} ({w.rule})"
                )
        want_total = sum(x.amount_minor for x in want.values())
        have_total = sum(have.values())
        if want_total != have_total:
            differences.append(f"{affiliate}: total {have_total}, the oracle says {want_total}")
    return differences, len(set(expected) | set(actual))
