"""What ``afflux demo`` prints at the end: one creator ranking per currency with its
totals, a legend for rows paid without revenue, and where to look next.

Amounts of different currencies are never added up or ranked against each other, so
each currency gets a table of its own. Revenue counts sales only, while leads, app
actions, paid clicks and base fees earn commission without a sale: such rows are marked
and explained under their table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from afflux.cli.demo_client import CreatorRow
from afflux.shared.core.money import Money, divide_half_up

NO_REVENUE_MARK = "*"
NO_REVENUE_LEGEND = (
    f"{NO_REVENUE_MARK} commission without revenue: revenue counts sales only, while leads, "
    "app installs and sign-ups, paid clicks and base fees earn commission without a sale."
)
EPC_NOTE = "EPC: earnings per click, commission / clicks."


@dataclass(frozen=True)
class Totals:
    clicks: int
    conversions: int
    revenue_minor: int
    commission_minor: int

    @property
    def epc_minor(self) -> int:
        """Commission per click over the whole table, rounded half up as each row's is."""
        return divide_half_up(self.commission_minor, self.clicks) if self.clicks else 0


@dataclass(frozen=True)
class CurrencyRanking:
    """The creators paid in one currency, best paid first, and their totals."""

    currency: str
    rows: tuple[CreatorRow, ...]
    totals: Totals

    @property
    def has_rows_without_revenue(self) -> bool:
        return any(paid_without_revenue(row) for row in self.rows)


def paid_without_revenue(row: CreatorRow) -> bool:
    return row.commission_minor != 0 and row.revenue_minor == 0


def rankings(rows: Iterable[CreatorRow]) -> list[CurrencyRanking]:
    """One ranking per currency (by currency code); rows by commission, highest first,
    then by creator id."""
    by_currency: dict[str, list[CreatorRow]] = {}
    for row in rows:
        by_currency.setdefault(row.currency, []).append(row)
    return [
        CurrencyRanking(
            currency=currency,
            rows=tuple(sorted(found, key=lambda r: (-r.commission_minor, r.affiliate_id))),
            totals=Totals(
                clicks=sum(r.clicks for r in found),
                conversions=sum(r.conversions for r in found),
                revenue_minor=sum(r.revenue_minor for r in found),
                commission_minor=sum(r.commission_minor for r in found),
            ),
        )
        for currency, found in sorted(by_currency.items())
    ]


def amount_text(amount_minor: int, currency: str) -> str:
    """``1234.50`` for 123450 EUR: the currency is in the table's title."""
    return Money(amount_minor, currency).format().rsplit(" ", 1)[0]


def ranking_table(ranking: CurrencyRanking) -> Table:
    currency, totals = ranking.currency, ranking.totals
    table = Table(
        title=f"{currency}: {len(ranking.rows)} creators",
        title_justify="left",
        box=box.SIMPLE,
        show_edge=False,
        pad_edge=False,
        show_footer=True,
    )
    table.add_column("#", justify="right", footer="")
    table.add_column("creator", footer="total")
    table.add_column("clicks", justify="right", footer=str(totals.clicks))
    table.add_column("conv.", justify="right", footer=str(totals.conversions))
    table.add_column(
        f"revenue {currency}", justify="right", footer=amount_text(totals.revenue_minor, currency)
    )
    table.add_column(
        f"commission {currency}",
        justify="right",
        footer=amount_text(totals.commission_minor, currency) + " ",
    )
    table.add_column(
        f"EPC {currency}", justify="right", footer=amount_text(totals.epc_minor, currency)
    )
    for place, row in enumerate(ranking.rows, start=1):
        mark = NO_REVENUE_MARK if paid_without_revenue(row) else " "
        table.add_row(
            str(place),
            row.affiliate_id,
            str(row.clicks),
            str(row.conversions),
            amount_text(row.revenue_minor, currency),
            amount_text(row.commission_minor, currency) + mark,
            amount_text(row.epc_minor, currency),
        )
    return table


def ranking_block(ranking: CurrencyRanking) -> Group:
    """The table, then its notes: the legend only when a row carries its mark."""
    notes = [NO_REVENUE_LEGEND] if ranking.has_rows_without_revenue else []
    notes.append(EPC_NOTE)
    return Group(ranking_table(ranking), *(Text(note, style="dim") for note in notes))


