"""``afflux keys`` turns each action into one call of the payouts keys API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from afflux.cli.keys_cmd import request
from afflux.cli.main import _parser

pytestmark = pytest.mark.unit
ANA = {"role": "creator", "subject": "ana"}
SHOP = {"role": "merchant", "subject": "shop"}


@dataclass(frozen=True)
class Case:
    argv: list[str]
    call: tuple[str, str, dict[str, Any] | None, dict[str, Any]]


@pytest.mark.parametrize(
    "case",
    [
        Case(["keys", "issue", "--creator", "ana"], ("POST", "/v1/keys", ANA, {})),
        Case(["keys", "issue", "--merchant", "shop"], ("POST", "/v1/keys", SHOP, {})),
        Case(["keys", "list"], ("GET", "/v1/keys", None, {})),
        Case(["keys", "list", "--merchant", "shop"], ("GET", "/v1/keys", None, SHOP)),
        Case(["keys", "rotate", "key_1"], ("POST", "/v1/keys/key_1/rotate", None, {})),
        Case(["keys", "revoke", "key_1"], ("DELETE", "/v1/keys/key_1", None, {})),
    ],
    ids=lambda c: " ".join(c.argv[1:]),
)
def test_each_action_is_one_admin_api_call(case: Case) -> None:
    args = _parser().parse_args(case.argv)
    for name in ("creator", "merchant"):
        setattr(args, name, getattr(args, name, None))
    assert request(args) == case.call


def test_issuing_needs_whose_key() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["keys", "issue"])
