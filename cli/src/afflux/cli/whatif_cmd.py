"""``afflux campaigns whatif DRAFT.yaml [--from DATE --to DATE]``: what draft terms would
have paid, replayed over the recorded events; nothing is published or written.

DRAFT.yaml is a campaigns file (examples/campaigns.yaml); each campaign in it is
compared with its recorded terms history (docs/campaigns.md, "What-if").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from afflux.cli.console import console_for
from afflux.shared.campaign_file import InvalidCampaignFile, load_campaign_file
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.core.whatif.diff import WhatIfDiff, draft_problem
from afflux.shared.core.whatif.log import DateRange, RangeProblem, day_range
from afflux.shared.io.gc_policy import tune_gc
from afflux.shared.io.kafka import BrokerUnreachable, check_broker
from afflux.shared.io.whatif_source import ReplayBounds, ReplayRefused, read_terms, run_whatif
from afflux.shared.secret_policy import settings_error
from afflux.shared.settings import CommonSettings

NAME = "afflux campaigns whatif"
SHOWN_CHANGES = 15


class Refused(Exception):
    """A draft, a range or a campaign the command refuses (exit 2)."""


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from", dest="first", type=date.fromisoformat, default=None, metavar="DATE",
        help="whatif: first day (UTC, YYYY-MM-DD) of the orders replayed; default: the first",
    )  # fmt: skip
    parser.add_argument(
        "--to", dest="last", type=date.fromisoformat, default=None, metavar="DATE",
        help="whatif: last day (UTC, included); default: the last recorded",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="whatif: print the diff as JSON")


def run(path: Path, first: date | None, last: date | None, as_json: bool) -> int:
    try:
        draft_file = load_campaign_file(path)
        window = day_range(first, last)
    except InvalidCampaignFile as exc:
        print(f"{NAME}: invalid draft: {exc}", file=sys.stderr)
        return 2
    except RangeProblem as exc:
        print(f"{NAME}: --{exc.field}: {exc.reason}", file=sys.stderr)
        return 2
    try:
        settings = CommonSettings()
    except ValidationError as exc:
        print(f"{NAME}: invalid settings: {settings_error(exc)}", file=sys.stderr)
        return 2
    drafts = [entry.terms for entry in draft_file.campaigns]
    tune_gc()  # the replay allocates fast and makes no cycles, as in the services
    try:
        diffs = asyncio.run(_diffs(settings.kafka_bootstrap, drafts, window))
    except (Refused, BrokerUnreachable, ReplayRefused) as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps([d.as_dict() for d in diffs], indent=2))
        return 0
    console = console_for(sys.stdout)
    for diff in diffs:
        print_diff(console, diff)
    return 0


async def _diffs(
    bootstrap: str, drafts: Sequence[CampaignTerms], window: DateRange
) -> list[WhatIfDiff]:
    await check_broker(bootstrap)
    directory = await read_terms(bootstrap)
    out = []
    for index, draft in enumerate(drafts):
        if draft.campaign_id not in directory:
            raise Refused(
                f"campaigns.{index}.terms.campaign_id: unknown campaign {draft.campaign_id!r}"
            )
        versions = directory.versions(draft.campaign_id)
        problem = draft_problem(draft, directory.latest(draft.campaign_id).terms)
        if problem is not None:
            raise Refused(f"invalid draft: campaigns.{index}.terms.{problem[0]}: {problem[1]}")
        diff, _ = await run_whatif(bootstrap, versions, draft, window, ReplayBounds())
        out.append(diff)
    return out


def _money(minor: int, currency: str) -> str:
    return Money(minor, currency).format()


def _window_text(window: DateRange) -> str:
    from datetime import UTC, datetime, timedelta

    def day(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()

    first = day(window.start) if window.start is not None else "the first order"
    last = (
        (datetime.fromtimestamp(window.end / 1000, UTC) - timedelta(days=1)).date().isoformat()
        if window.end is not None
        else "the last"
    )
    return f"{first} to {last}"


def print_diff(console: Console, diff: WhatIfDiff, shown: int = SHOWN_CHANGES) -> None:
    """The diff as a table per creator and its largest line changes with their reasons."""
    currency = diff.currency
    console.print()
    console.print(
        f"What-if {diff.campaign_id} ({_window_text(diff.window)}, {diff.orders} orders): "
        f"{_money(diff.current_total_minor, currency)} now, "
        f"{_money(diff.draft_total_minor, currency)} with the draft"
    )
    if diff.empty:
        console.print("No difference: the draft pays every creator what the current terms do.")
        return
    table = Table(box=None, pad_edge=False, title_justify="left")
    for header in ("creator", "current", "draft", "change", "conv.", "gained", "lost"):
        table.add_column(header, justify="left" if header == "creator" else "right")
    for row in diff.creators:
        table.add_row(
            row.affiliate_id,
            _money(row.current_minor, currency),
            _money(row.draft_minor, currency),
            f"{'+' if row.delta_minor > 0 else ''}{_money(row.delta_minor, currency)}",
            f"{row.current_conversions} -> {row.draft_conversions}",
            str(len(row.gained)),
            str(len(row.lost)),
        )
    console.print(table)
    console.print(f"Lines that change ({diff.changes_total}; the largest first):")
    for change in diff.changes[:shown]:
        delta = change.draft_minor - change.current_minor
        sign = "+" if delta > 0 else ""
        console.print(
            f"  {change.affiliate_id}: {sign}{_money(delta, currency)}  {change.reason}",
            markup=False,
            highlight=False,
        )
    if diff.changes_total > shown:
        console.print(f"  ... and {diff.changes_total - shown} more (--json lists up to 500)")
