"""Every malformed postback signature answers 401 with the usual error body, and emits nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from afflux.orders.signing import sign_query

pytestmark = pytest.mark.integration

SECRET = "a-secret-new"


def _params(campaigns: Any) -> list[tuple[str, str]]:
    return [
        ("merchant", "merchant-a"),
        ("campaign_id", campaigns.shop.campaign_id),
        ("order_id", f"pb-bad-{uuid.uuid4().hex[:12]}"),
        ("amount_minor", "2599"),
        ("currency", "EUR"),
    ]


def _unsigned(query: str) -> str:
    return query.rsplit("&sig=", 1)[0]


def _mac(query: str) -> str:
    return query.rsplit("&sig=", 1)[1]


@dataclass(frozen=True)
class Case:
    name: str
    change: Callable[[str], str]
    field: str


CASES = [
    # a parameter after sig (answered 500 before)
    Case("param after sig", lambda q: f"{q}&extra=1", "sig"),
    # sig given twice
    Case("repeated sig", lambda q: f"{q}&sig={_mac(q)}", "sig"),
    # sig given twice, the second percent-encoded by name
    Case("encoded sig name", lambda q: f"{_unsigned(q)}&%73ig=1&sig={_mac(q)}", "sig"),
    # no sig
    Case("missing sig", _unsigned, "sig"),
    # nothing at all
    Case("empty query", lambda q: "", "sig"),
    # sig with no value
    Case("empty sig", lambda q: f"{_unsigned(q)}&sig=", "sig"),
    # not hex
    Case("non-hex sig", lambda q: f"{_unsigned(q)}&sig={'g' * 64}", "sig"),
    # wrong length
    Case("short sig", lambda q: f"{_unsigned(q)}&sig={_mac(q)[:32]}", "sig"),
    # unicode, percent-encoded and raw
    Case("unicode sig", lambda q: f"{_unsigned(q)}&sig={'%C3%A9' * 64}", "sig"),
    # t twice: which one was signed is ambiguous
    Case("duplicated t", lambda q: q.replace("&t=", "&t=1&t=", 1), "t"),
    # merchant twice
    Case("duplicated merchant", lambda q: f"merchant=merchant-b&{q}", "merchant"),
    # a digit int() cannot read
    Case("superscript t", lambda q: q.replace("&t=", "&t=%C2%B2&x=", 1), "t"),
    # t not a number
    Case("t not digits", lambda q: q.replace("&t=", "&t=soon&x=", 1), "t"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_malformed_postback_signature_is_401_naming_the_field(
    case: Case, api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    query = case.change(sign_query(_params(campaigns), SECRET, int(time.time())))

    response = await api.http.get(f"/v1/postback?{query}")

    assert response.status_code == 401, response.text
    [problem] = response.json()["detail"]
    assert problem["field"] == case.field
    assert problem["reason"]
    assert await topics.written_since(before) == {}


async def test_other_parameter_given_twice_is_422_after_a_good_signature(
    api: Any, campaigns: Any
) -> None:
    params = [*_params(campaigns), ("currency", "USD")]
    query = sign_query(params, SECRET, int(time.time()))

    response = await api.http.get(f"/v1/postback?{query}")

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0] == {"field": "currency", "reason": "given more than once"}
