"""``afflux keys``: issue, list, rotate and revoke the API keys of creators and merchants,
through the payouts service's admin API.

A key is printed once, when issued or rotated; the service keeps only its hash.
Rotating gives the key id a new key and the old one stops working at once. The service
is ``--url`` (default AFFLUX_PAYOUTS_URL, else http://127.0.0.1:$AFFLUX_PAYOUTS_PORT);
the admin token is AFFLUX_ADMIN_TOKEN. See docs/portal.md, "Access".
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from afflux.cli.payouts_admin import call


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "keys",
        help="API keys of creators and merchants: issue, list, rotate, revoke",
        description=__doc__,
    )
    parser.add_argument("--url", default=None, help="the payouts service's base URL")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    issue = actions.add_parser("issue", help="a new key; printed once")
    whose = issue.add_mutually_exclusive_group(required=True)
    whose.add_argument("--creator", help="the creator's affiliate_id")
    whose.add_argument("--merchant", help="the merchant's id")
    listing = actions.add_parser("list", help="the keys (never the keys themselves)")
    only = listing.add_mutually_exclusive_group()
    only.add_argument("--creator", help="only this creator's")
    only.add_argument("--merchant", help="only this merchant's")
    rotate = actions.add_parser("rotate", help="a new key for a key id; the old one ends now")
    rotate.add_argument("key_id")
    revoke = actions.add_parser("revoke", help="end a key (and its sessions) now")
    revoke.add_argument("key_id")


def request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None, dict[str, Any]]:
    """Method, path, JSON body and query of the admin API call an action makes."""
    base = "/v1/keys"
    role, subject = ("merchant", args.merchant) if args.merchant else ("creator", args.creator)
    if args.action == "issue":
        return "POST", base, {"role": role, "subject": subject}, {}
    if args.action == "list":
        return "GET", base, None, ({"role": role, "subject": subject} if subject else {})
    if args.action == "rotate":
        return "POST", f"{base}/{args.key_id}/rotate", None, {}
    return "DELETE", f"{base}/{args.key_id}", None, {}


def run(args: argparse.Namespace) -> int:
    for name in ("creator", "merchant"):
        setattr(args, name, getattr(args, name, None))
    answer = call("keys", args.url, request(args))
    if isinstance(answer, int):
        return answer
    print(json.dumps(answer.json(), indent=2))
    if args.action in ("issue", "rotate"):
        print("Keep the key: it is shown only now (the service keeps its hash).", file=sys.stderr)
    return 0
