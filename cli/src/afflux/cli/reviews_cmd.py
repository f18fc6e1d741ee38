"""``afflux reviews``: the review queue of conversions held for review, and decisions on
them, through the payouts service's API (docs/payouts.md, "Review queue").

``list`` prints the held conversions (``--status approved|declined|all``, ``--campaign``);
``approve ID`` and ``decline ID --reason TEXT`` put a decision on the ``reviews`` topic
(an unknown conversion, or one not held or already decided, exits 1 with the service's
answer). The service is ``--url`` (default AFFLUX_PAYOUTS_URL, else
http://127.0.0.1:$AFFLUX_PAYOUTS_PORT); the token is AFFLUX_ADMIN_TOKEN.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from afflux.cli.payouts_admin import call
from afflux.shared.core.money import CURRENCY_EXPONENTS, Money


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "reviews",
        help="conversions held for review: list, approve, decline",
        description=__doc__,
    )
    parser.add_argument("--url", default=None, help="the payouts service's base URL")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the queue (held conversions by default)")
    listing.add_argument("--campaign", default=None, help="only this campaign's")
    listing.add_argument(
        "--status", default="held", choices=("held", "approved", "declined", "all")
    )
    approve = actions.add_parser("approve", help="approve a held conversion")
    approve.add_argument("conversion_id")
    approve.add_argument("--reason", default="", help="why (kept with the decision)")
    decline = actions.add_parser("decline", help="decline a held conversion: reversed")
    decline.add_argument("conversion_id")
    decline.add_argument("--reason", default="", help="why (on the reversal's posting)")


def request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None, dict[str, Any]]:
    """Method, path, JSON body and query of the API call an action makes."""
    if args.action == "list":
        query = {"status": args.status}
        if args.campaign:
            query["campaign_id"] = args.campaign
        return "GET", "/v1/reviews", None, query
    return "POST", f"/v1/reviews/{args.conversion_id}/{args.action}", {"reason": args.reason}, {}


def run(args: argparse.Namespace) -> int:
    answer = call("reviews", args.url, request(args))
    if isinstance(answer, int):
        return answer
    if args.action != "list":
        print(json.dumps(answer.json(), indent=2))
        return 0
    body = answer.json()
    for row in body["reviews"]:
        print(
            f"{row['conversion_id']}  {row['campaign_id']}  {row['affiliate_id']}"
            f"  order {row['order_id']}  {row['status']}  {','.join(row['signals']) or '-'}"
            f"  commission {_money(row['commission_minor'], row.get('currency', ''))}"
        )
    counts = body["counts"]
    print(f"held {counts['held']}, approved {counts['approved']}, declined {counts['declined']}")
    return 0


def _money(amount_minor: int, currency: str) -> str:
    """``400, KWD`` -> ``0.400 KWD``; minor units, named so, in an unknown currency."""
    if currency not in CURRENCY_EXPONENTS:
        return f"{amount_minor} (minor units)"
    return Money(amount_minor, currency).format()
