"""``afflux webhooks``: register, list and remove webhook endpoints, read an endpoint's
dead letters and replay its events, through the payouts service's admin API.

The service is ``--url`` (default AFFLUX_PAYOUTS_URL, else http://127.0.0.1:$AFFLUX_PAYOUTS_PORT);
the admin token is AFFLUX_ADMIN_TOKEN (``afflux up`` prints the one it uses). See
docs/webhooks.md.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from afflux.cli.payouts_admin import call

EVENT_TYPES = ("conversion.attributed", "conversion.reversed", "payout.issued")


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "webhooks",
        help="webhook endpoints: list, add, remove, dead-letters, replay",
        description=__doc__,
    )
    parser.add_argument("--url", default=None, help="the payouts service's base URL")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the endpoints (secrets are never shown again)")
    listing.add_argument("--merchant", default=None, help="only this merchant's")
    listing.add_argument("--creator", default=None, help="only this creator's")
    add = actions.add_parser("add", help="register an endpoint; prints its secret once")
    owner = add.add_mutually_exclusive_group(required=True)
    owner.add_argument("--merchant", help="events of this merchant's campaigns")
    owner.add_argument("--creator", help="events of this creator (affiliate_id)")
    add.add_argument("endpoint_url", help="http(s) URL the events are POSTed to")
    add.add_argument(
        "--event",
        action="append",
        choices=EVENT_TYPES,
        help="event type (repeatable; default all)",
    )
    add.add_argument("--description", default="", help="a note for operators")
    remove = actions.add_parser("remove", help="remove an endpoint and what waits for it")
    remove.add_argument("endpoint_id")
    dead = actions.add_parser("dead-letters", help="deliveries that failed every attempt")
    dead.add_argument("endpoint_id")
    dead.add_argument("--limit", type=int, default=100, help="newest first (default 100)")
    replay = actions.add_parser("replay", help="send an endpoint's events again since a time")
    replay.add_argument("endpoint_id")
    replay.add_argument("--since", required=True, help="epoch ms or an ISO time with a zone")


def request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None, dict[str, Any]]:
    """Method, path, JSON body and query of the admin API call an action makes."""
    base = "/v1/webhooks/endpoints"
    if args.action == "list":
        query: dict[str, Any] = {}
        if args.merchant:
            query = {"owner_kind": "merchant", "owner_id": args.merchant}
        elif args.creator:
            query = {"owner_kind": "affiliate", "owner_id": args.creator}
        return "GET", base, None, query
    if args.action == "add":
        kind, owner = ("merchant", args.merchant) if args.merchant else ("affiliate", args.creator)
        body = {
            "owner_kind": kind,
            "owner_id": owner,
            "url": args.endpoint_url,
            "event_types": args.event or list(EVENT_TYPES),
            "description": args.description,
        }
        return "POST", base, body, {}
    if args.action == "remove":
        return "DELETE", f"{base}/{args.endpoint_id}", None, {}
    if args.action == "dead-letters":
        return "GET", f"{base}/{args.endpoint_id}/dead-letters", None, {"limit": args.limit}
    since: int | str = int(args.since) if args.since.isdigit() else args.since
    return "POST", f"{base}/{args.endpoint_id}/replay", {"since": since}, {}


def run(args: argparse.Namespace) -> int:
    answer = call("webhooks", args.url, request(args), timeout=60.0)  # a replay reads the topics
    if isinstance(answer, int):
        return answer
    # A replay past the per-call limit goes on from where the answer says, until done.
    while args.action == "replay" and answer.status_code == 200:
        body = answer.json()
        if body.get("queue_full"):  # more would go straight to the dead letters
            print(json.dumps(body, indent=2))
            print(
                f"{body['queue_full']} events did not fit the endpoint's queue (dead-lettered):"
                f" once it has drained, replay again with --since {args.since}"
            )
            return 1
        if body.get("resume_since") is None:
            break
        print(json.dumps(body, indent=2))
        if str(body["resume_since"]) == args.since:  # more events in one ms than a call takes
            print(f"more events at {args.since} than one replay schedules: raise the limit")
            return 1
        print(f"truncated: replaying on from {body['resume_since']}")
        args.since = str(body["resume_since"])
        answer = call("webhooks", args.url, request(args), timeout=60.0)
        if isinstance(answer, int):
            return answer
    if answer.status_code == 204:
        print(f"removed {args.endpoint_id}")
        return 0
    print(json.dumps(answer.json(), indent=2))
    if args.action == "add":
        print("Keep the secret: it is shown only now. Verify each delivery with it.")
    return 0
