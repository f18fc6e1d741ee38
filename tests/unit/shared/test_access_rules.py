"""Who may read what, and what a key looks like: the pure rules of afflux.shared.core.access."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.shared.core import access
from afflux.shared.core.access import ADMIN, Principal, Throttle

pytestmark = pytest.mark.unit

ANA = Principal("creator", "ana", "key_1")
SHOP = Principal("merchant", "shop", "key_2")
RANDOM_43 = "A" * 43


@dataclass(frozen=True)
class ReadCase:
    principal: Principal
    owner: str | None
    allowed: bool


@pytest.mark.parametrize(
    "case",
    [
        ReadCase(ADMIN, "ana", True),  # admin reads every creator
        ReadCase(ANA, "ana", True),  # a creator reads itself
        ReadCase(ANA, "ben", False),  # ... and nobody else
        ReadCase(ANA, "ana ", False),  # an id is compared exactly
        ReadCase(SHOP, "ana", False),  # a merchant never reads a creator's money
        ReadCase(Principal("merchant", "ana"), "ana", False),  # even one named like it
    ],
)
def test_creator_figures_answer_admin_or_that_creator(case: ReadCase) -> None:
    assert access.may_read_creator(case.principal, case.owner or "") is case.allowed


@pytest.mark.parametrize(
    "case",
    [
        ReadCase(ADMIN, "shop", True),  # admin reads every campaign
        ReadCase(ADMIN, None, True),  # and learns an unknown one is unknown
        ReadCase(SHOP, "shop", True),  # the merchant its terms name
        ReadCase(SHOP, "other-shop", False),  # another merchant's campaign
        ReadCase(SHOP, None, False),  # an unknown campaign: same as another's
        ReadCase(Principal("creator", "shop"), "shop", False),  # a creator named like it
    ],
)
def test_campaign_figures_answer_admin_or_its_merchant(case: ReadCase) -> None:
    assert access.may_read_campaign(case.principal, case.owner) is case.allowed


@pytest.mark.parametrize(
    ("text", "role"),
    [
        (access.key_text("creator", RANDOM_43), "creator"),
        (access.key_text("merchant", RANDOM_43), "merchant"),
        ("afx_ck_" + "A" * 42, None),  # one character short
        ("afx_ck_" + "A" * 44, None),  # one too many
        ("afx_xk_" + RANDOM_43, None),  # no such role
        ("afx_ck_" + "A" * 42 + "=", None),  # not URL-safe base64
        ("Bearer afx_ck_" + RANDOM_43, None),  # the scheme is not part of the key
        ("afx_ck_" + RANDOM_43 + "\n", None),  # nothing after it, not even a newline
        ("", None),
    ],
)
def test_a_key_names_its_role_by_its_prefix_only_when_well_formed(
    text: str, role: str | None
) -> None:
    assert access.role_of_key(text) == role


def test_a_key_is_stored_as_its_sha256_and_two_keys_never_share_one() -> None:
    one, two = access.key_text("creator", RANDOM_43), access.key_text("creator", "B" * 43)
    assert access.key_hash(one) == access.key_hash(one)
    assert len(access.key_hash(one)) == 64
    assert access.key_hash(one) != access.key_hash(two)
    assert one not in access.key_hash(one)


@pytest.mark.parametrize(
    ("wanted", "safe"),
    [
        ("/reports/creators/ana?period=2026-11", "/reports/creators/ana?period=2026-11"),
        (None, None),
        ("", None),
        ("https://evil.example/", None),  # another origin
        ("//evil.example/", None),  # scheme-relative: another origin
        ("/\\evil.example/", None),  # browsers read a backslash as a slash
        ("/ok\r\nSet-Cookie: x=1", None),  # header injection
        ("reports", None),  # relative
    ],
)
def test_after_login_only_a_path_of_this_origin_is_followed(
    wanted: str | None, safe: str | None
) -> None:
    assert access.safe_next_path(wanted) == safe


OURS = {"http://127.0.0.1:8003", "https://portal.example.com"}


@pytest.mark.parametrize(
    ("origin", "referer", "ok"),
    [
        ("https://portal.example.com", None, True),
        ("http://127.0.0.1:8003", None, True),
        ("https://evil.example", None, False),
        ("https://portal.example.com.evil.example", None, False),  # a longer host
        ("null", None, False),  # a sandboxed or file: page
        (None, "https://portal.example.com/login?next=/x", True),  # no Origin: the Referer's
        (None, "https://evil.example/portal.example.com", False),
        (None, "not a url", False),
        (None, None, False),  # neither: refused
    ],
)
def test_a_form_is_accepted_only_from_a_page_of_this_service(
    origin: str | None, referer: str | None, ok: bool
) -> None:
    assert access.origin_matches(origin, referer, OURS) is ok


@pytest.mark.parametrize(
    ("failures", "blocked"),
    [(0, False), (4, False), (5, True), (50, True)],  # the fifth failure within the window
)
def test_the_fifth_failed_login_in_a_minute_blocks_the_next(failures: int, blocked: bool) -> None:
    assert Throttle(limit=5, window_s=60).blocked(failures) is blocked


@pytest.mark.parametrize(
    ("value", "credential"),
    [
        ("afx_ck_" + RANDOM_43, True),
        ("x afx_mk_abc", True),  # inside another value too
        ("2026-11", False),
        ("creator-01", False),
    ],
)
def test_a_query_value_holding_a_key_is_a_credential(value: str, credential: bool) -> None:
    assert access.looks_like_credential(value) is credential
