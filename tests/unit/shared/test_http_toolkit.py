"""The shared HTTP toolkit: one error shape, /healthz from named checks, the admin
token, direct routes and the service start-up, each against an in-process app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse, Response

from afflux.shared.io.http.admin import AdminDep
from afflux.shared.io.http.direct import JsonAnswer, direct_route
from afflux.shared.io.http.health import HealthCheck, Passing, health_router
from afflux.shared.io.http.problems import Problem, install_problem_handlers
from afflux.shared.io.http.run import run_service
from afflux.shared.settings import CommonSettings

pytestmark = pytest.mark.unit

TOKEN = "t" * 43


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://afflux")


async def ready(request: Request) -> str | None:
    return None


async def not_loaded(request: Request) -> str | None:
    return "campaign terms not loaded yet"


async def broken(request: Request) -> str | None:
    raise ConnectionError("refused")


async def hangs(request: Request) -> str | None:
    await asyncio.sleep(60)
    return None


async def test_healthz_is_200_when_every_check_passes() -> None:
    app = FastAPI()
    app.include_router(health_router([("campaigns", ready), ("redis", ready)]))
    async with client(app) as http:
        answer = await http.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "checks": {"campaigns": True, "redis": True}}


async def test_healthz_is_503_naming_each_failing_check_and_why() -> None:
    checks: list[tuple[str, HealthCheck]] = [
        ("campaigns", not_loaded),
        ("redis", broken),
        ("kafka", hangs),
        ("disk", ready),
    ]
    app = FastAPI()
    app.include_router(health_router(checks, timeout_s=0.05))
    async with client(app) as http:
        answer = await http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "starting",
        "checks": {"campaigns": False, "redis": False, "kafka": False, "disk": True},
        "reasons": {
            "campaigns": "campaign terms not loaded yet",
            "redis": "failed: ConnectionError",
            "kafka": "no answer within 0.05 s",
        },
    }


async def test_a_failing_check_after_a_passing_answer_reads_unavailable_not_starting() -> None:
    """A long-running service whose broker stalled answered "starting", read as restarting."""
    failing = [False]

    async def broker(request: Request) -> str | None:
        return "no answer to a metadata request within 0.8 s" if failing[0] else None

    app = FastAPI()
    app.include_router(health_router([("kafka", broker)]))
    async with client(app) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        failing[0] = True
        answer = await http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"
    assert answer.json()["reasons"] == {"kafka": "no answer to a metadata request within 0.8 s"}


async def retrying(request: Request) -> Passing:
    return Passing("retrying")


async def how_to_recover(request: Request) -> dict[str, object]:
    return {"status": "diverged", "recovery": "run the rebuild"}


async def test_a_passing_check_may_say_how_it_passes() -> None:
    app = FastAPI()
    app.include_router(health_router([("kafka", retrying)], detail=how_to_recover))
    async with client(app) as http:
        answer = await http.get("/healthz")
    # detail is for a 503 only: a healthy answer stays the plain one
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "checks": {"kafka": "retrying"}}


async def test_a_503_carries_the_detail_and_its_status() -> None:
    app = FastAPI()
    checks: list[tuple[str, HealthCheck]] = [("ledger", not_loaded), ("kafka", retrying)]
    app.include_router(health_router(checks, detail=how_to_recover))
    async with client(app) as http:
        answer = await http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "diverged",
        "checks": {"ledger": False, "kafka": "retrying"},
        "reasons": {"ledger": "campaign terms not loaded yet"},
        "recovery": "run the rebuild",
    }


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_minor: int


def problem_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.settings = CommonSettings(admin_token=TOKEN)

    @app.get("/refused/{status}")
    async def refused(status: int) -> None:
        raise Problem(status, "thing", "why")

    @app.post("/body")
    async def body(item: Body) -> dict[str, int]:
        return {"amount_minor": item.amount_minor}

    @app.get("/admin")
    async def admin(_: AdminDep) -> dict[str, bool]:
        return {"ok": True}

    return app


@dataclass(frozen=True)
class ProblemCase:
    status: int
    retry_after: str | None


PROBLEM_CASES = [
    # not now: the client is told when to retry
    ProblemCase(503, "1"),
    # a refusal of the request itself: retrying changes nothing
    ProblemCase(422, None),
]


@pytest.mark.parametrize("case", PROBLEM_CASES, ids=lambda c: str(c.status))
async def test_a_problem_is_answered_in_the_one_shape(case: ProblemCase) -> None:
    async with client(problem_app()) as http:
        answer = await http.get(f"/refused/{case.status}")
    assert answer.status_code == case.status
    assert answer.json() == {"detail": [{"field": "thing", "reason": "why"}]}
    assert answer.headers.get("retry-after") == case.retry_after


@dataclass(frozen=True)
class InvalidCase:
    body: bytes
    field: str
    reason_starts: str


INVALID_CASES = [
    # a JSON syntax error's location is an offset: the body is named
    InvalidCase(b"{", "body", "malformed JSON"),
    # an unknown field is named as such, without the "body." prefix
    InvalidCase(b'{"amount_minor": 1, "extra": 2}', "extra", "unknown field"),
    # a wrong type names the field the client sent
    InvalidCase(b'{"amount_minor": "x"}', "amount_minor", "Input should be a valid integer"),
    # past the parser's recursion limit: FastAPI's own 400 named no field and no cause
    InvalidCase(
        b'{"a":' + b"[" * 5_000 + b"]" * 5_000 + b"}", "body", "malformed JSON: nested too deeply"
    ),
    # a number past Python's 4,300 digits for an integer
    InvalidCase(
        b'{"amount_minor": ' + b"9" * 5_000 + b"}",
        "body",
        "malformed JSON: a number has too many digits",
    ),
    # bytes that are not UTF-8
    InvalidCase(b'{"amount_minor": 1, "x": "\xff"}', "body", "malformed JSON: not UTF-8"),
]


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda c: c.field + ":" + c.reason_starts)
async def test_an_invalid_body_is_422_naming_the_field(case: InvalidCase) -> None:
    async with client(problem_app()) as http:
        answer = await http.post(
            "/body", content=case.body, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["field"] == case.field
    assert problem["reason"].startswith(case.reason_starts)


async def test_an_unknown_path_is_404_in_the_one_shape() -> None:
    async with client(problem_app()) as http:
        answer = await http.get("/nowhere")
    assert answer.status_code == 404
    assert answer.json() == {"detail": [{"field": None, "reason": "Not Found"}]}


@dataclass(frozen=True)
class AdminCase:
    authorization: str | None
    status: int
    reason: str | None


ADMIN_CASES = [
    # no header at all: say how to authenticate
    AdminCase(None, 401, "missing: use Authorization: Bearer <admin token>"),
    # the right token under another scheme is still refused
    AdminCase(f"Basic {TOKEN}", 401, "wrong admin token"),
    # one character short
    AdminCase(f"Bearer {TOKEN[:-1]}", 401, "wrong admin token"),
    # the scheme is case-insensitive
    AdminCase(f"bearer {TOKEN}", 200, None),
]


@pytest.mark.parametrize("case", ADMIN_CASES, ids=lambda c: str(c.authorization)[:12])
async def test_admin_routes_need_the_bearer_admin_token(case: AdminCase) -> None:
    headers = {"authorization": case.authorization} if case.authorization else {}
    async with client(problem_app()) as http:
        answer = await http.get("/admin", headers=headers)
    assert answer.status_code == case.status
    if case.reason is not None:
        assert answer.json() == {"detail": [{"field": "Authorization", "reason": case.reason}]}
        assert answer.headers["www-authenticate"] == "Bearer"


async def first_of(request: Request) -> str:
    return "first"


async def refuses(request: Request) -> str:
    raise Problem(503, None, "starting")


FirstDep = Annotated[str, Depends(first_of)]
RefusesDep = Annotated[str, Depends(refuses)]


async def echo(request: Request, first: FirstDep) -> Response:
    return JSONResponse({"path": request.url.path, "first": first})


async def never_runs(refused: RefusesDep, first: FirstDep) -> Response:
    raise AssertionError("the endpoint ran after its dependency refused")


async def test_a_direct_route_resolves_its_dependencies_and_their_refusals() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    app.router.routes[:0] = [
        direct_route("/echo", echo, ["POST"]),
        direct_route("/refused", never_runs, ["GET"]),
    ]
    async with client(app) as http:
        echoed = await http.post("/echo")
        refused = await http.get("/refused")
    assert echoed.json() == {"path": "/echo", "first": "first"}
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"


def sync_dependency(request: Request) -> str:
    return "thread pool"


async def takes_sync(value: Annotated[str, Depends(sync_dependency)]) -> Response:
    return Response()


async def takes_plain(value: str) -> Response:
    return Response()


@pytest.mark.parametrize("endpoint", [takes_sync, takes_plain], ids=lambda e: e.__name__)
def test_a_direct_route_refuses_what_it_cannot_resolve_when_built(endpoint: object) -> None:
    with pytest.raises(TypeError):
        direct_route("/x", endpoint, ["GET"])  # type: ignore[arg-type]


class StrictSettings(CommonSettings):
    must_be_positive: int = 1


def never_built(settings: StrictSettings) -> FastAPI:
    raise AssertionError("the app was built from a refused configuration")


def file_missing(settings: StrictSettings) -> str | None:
    return "afflux test: AFFLUX_SOMETHING names no file"


@pytest.mark.parametrize(
    ("variable", "check", "says"),
    [
        # settings pydantic refuses: one line, the variable named, no value echoed
        ("AFFLUX_MUST_BE_POSITIVE", None, "invalid settings: AFFLUX_MUST_BE_POSITIVE"),
        # the service's own check refuses before the broker and Redis are tried
        (None, file_missing, "AFFLUX_SOMETHING names no file"),
    ],
)
def test_run_service_exits_2_with_one_line_saying_why(
    variable: str | None,
    check: Callable[[StrictSettings], str | None] | None,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if variable:
        monkeypatch.setenv(variable, "not-a-number-secret-ish")
    code = run_service(
        "afflux test", StrictSettings, never_built, port=lambda settings: 1, check=check
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("afflux test: ")
    assert says in err
    assert "not-a-number-secret-ish" not in err


@pytest.mark.parametrize(
    "body",
    [
        {"status": "accepted", "order_id": "o-1", "event_id": "e-\u00e9\u2028", "n": 0},
        {"detail": 'quote " backslash \\ tab \t nul \x00 del \x7f', "field": None, "ok": True},
        {"results": [{"status": "duplicate"}, {"status": "rejected", "error": {"x": [1, -2]}}]},
        {},
    ],
)
def test_a_json_answer_has_the_bytes_and_headers_of_starlettes(body: dict[str, object]) -> None:
    fast, slow = JsonAnswer(body, status_code=202), JSONResponse(body, status_code=202)

    assert fast.body == slow.body
    assert fast.raw_headers == slow.raw_headers
    assert fast.status_code == 202