@dataclass(frozen=True)
class NextSteps:
    """Where a user of the demo looks next: ``afflux up``'s payouts service."""

    payouts_url: str
    campaign_ids: tuple[str, ...]
    affiliate_id: str | None

    def lines(self) -> list[tuple[str, str]]:
        """(what, where) pairs, most useful first."""
        base = self.payouts_url
        campaign = self.campaign_ids[0] if self.campaign_ids else "{campaign_id}"
        creator = self.affiliate_id or "{affiliate_id}"
        return [
            ("keep a stack", "./afflux up  (stays up until Ctrl-C; data under .afflux/up)"),
            ("send it traffic", 'README.md, "Running it": a link, a click, a signed order'),
            ("portal", f"{base}/login  (key: ./afflux keys issue --creator {creator})"),
            ("", f"{base}/portal/campaigns/{campaign}  (key: --merchant <its merchant>)"),
            ("KPIs", f"{base}/v1/kpis/creators  (admin token or key: Authorization: Bearer)"),
            ("", f"{base}/v1/kpis/campaigns/{campaign}"),
            ("a creator", f"{base}/v1/creators/{creator}/balance  (also /ledger, /statement)"),
            ("API reference", f"{base}/docs  (every service serves its own /docs)"),
            ("documentation", "docs/portal.md (who sees what), docs/payouts.md (the ledger)"),
        ]


def next_steps_block(steps: NextSteps) -> Group:
    lines = steps.lines()
    width = max(len(what) for what, _ in lines) + 2
    return Group(
        Text("Where to look next (the demo's stack has stopped with its data):"),
        *(Text.assemble("  ", (what.ljust(width), "bold"), where) for what, where in lines),
    )


def print_rankings(console: Console, rows: Sequence[CreatorRow]) -> None:
    blocks: list[RenderableType] = [ranking_block(r) for r in rankings(rows)]
    if not blocks:
        blocks.append(Text("No creator has clicks or commission yet."))
    for block in blocks:
        console.print()
        console.print(block)


def print_next_steps(console: Console, steps: NextSteps) -> None:
    console.print()
    console.print(next_steps_block(steps))


@dataclass(frozen=True)
class ContentReport:
    """A creator-economy campaign as the KPI API answers it: the campaign's row and one
    row per content (``/v1/kpis/campaigns/{id}`` and ``.../contents``)."""

    campaign_id: str
    kpis: dict[str, Any]
    contents: tuple[dict[str, Any], ...]


CONTENT_NOTE = (
    "ER: engagement (likes+comments+shares+saves) / followers. CTR: valid clicks / "
    "impressions. RPM: net revenue per 1,000 views (per content: a live stream's sales). "
    "EMV: the reach priced as ads at the campaign's values. none: no denominator."
)


def ratio_text(value: object) -> str:
    return "none" if value is None else f"{float(value) * 100:.2f}%"  # type: ignore[arg-type]


def money_text(value: object, currency: str) -> str:
    return "none" if value is None else amount_text(int(value), currency)  # type: ignore[call-overload]


def campaign_table(report: ContentReport) -> Table:
    """Sales KPIs and content KPIs of the campaign, side by side."""
    k = report.kpis
    currency = str(k["currency"])
    by_rule = k["conversions_by_rule"]
    table = Table(
        title=f"{report.campaign_id} ({currency}): sales and content KPIs",
        title_justify="left",
        box=box.SIMPLE,
        show_edge=False,
        pad_edge=False,
    )
    columns = [
        ("clicks", str(k["clicks"])),
        (
            "conv. link/code/live/survey",
            f"{by_rule['click_id'] + by_rule['cookie']}/"
            f"{by_rule['coupon']}/{by_rule['livestream']}/{by_rule['survey']}",
        ),
        ("revenue", amount_text(int(k["net_revenue_minor"]), currency)),
        ("commission", amount_text(int(k["commission_minor"]), currency)),
        ("eng. pay", amount_text(int(k["engagement_pay_minor"]), currency)),
        ("views", f"{k['views']:,}"),
        ("engagement", f"{k['engagement']:,}"),
        ("ER", ratio_text(k["engagement_rate"])),
        ("CTR", ratio_text(k["ctr"])),
        ("RPM", money_text(k["rpm_minor"], currency)),
        ("EMV", money_text(k["emv_minor"], currency)),
    ]
    for name, _ in columns:
        table.add_column(name, justify="right")
    table.add_row(*(value for _, value in columns))
    return table


def contents_table(report: ContentReport) -> Table:
    currency = str(report.kpis["currency"])
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for name, justify in (
        ("content", "left"),
        ("kind", "left"),
        ("creator", "left"),
        ("views", "right"),
        ("engagement", "right"),
        ("ER", "right"),
        ("RPM", "right"),
        ("EMV", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in sorted(report.contents, key=lambda c: (-int(c["views"]), str(c["content_id"]))):
        table.add_row(
            f"{c['platform']}:{c['content_id']}",
            str(c["kind"]),
            str(c["affiliate_id"]),
            f"{c['views']:,}",
            f"{c['engagement']:,}",
            ratio_text(c["engagement_rate"]),
            money_text(c["rpm_minor"], currency),
            money_text(c["emv_minor"], currency),
        )
    return table


def content_block(report: ContentReport) -> Group:
    return Group(
        campaign_table(report),
        contents_table(report),
        Text(CONTENT_NOTE, style="dim"),
    )


def print_content(console: Console, reports: Sequence[ContentReport]) -> None:
    for report in reports:
        console.print()
        console.print(content_block(report))
