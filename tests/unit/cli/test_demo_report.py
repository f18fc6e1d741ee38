"""The demo's closing report: one ranking per currency, its totals, the legend for rows
paid without revenue, and where to look next."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pytest

from afflux.cli.console import console_for
from afflux.cli.demo_client import CreatorRow
from afflux.cli.demo_report import (
    NO_REVENUE_LEGEND,
    NextSteps,
    Totals,
    paid_without_revenue,
    print_next_steps,
    print_rankings,
    rankings,
)

pytestmark = pytest.mark.unit


def row(
    creator: str,
    currency: str,
    *,
    clicks: int = 10,
    conversions: int = 1,
    revenue: int = 10_000,
    commission: int = 800,
) -> CreatorRow:
    epc = round(commission / clicks) if clicks else 0
    return CreatorRow(creator, currency, clicks, conversions, revenue, commission, epc)


def printed(rows: list[CreatorRow]) -> str:
    out = io.StringIO()
    print_rankings(console_for(out), rows)
    return out.getvalue()


def test_each_currency_gets_a_ranking_of_its_own_never_mixed() -> None:
    found = rankings(
        [
            row("creator-01", "USD", commission=500),
            row("creator-02", "EUR", commission=900),
            row("creator-01", "EUR", commission=300),
        ]
    )
    assert [r.currency for r in found] == ["EUR", "USD"]
    assert {r.currency for r in found[0].rows} == {"EUR"}
    assert [r.affiliate_id for r in found[1].rows] == ["creator-01"]


def test_a_ranking_puts_the_best_paid_first_and_ties_by_creator_id() -> None:
    [eur] = rankings(
        [
            row("creator-03", "EUR", commission=100),
            row("creator-02", "EUR", commission=700),
            row("creator-01", "EUR", commission=100),
        ]
    )
    assert [r.affiliate_id for r in eur.rows] == ["creator-02", "creator-01", "creator-03"]


def test_totals_add_up_the_currency_only() -> None:
    eur, usd = rankings(
        [
            row("creator-01", "EUR", clicks=30, conversions=2, revenue=5_000, commission=400),
            row("creator-02", "EUR", clicks=10, conversions=1, revenue=0, commission=2_500),
            row("creator-01", "USD", clicks=99, conversions=9, revenue=99_999, commission=9_999),
        ]
    )
    assert eur.totals == Totals(
        clicks=40, conversions=3, revenue_minor=5_000, commission_minor=2_900
    )
    assert usd.totals.commission_minor == 9_999


@dataclass(frozen=True)
class EpcCase:
    clicks: int
    commission: int
    epc: int


EPC_CASES = [
    EpcCase(clicks=0, commission=500, epc=0),  # no clicks: no EPC, never a division by zero
    EpcCase(clicks=4, commission=10, epc=3),  # 2.5 rounds half up, as each row's EPC does
    EpcCase(clicks=3, commission=10, epc=3),  # 3.33 rounds down
    EpcCase(clicks=4, commission=-10, epc=-3),  # clawbacks round away from zero too
]


@pytest.mark.parametrize("case", EPC_CASES)
def test_total_epc_is_total_commission_per_total_click(case: EpcCase) -> None:
    totals = Totals(
        clicks=case.clicks, conversions=0, revenue_minor=0, commission_minor=case.commission
    )
    assert totals.epc_minor == case.epc


@dataclass(frozen=True)
class NoRevenueCase:
    revenue: int
    commission: int
    marked: bool


NO_REVENUE_CASES = [
    NoRevenueCase(revenue=0, commission=2_500, marked=True),  # a lead or base fee, no sale
    NoRevenueCase(revenue=0, commission=-150, marked=True),  # a clawed-back action
    NoRevenueCase(revenue=0, commission=0, marked=False),  # clicks only: nothing to explain
    NoRevenueCase(revenue=1, commission=1, marked=False),  # any sale explains its commission
]


@pytest.mark.parametrize("case", NO_REVENUE_CASES)
def test_rows_with_commission_but_no_revenue_are_marked(case: NoRevenueCase) -> None:
    paid = row("creator-01", "EUR", revenue=case.revenue, commission=case.commission)
    assert paid_without_revenue(paid) is case.marked


def test_the_printed_table_shows_totals_and_the_legend_under_a_marked_row() -> None:
    text = printed(
        [
            row("creator-01", "EUR", clicks=30, conversions=2, revenue=45_000, commission=4_200),
            row("creator-02", "EUR", clicks=20, conversions=1, revenue=0, commission=2_500),
        ]
    )
    assert "EUR: 2 creators" in text
    assert re.search(r"creator-02\s+20\s+1\s+0\.00\s+25\.00\*", text)
    assert re.search(r"total\s+50\s+3\s+450\.00\s+67\.00\s+1\.34", text)
    assert NO_REVENUE_LEGEND in text


def test_no_legend_when_every_paid_row_has_revenue() -> None:
    text = printed([row("creator-01", "USD", revenue=1_999, commission=100)])
    assert "*" not in text
    assert "commission without revenue" not in text


def test_each_currency_is_printed_as_its_own_table_with_its_own_total() -> None:
    text = printed(
        [
            row("creator-01", "EUR", clicks=10, commission=1_000),
            row("creator-01", "USD", clicks=5, commission=300),
        ]
    )
    eur, usd = text.split("USD: 1 creators")
    assert re.search(r"total\s+10\s+1\s+100\.00\s+10\.00", eur)
    assert re.search(r"total\s+5\s+1\s+100\.00\s+3\.00", usd)
    assert "USD" not in eur


def test_amounts_follow_the_currency_exponent() -> None:
    text = printed([row("creator-01", "JPY", revenue=5_000, commission=400)])
    assert re.search(r"creator-01\s+10\s+1\s+5,000\s+400", text)


def test_next_steps_name_the_portal_and_api_of_afflux_up() -> None:
    steps = NextSteps("http://127.0.0.1:8003", ("acme-fashion", "globex-apps"), "creator-07")
    out = io.StringIO()
    print_next_steps(console_for(out), steps)
    text = out.getvalue()
    assert "./afflux up" in text
    for url in (
        "http://127.0.0.1:8003/login",
        "./afflux keys issue --creator creator-07",
        "http://127.0.0.1:8003/portal/campaigns/acme-fashion",
        "http://127.0.0.1:8003/v1/kpis/creators",
        "http://127.0.0.1:8003/v1/kpis/campaigns/acme-fashion",
        "http://127.0.0.1:8003/v1/creators/creator-07/balance",
        "http://127.0.0.1:8003/docs",
    ):
        assert url in text


def test_next_steps_without_data_show_the_path_templates() -> None:
    lines = dict(NextSteps("http://127.0.0.1:9003", (), None).lines())
    assert lines[""].startswith("http://127.0.0.1:9003/v1/kpis/campaigns/{campaign_id}")
    assert "--creator {affiliate_id}" in lines["portal"]


def test_every_next_step_url_is_a_route_the_payouts_service_serves() -> None:
    from fastapi.routing import APIRoute

    from afflux.payouts.portal import brand_pages
    from afflux.payouts.routes import creators, kpis, reports, session

    templates = [
        route.path
        for module in (creators, kpis, reports, session, brand_pages)
        for route in module.router.routes
        if isinstance(route, APIRoute)
    ]
    patterns = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", t) + "$") for t in templates]
    base = "http://127.0.0.1:8003"
    paths = [
        where.split()[0].removeprefix(base)
        for _, where in NextSteps(base, ("acme-fashion",), "creator-01").lines()
        if where.startswith(base) and not where.startswith(f"{base}/docs")
    ]
    assert paths
    for path in paths:
        assert any(p.match(path) for p in patterns), f"{path} is no payouts route"
