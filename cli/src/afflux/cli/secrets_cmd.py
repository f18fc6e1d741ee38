"""``afflux secrets new``: fresh production secrets as ``AFFLUX_...=value`` lines.

Each value carries 32 random bytes (``secrets.token_urlsafe``), so it passes the
production checks of afflux.shared.secret_policy. The lines suit an env file
(``docker compose --env-file``) and ``set -a; . file`` alike.
"""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Callable, Sequence
from typing import Any

ENTROPY_BYTES = 32
PLACEHOLDER_MERCHANT = "MERCHANT_ID"


def new_secret_lines(
    merchant_ids: Sequence[str], token: Callable[[int], str] = secrets.token_urlsafe
) -> list[str]:
    """One ``NAME=value`` line per secret; the merchant secrets as one JSON mapping."""
    merchants = list(dict.fromkeys(merchant_ids)) or [PLACEHOLDER_MERCHANT]
    merchant_secrets = {m: [token(ENTROPY_BYTES)] for m in merchants}
    # Single quotes keep the JSON whole for a shell and are stripped by compose's env files.
    mapping = json.dumps(merchant_secrets, separators=(",", ":"))
    return [
        f"AFFLUX_ADMIN_TOKEN={token(ENTROPY_BYTES)}",
        f"AFFLUX_CLICKS_IP_HASH_SECRET={token(ENTROPY_BYTES)}",
        f"AFFLUX_MERCHANT_SECRETS='{mapping}'",
    ]


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "secrets", help="print fresh production secrets as AFFLUX_...= lines", description=__doc__
    )
    parser.add_argument("action", choices=["new"], help="print a fresh set")
    parser.add_argument(
        "--merchant",
        action="append",
        type=_merchant_id,
        default=[],
        help="merchant id to give a signing secret (repeatable; default a placeholder)",
    )


def _merchant_id(text: str) -> str:
    """A merchant id terms can name: an empty one was printed as a secret of ''."""
    from afflux.shared.core.terms import merchant_id_problem

    if not text:
        raise argparse.ArgumentTypeError("a merchant id cannot be empty")
    problem = merchant_id_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def run(merchant_ids: Sequence[str]) -> int:
    for line in new_secret_lines(merchant_ids):
        print(line)
    return 0
