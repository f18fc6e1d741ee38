"""The merchant endpoints' hand-written OpenAPI items say what the running service does.

A whole stack runs with examples/campaigns.yaml and development secrets
(``dev-secret-<merchant>``). Each case sends one real request; its answer's status must
be one the document lists for that operation, and its body must have the documented
shape. The signing snippets of docs/orders.md and README.md run with bash against the
same service and get their order accepted.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from afflux.cli.stack import Stack
from afflux.cli.topic_reader import read_events
from afflux.clicks.quality import parse_user_agent
from afflux.orders.openapi import BatchAnswer, OrderAnswer, RefundAnswer, RenewalAnswer
from afflux.orders.signing import sign_call, sign_query, sign_request
from afflux.shared.events import ClickRecorded
from afflux.shared.io.http import tls as oneshot
from afflux.shared.io.http.problems import Problem

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).parents[3]
ADMIN_TOKEN = "merchant-openapi-admin-token"
TERMS_YAML = (ROOT / "examples" / "campaigns.yaml").read_text()
MERCHANT = "merchant-acme"
CAMPAIGN = "acme-fashion"
SECRET = f"dev-secret-{MERCHANT}"


class ProblemItemShape(BaseModel):
    field: str | None
    reason: str


class ProblemShape(BaseModel):
    detail: list[ProblemItemShape]


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Case:
    name: str
    operation: tuple[str, str]  # (path in the document, method)
    request: Callable[[], Sent]
    status: int
    shape: type[BaseModel]


def now_ms() -> int:
    return int(time.time() * 1000)


def order(**changes: Any) -> dict[str, Any]:
    return {
        "order_id": f"o-{uuid.uuid4().hex[:12]}",
        "campaign_id": CAMPAIGN,
        "occurred_at": now_ms(),
        "amount_minor": 4999,
        "currency": "EUR",
        "visitor_id": f"v_{uuid.uuid4().hex[:12]}",
    } | changes


def signed(path: str, payload: object, *, secret: str = SECRET, raw: bytes | None = None) -> Sent:
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {
        "X-Afflux-Merchant": MERCHANT,
        "X-Afflux-Signature": sign_call("POST", path, body, secret, int(time.time())),
        "Content-Type": "application/json",
    }
    return Sent("POST", path, headers, body)


def postback(secret: str = SECRET) -> Sent:
    params = [("merchant", MERCHANT), *((k, str(v)) for k, v in order().items())]
    query = sign_query(params, secret, int(time.time()))
    return Sent("GET", f"/v1/postback?{query}", {})


def renewal(**changes: Any) -> dict[str, Any]:
    return {
        "order_id": f"o-{uuid.uuid4().hex[:12]}",
        "renewal_number": 1,
        "campaign_id": CAMPAIGN,
        "occurred_at": now_ms(),
        "amount_minor": 1999,
        "currency": "EUR",
    } | changes


DUPLICATE = order()
REFUNDED = order()
RENEWED = renewal(renewal_order_id=f"r-{uuid.uuid4().hex[:12]}")

CASES = [
    # A well-signed order of the merchant's own campaign is accepted.
    Case(
        "order accepted",
        ("/v1/orders", "post"),
        lambda: signed("/v1/orders", order()),
        202,
        OrderAnswer,
    ),
    # The same order id again: nothing new.
    Case(
        "order duplicate",
        ("/v1/orders", "post"),
        lambda: signed("/v1/orders", DUPLICATE),
        200,
        OrderAnswer,
    ),
    # The same order id with another amount.
    Case(
        "order sent again with other terms",
        ("/v1/orders", "post"),
        lambda: signed("/v1/orders", DUPLICATE | {"amount_minor": 1}),
        409,
        ProblemShape,
    ),
    # An order under the id a renewal was accepted with.
    Case(
        "order reusing a renewal order id",
        ("/v1/orders", "post"),
        lambda: signed("/v1/orders", order(order_id=RENEWED["renewal_order_id"])),
        409,
        ProblemShape,
    ),
    # Signed with a secret the merchant does not have.
    Case(
        "order wrong secret",
        ("/v1/orders", "post"),
        lambda: signed("/v1/orders", order(), secret="not-the-secret"),
        401,
        ProblemShape,
    ),
    # One byte over the single-order body limit (64 KiB by default).
    Case(
        "order too large",
        ("/v1/orders", "post"),
        lambda: signed("/v1/orders", None, raw=b" " * 65_537),
        413,
        ProblemShape,
    ),
    # Missing a required field.
    Case(
        "order without order_id",
        ("/v1/orders", "post"),
        lambda: signed("/v1/orders", {k: v for k, v in order().items() if k != "order_id"}),
        422,
        ProblemShape,
    ),
    # Not JSON at all.
    Case(
        "order malformed",
        ("/v1/orders", "post"),
        lambda: signed("/v1/orders", None, raw=b"{not json"),
        400,
        ProblemShape,
    ),
    # Another merchant's campaign: answered as an unknown one.
    Case(
        "order of another merchant's campaign",
        ("/v1/orders", "post"),
        lambda: signed("/v1/orders", order(campaign_id="globex-apps")),
        422,
        ProblemShape,
    ),
    Case(
        "batch answered per order",
        ("/v1/orders:batch", "post"),
        lambda: signed("/v1/orders:batch", {"orders": [order(), {"order_id": "x"}]}),
        200,
        BatchAnswer,
    ),
    Case(
        "empty batch",
        ("/v1/orders:batch", "post"),
        lambda: signed("/v1/orders:batch", {"orders": []}),
        422,
        ProblemShape,
    ),
    Case(
        "batch unsigned",
        ("/v1/orders:batch", "post"),
        lambda: Sent("POST", "/v1/orders:batch", {}, b'{"orders": []}'),
        401,
        ProblemShape,
    ),
    Case(
        "refund accepted",
        ("/v1/refunds", "post"),
        lambda: signed(
            "/v1/refunds",
            {
                "refund_id": f"r-{uuid.uuid4().hex[:8]}",
                "order_id": REFUNDED["order_id"],
                "campaign_id": CAMPAIGN,
                "occurred_at": now_ms(),
                "amount_minor": 100,
                "currency": "EUR",
            },
        ),
        202,
        RefundAnswer,
    ),
    Case(
        "refund in the wrong currency",
        ("/v1/refunds", "post"),
        lambda: signed(
            "/v1/refunds",
            {
                "refund_id": "r-usd",
                "order_id": "o-x",
                "campaign_id": CAMPAIGN,
                "occurred_at": now_ms(),
                "amount_minor": 100,
                "currency": "USD",
            },
        ),
        422,
        ProblemShape,
    ),
    Case(
        "refund too large",
        ("/v1/refunds", "post"),
        lambda: signed("/v1/refunds", None, raw=b" " * 65_537),
        413,
        ProblemShape,
    ),
    Case(
        "renewal accepted",
        ("/v1/renewals", "post"),
        lambda: signed("/v1/renewals", renewal()),
        202,
        RenewalAnswer,
    ),
    Case(
        "renewal duplicate",
        ("/v1/renewals", "post"),
        lambda: signed("/v1/renewals", RENEWED),
        200,
        RenewalAnswer,
    ),
    # The renewal order id sent again with another amount.
    Case(
        "renewal sent again with another amount",
        ("/v1/renewals", "post"),
        lambda: signed("/v1/renewals", RENEWED | {"amount_minor": 1}),
        409,
        ProblemShape,
    ),
    # A renewal under the id of an order of the campaign.
    Case(
        "renewal reusing an order id",
        ("/v1/renewals", "post"),
        lambda: signed("/v1/renewals", renewal(renewal_order_id=DUPLICATE["order_id"])),
        409,
        ProblemShape,
    ),
    # acme-fashion does not require lead confirmation.
    Case(
        "lead of a campaign that confirms none",
        ("/v1/leads/{order_id}/confirm", "post"),
        lambda: signed("/v1/leads/o-1/confirm", {"campaign_id": CAMPAIGN}),
        409,
        ProblemShape,
    ),
    Case(
        "lead unsigned",
        ("/v1/leads/{order_id}/confirm", "post"),
        lambda: Sent("POST", "/v1/leads/o-1/confirm", {}, b"{}"),
        401,
        ProblemShape,
    ),
    Case("postback accepted", ("/v1/postback", "get"), postback, 202, OrderAnswer),
    Case(
        "postback wrong secret",
        ("/v1/postback", "get"),
        lambda: postback("nope"),
        401,
        ProblemShape,
    ),
    Case(
        "postback unsigned",
        ("/v1/postback", "get"),
        lambda: Sent("GET", "/v1/postback?merchant=merchant-acme", {}),
        401,
        ProblemShape,
    ),
]


@pytest.fixture(scope="module")
def document(stack: Stack) -> dict[str, Any]:
    answer = oneshot.get(f"{stack.url('orders')}/openapi.json", timeout=10)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> None:
    """The orders and the renewal that a duplicate, a conflict and a refund refer to,
    accepted first."""
    for path, payload in (
        ("/v1/orders", DUPLICATE),
        ("/v1/orders", REFUNDED),
        ("/v1/renewals", RENEWED),
    ):
        sent = signed(path, payload)
        answer = oneshot.post(
            stack.url("orders") + sent.path, content=sent.body, headers=sent.headers, timeout=10
        )
        assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_answer_is_a_documented_status_with_the_documented_shape(
    stack: Stack, document: dict[str, Any], seeded: None, case: Case
) -> None:
    path, method = case.operation
    documented = document["paths"][path][method]["responses"]
    sent = case.request()
    answer = httpx.request(
        sent.method,
        stack.url("orders") + sent.path,
        content=sent.body,
        headers=sent.headers,
        timeout=10,
    )
    assert answer.status_code == case.status, answer.text
    assert str(answer.status_code) in documented
    case.shape.model_validate(answer.json())
    if case.shape is ProblemShape:
        assert documented[str(case.status)]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ProblemBody"
        }


def test_every_merchant_operation_names_the_signature_headers_and_its_refusals(
    document: dict[str, Any],
) -> None:
    for path in (
        "/v1/orders",
        "/v1/orders:batch",
        "/v1/refunds",
        "/v1/renewals",
        "/v1/leads/{order_id}/confirm",
    ):
        operation = document["paths"][path]["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"X-Afflux-Merchant", "X-Afflux-Signature"}, path
        assert {"401", "413", "422", "503"} <= set(operation["responses"]), path
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema["$ref"].rpartition("/")[2] in document["components"]["schemas"]
    query = {p["name"] for p in document["paths"]["/v1/postback"]["get"]["parameters"]}
    assert {"merchant", "t", "sig", "order_id", "campaign_id"} <= query


def fenced_blocks(markdown: str, language: str) -> list[str]:
    return [m.group(1) for m in re.finditer(rf"```{language}\n(.*?)```", markdown, re.S)]


def snippet(document: Path, containing: str) -> str:
    found = [b for b in fenced_blocks(document.read_text(), "bash") if containing in b]
    assert len(found) == 1, f"{document.name}: one bash block with {containing!r}"
    return found[0]


def test_the_documented_openssl_signing_gets_the_order_accepted(stack: Stack) -> None:
    """docs/orders.md's snippet; README.md's, which signs an order for the visitor of the
    click it makes, is run below."""
    assert shutil.which("openssl"), "openssl is needed to run the documented snippet"
    script = snippet(ROOT / "docs" / "orders.md", '"$body" | openssl dgst')
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin", "ORDERS_URL": stack.url("orders")},
    )
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["status"] in ("accepted", "duplicate"), answer


def test_the_documented_lead_confirmation_signing_gets_the_lead_confirmed(stack: Stack) -> None:
    initech = "merchant-initech"
    lead = order(order_id="lead-1001", campaign_id="initech-insurance", kind="lead")
    body = json.dumps(lead).encode()
    signature = sign_call("POST", "/v1/orders", body, f"dev-secret-{initech}", int(time.time()))
    placed = httpx.post(
        f"{stack.url('orders')}/v1/orders",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Afflux-Merchant": initech,
            "X-Afflux-Signature": signature,
        },
        timeout=30,
    )
    assert placed.status_code in (200, 202), placed.text
    assert shutil.which("openssl"), "openssl is needed to run the documented snippet"
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippet(ROOT / "docs" / "orders.md", "/confirm")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin", "ORDERS_URL": stack.url("orders")},
    )
    assert run.returncode == 0, run.stderr + run.stdout
    assert json.loads(run.stdout)["status"] in ("accepted", "duplicate")


def test_the_documented_order_outcome_request_answers_for_the_signed_order(stack: Stack) -> None:
    document = ROOT / "docs" / "orders.md"
    env = {"PATH": "/usr/bin:/bin", "ORDERS_URL": stack.url("orders")}

    def bash(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=env,
        )

    posted = bash(snippet(document, '"$body" | openssl dgst'))
    assert posted.returncode == 0, posted.stderr
    deadline = time.monotonic() + 60
    while True:  # the outcome index follows the topics: 404 (curl exits 22) until then
        asked = bash(snippet(document, "GET /v1/orders/"))
        assert asked.returncode in (0, 22), asked.stderr
        answer = json.loads(asked.stdout)
        if "outcomes" in answer or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer["order_id"] == "o-1001", answer
    outcome = answer["outcomes"][0]
    assert outcome["campaign_id"] == "acme-fashion"
    assert outcome["status"] in ("pending", "attributed", "unattributed")


def test_the_readme_click_example_sends_a_user_agent_that_counts() -> None:
    block = snippet(ROOT / "README.md", "/c/$code")
    agents = re.findall(r"-A '([^']+)'", block)
    assert agents, "the click example sends a browser user agent"
    assert not parse_user_agent(agents[0]).is_bot


def test_problem_shape_is_the_shared_one() -> None:
    ProblemShape.model_validate(Problem(401, "X-Afflux-Signature", "wrong").body())


async def test_the_readme_example_clicks_and_its_order_is_attributed_to_the_creator(
    stack: Stack,
) -> None:
    """The README's block makes a link, clicks it as a browser and signs an order for the
    visitor of that click: the click counts and the order goes to the link's creator. It
    once named a visitor nobody was, and the order came back unattributed (no_click)."""
    assert shutil.which("openssl"), "openssl is needed to run the documented snippet"
    block = snippet(ROOT / "README.md", "/c/$code")
    env = {
        "PATH": "/usr/bin:/bin",
        "CLICKS_URL": stack.url("clicks"),
        "ORDERS_URL": stack.url("orders"),
        "TOKEN": ADMIN_TOKEN,
    }
    ran = subprocess.run(  # the block as documented; then the code and order id, for below
        ["bash", "-euo", "pipefail", "-c", block + 'echo "$code $order" >&2'],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("HTTP/1.1 302"), ran.stdout
    *_, answered, asked = ran.stdout.strip().splitlines()
    assert json.loads(answered)["status"] == "accepted", ran.stdout
    # The block's own question, polled until decided, already tells whose the order is.
    [told] = json.loads(asked)["outcomes"]
    assert (told["status"], told["decision"]["affiliate_id"]) == ("attributed", "creator-01")
    code, order_id = ran.stderr.strip().splitlines()[-1].split()

    def recorded(events: list[Any]) -> list[ClickRecorded]:
        return [e for e in events if isinstance(e, ClickRecorded) and e.link_code == code]

    events = await read_events(stack.kafka_bootstrap, "clicks", until=lambda e: bool(recorded(e)))
    [click_event] = recorded(events)
    assert not click_event.is_bot
    assert not click_event.flags

    path = f"/v1/orders/{order_id}"
    deadline = time.monotonic() + 60
    while True:  # decided after the campaign's grace
        signature = sign_request("GET", path, "dev-secret-merchant-acme", int(time.time()))
        answer = httpx.get(
            stack.url("orders") + path,
            headers={"X-Afflux-Merchant": "merchant-acme", "X-Afflux-Signature": signature},
            timeout=30,
        )
        outcomes = answer.json().get("outcomes", []) if answer.status_code == 200 else []
        if (outcomes and outcomes[0]["status"] != "pending") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert outcomes, answer.text
    assert outcomes[0]["status"] == "attributed", outcomes[0]
    assert outcomes[0]["decision"]["affiliate_id"] == "creator-01", outcomes[0]
