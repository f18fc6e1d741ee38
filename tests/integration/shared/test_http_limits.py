"""Every service's HTTP port, started as a process, under oversized and slow requests.

Raw sockets on loopback send what a hostile client would: headers of 20 KiB,
8 MB and 48 MB, declared and chunked bodies over the limit, heads and bodies
trickled a byte at a time, one connection past the cap. Meanwhile /healthz is
probed on fresh connections and the process's resident memory is sampled: the
server must refuse early (431/413/408/503), keep answering /healthz within a
second, and grow by less than ``RSS_GROWTH_BOUND``.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from afflux.cli.brokers import BrokerKind, broker_with_topics
from afflux.cli.processes import free_port
from afflux.cli.stack import DEFAULT_PORTS, Stack, StackOptions
from afflux.shared.io.http import tls as oneshot

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MiB = 1024 * 1024
HEADER_TIMEOUT_S = 1.0  # the services under test get short read timeouts, so the test is quick
SLACK_S = 0.05  # the server starts timing at accept, before the client's clock
BODY_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 16
RSS_GROWTH_BOUND = 50 * MiB
# A service blocked by the attack answers after it (tens of seconds); a loaded CI machine
# within tens of milliseconds: the bound sits far from both.
HEALTHZ_BOUND_S = 5.0
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Service:
    name: str
    # an endpoint whose handler reads the request body (None: the port has none)
    body_path: str | None


SERVICES = [
    Service("clicks", "/v1/links"),
    Service("orders", "/v1/orders:batch"),
    Service("payouts", "/v1/payouts/run"),
    Service("attribution", None),
]
every_service = pytest.mark.parametrize(
    "running", SERVICES, indirect=True, ids=[s.name for s in SERVICES]
)
READING_BODIES = [s for s in SERVICES if s.body_path is not None]
every_service_reading_bodies = pytest.mark.parametrize(
    "running", READING_BODIES, indirect=True, ids=[s.name for s in READING_BODIES]
)


@dataclass
class Running:
    service: Service
    port: int
    pid: int


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory, broker_kind: BrokerKind) -> Iterator[str]:
    """A broker of the module's own: on the session's, the payouts and attribution
    processes read every other test's backlog from the start while the health and memory
    bounds are measured, so those bounds measured that backlog too."""
    with broker_with_topics(broker_kind, tmp_path_factory.mktemp("http-limits"), 4) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
def running(
    request: pytest.FixtureRequest,
    infra: Any,
    own_broker: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    service: Service = request.param
    ports = {name: free_port() for name in DEFAULT_PORTS}
    stack = Stack(
        StackOptions(
            work_dir=tmp_path_factory.mktemp(f"http-limits-{service.name}"),
            kafka_bootstrap=own_broker,
            redis_url=infra.redis_url.rsplit("/", 1)[0] + "/7",
            ports=ports,
            partitions=4,
            env={
                "AFFLUX_ADMIN_TOKEN": "http-limits-admin",
                "AFFLUX_ATTRIBUTION_GROUP": f"http-limits-{uuid.uuid4().hex[:8]}",
                "AFFLUX_HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_S),
                "AFFLUX_HTTP_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_S),
                "AFFLUX_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            },
        )
    )
    try:
        child = stack.start_service(service.name, timeout_s=120)
        yield Running(service, ports[service.name], child.pid)
    finally:
        stack.stop()


# Raw HTTP over sockets


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def status_of(sock: socket.socket, timeout_s: float = 10.0) -> int | None:
    """The status of the server's answer; None when it closed or reset without one."""
    sock.settimeout(timeout_s)
    received = b""
    try:
        while b"\r\n" not in received and len(received) < 4096:
            data = sock.recv(4096)
            if not data:
                break
            received += data
    except (ConnectionResetError, TimeoutError):
        pass
    if not received.startswith(b"HTTP/1.1 "):
        return None
    return int(received[9:12])


@dataclass(frozen=True)
class Outcome:
    status: int | None
    sent: int  # bytes of the oversized part the client managed to send
    seconds: float


def send_streaming(port: int, head: bytes, size: int, chunk: Callable[[bytes], bytes]) -> Outcome:
    """``head``, then up to ``size`` bytes in 64 KiB pieces, each wrapped by ``chunk``."""
    started = time.monotonic()
    sent = 0
    with connect(port) as sock:
        try:
            sock.sendall(head)
            piece = chunk(b"a" * CHUNK)
            while sent < size:
                sock.sendall(piece)
                sent += CHUNK
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server cut the request off, as it should
        return Outcome(status_of(sock), sent, time.monotonic() - started)


def oversized_header(port: int, size: int) -> Outcome:
    head = b"GET /healthz HTTP/1.1\r\nHost: afflux\r\nX-Padding: "
    return send_streaming(port, head, size, lambda piece: piece)


def trickle(port: int, head: bytes, limit_s: float) -> Outcome:
    """``head``, then one byte every 0.2 s until the server answers or ``limit_s`` passes."""
    started = time.monotonic()
    with connect(port) as sock:
        sock.sendall(head)
        for _ in range(int(limit_s / 0.2)):
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            break  # closed without an answer
        return Outcome(status_of(sock), 0, time.monotonic() - started)


# The service's health and memory while under attack


@dataclass
class Watch:
    """/healthz on a fresh connection every 50 ms, and the peak VmRSS of the process."""

    port: int
    pid: int
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    peak_rss: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        for _ in range(2_000):
            if self.stop.is_set():
                return
            self.peak_rss = max(self.peak_rss, rss(self.pid))
            started = time.monotonic()
            try:
                status = oneshot.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).status_code
            except httpx.HTTPError:
                status = 0
            self.latencies.append(time.monotonic() - started)
            self.statuses.append(status)
            self.stop.wait(0.05)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def under_watch(running: Running, attack: Callable[[], list[Outcome]]) -> list[Outcome]:
    """Run ``attack`` while /healthz is probed; assert health and the memory bound."""
    for _ in range(5):  # warm the paths the attack takes before the baseline
        assert oneshot.get(f"http://127.0.0.1:{running.port}/healthz", timeout=5).status_code == 200
    assert oversized_header(running.port, 32 * 1024).status == 431
    baseline = rss(running.pid)
    watch = Watch(running.port, running.pid)
    prober = threading.Thread(target=watch.run, daemon=True)
    prober.start()
    try:
        outcomes = attack()
    finally:
        watch.stop.set()
        prober.join(timeout=10)
    watch.peak_rss = max(watch.peak_rss, rss(running.pid))
    assert watch.statuses, "/healthz was never probed"
    assert set(watch.statuses) == {200}, watch.statuses
    assert max(watch.latencies) < HEALTHZ_BOUND_S, watch.latencies
    growth = watch.peak_rss - baseline
    assert growth < RSS_GROWTH_BOUND, f"RSS grew by {growth / MiB:.1f} MiB"
    return outcomes


# The tests


@every_service
def test_oversized_headers_are_answered_431_without_memory_growth(running: Running) -> None:
    sizes = [20 * 1024, 8 * MiB, 48 * MiB, 48 * MiB, 48 * MiB]

    def attack() -> list[Outcome]:
        with ThreadPoolExecutor(len(sizes)) as pool:
            return list(pool.map(lambda size: oversized_header(running.port, size), sizes))

    small, *large = under_watch(running, attack)
    assert small.status == 431
    # A large one may be reset before its answer is read; any answer is 431.
    assert {o.status for o in large} <= {431, None}
    assert all(o.sent < 48 * MiB for o in large[1:]), "a 48 MB header was read to the end"


@dataclass(frozen=True)
class Case:
    name: str
    size: int  # bytes of the head, or the declared body length
    status: int


HEAD_CASES = [
    Case("at_the_limit", 16_384, 200),  # exactly AFFLUX_HTTP_MAX_HEADER_BYTES is accepted
    Case("one_byte_over", 16_385, 431),  # one more byte is refused
]
BODY_CASES = [
    Case("at_the_limit", MiB, 200),  # a declared length of exactly the limit reaches the app
    Case("one_byte_over", MiB + 1, 413),  # one more is refused before the app runs
]


@pytest.mark.parametrize("running", SERVICES[:1], indirect=True, ids=["clicks"])
@pytest.mark.parametrize("case", HEAD_CASES, ids=[c.name for c in HEAD_CASES])
def test_the_header_limit_counts_the_request_line_and_every_header_line(
    running: Running, case: Case
) -> None:
    start = b"GET /healthz HTTP/1.1\r\nHost: afflux\r\nX-Padding: "
    end = b"\r\n\r\n"
    head = start + b"p" * (case.size - len(start) - len(end)) + end
    assert len(head) == case.size
    with connect(running.port) as sock:
        sock.sendall(head)
        assert status_of(sock) == case.status


@pytest.mark.parametrize("running", SERVICES[:1], indirect=True, ids=["clicks"])
@pytest.mark.parametrize("case", BODY_CASES, ids=[c.name for c in BODY_CASES])
def test_the_body_limit_applies_to_the_declared_length(running: Running, case: Case) -> None:
    with connect(running.port) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: afflux\r\nContent-Length: %d\r\n\r\n" % case.size
        )
        assert status_of(sock) == case.status


@every_service
def test_a_declared_body_over_the_limit_is_answered_413_before_it_is_sent(
    running: Running,
) -> None:
    def attack() -> list[Outcome]:
        with connect(running.port) as sock:
            sock.sendall(
                b"POST /healthz HTTP/1.1\r\nHost: afflux\r\nContent-Length: %d\r\n\r\n" % (64 * MiB)
            )
            return [Outcome(status_of(sock), 0, 0.0)]

    [outcome] = under_watch(running, attack)
    assert outcome.status == 413


@every_service_reading_bodies
def test_a_chunked_body_over_the_limit_is_cut_off_with_413(running: Running) -> None:
    path = running.service.body_path
    assert path is not None
    head = (
        b"POST %s HTTP/1.1\r\nHost: afflux\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" % path.encode()
    )

    def attack() -> list[Outcome]:
        return [send_streaming(running.port, head, 16 * MiB, lambda p: b"10000\r\n" + p + b"\r\n")]

    [outcome] = under_watch(running, attack)
    assert outcome.status in (413, None)
    assert outcome.sent < 16 * MiB, "a 16 MB body was read to the end"


@every_service
def test_a_slow_head_is_answered_408_after_the_header_timeout(running: Running) -> None:
    def attack() -> list[Outcome]:
        head = b"GET /healthz HTTP/1.1\r\nHost: afflux\r\nX-Slow: "
        return [trickle(running.port, head, HEADER_TIMEOUT_S + 5)]

    [outcome] = under_watch(running, attack)
    assert outcome.status == 408

    assert HEADER_TIMEOUT_S - SLACK_S <= outcome.seconds < HEADER_TIMEOUT_S + 2


@every_service_reading_bodies
def test_a_slow_body_is_answered_408_after_the_body_timeout(running: Running) -> None:
    path = running.service.body_path
    assert path is not None
    head = (
        b"POST %s HTTP/1.1\r\nHost: afflux\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" % path.encode()
    )

    def attack() -> list[Outcome]:
        return [trickle(running.port, head, BODY_TIMEOUT_S + 5)]

    [outcome] = under_watch(running, attack)
    assert outcome.status == 408
    assert BODY_TIMEOUT_S - SLACK_S <= outcome.seconds < BODY_TIMEOUT_S + 2


@every_service
def test_one_connection_past_the_cap_is_answered_503_and_healthz_recovers(
    running: Running,
) -> None:
    held = [connect(running.port) for _ in range(MAX_CONNECTIONS)]
    try:
        with connect(running.port) as extra:
            assert status_of(extra) == 503
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the server notices the closes on its next loop turn
        try:
            if (
                oneshot.get(f"http://127.0.0.1:{running.port}/healthz", timeout=1).status_code
                == 200
            ):
                return
        except httpx.HTTPError:
            continue
    raise AssertionError("/healthz did not answer after the held connections closed")


@every_service_reading_bodies
def test_a_chunked_bodys_trailers_are_bounded_like_a_head(running: Running) -> None:
    """Trailers after the last chunk were appended to the request's headers without a
    bound: one connection grew a process by over a gigabyte within the body timeout."""
    path = running.service.body_path
    assert path is not None
    head = (
        b"POST %s HTTP/1.1\r\nHost: afflux\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n" % path.encode()
    )

    def attack() -> list[Outcome]:
        line = b"X-Trailer: " + b"a" * (CHUNK - 13) + b"\r\n"
        return [send_streaming(running.port, head, 64 * MiB, lambda _: line)]

    [outcome] = under_watch(running, attack)
    assert outcome.status in (431, None)
    assert outcome.sent < 4 * MiB, f"{outcome.sent} bytes of trailers were read"


@every_service
def test_pipelined_requests_past_the_bound_close_the_connection(running: Running) -> None:
    """uvicorn queued every request of a read: 256 KiB of pipelined GETs never read back
    were 7,710 requests and 17 MB of one process."""
    request = b"GET /healthz HTTP/1.1\r\nHost: afflux\r\n\r\n"
    answers: list[int] = []

    def attack() -> list[Outcome]:
        started = time.monotonic()
        with connect(running.port) as sock:
            try:
                for _ in range(8):
                    sock.sendall(request * (CHUNK // len(request)))
            except (BrokenPipeError, ConnectionResetError):
                pass
            received = b""
            sock.settimeout(5)
            try:
                while data := sock.recv(CHUNK):
                    received += data
            except (ConnectionResetError, TimeoutError):
                pass
            answers.append(received.count(b"HTTP/1.1 "))
        return [Outcome(None, 0, time.monotonic() - started)]

    [outcome] = under_watch(running, attack)
    # The requests queued before the bound are answered, then the connection closes.
    assert 1 <= answers[0] <= 64, f"{answers[0]} pipelined requests were answered"
    assert outcome.seconds < 5 + 2, "the connection was held open"


@pytest.mark.parametrize("running", SERVICES[2:3], indirect=True, ids=["payouts"])
def test_answers_the_client_does_not_read_close_the_connection_after_the_body_timeout(
    running: Running,
) -> None:
    """With the answers waiting to be written no timer ran: a client pipelining requests
    for a large answer and reading none held its connection for ever."""
    request = b"GET /openapi.json HTTP/1.1\r\nHost: afflux\r\n\r\n"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
    sock.connect(("127.0.0.1", running.port))
    with sock:
        # 30 answers of about 130 KB: more than the kernel's buffers hold, so the server's
        # transport keeps the rest and stops writing.
        sock.sendall(request * 30)
        time.sleep(BODY_TIMEOUT_S + 3)  # nothing read meanwhile
        # Aborted, the server reset the connection: the next send (or the one after it,
        # once the reset is in) fails. Held open, its receive buffer takes them.
        closed = False
        for _ in range(3):
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.2)
    assert closed, "the connection was held open with its answers unread"


@pytest.mark.parametrize("running", SERVICES[:1], indirect=True, ids=["clicks"])
def test_a_request_with_two_host_headers_is_a_400(running: Running) -> None:
    with connect(running.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: afflux\r\nHost: other.example\r\n\r\n")
        assert status_of(sock) == 400


@pytest.mark.parametrize("running", SERVICES[2:3], indirect=True, ids=["payouts"])
def test_a_client_reading_answers_slowly_gets_them_all(running: Running) -> None:
    """The unread-answer timer must not cut a slow reader: 30 answers of about 130 KB read
    a few KB at a time take several body timeouts, and every byte arrives."""
    request = b"GET /openapi.json HTTP/1.1\r\nHost: afflux\r\n\r\n"
    size = len(httpx.get(f"http://127.0.0.1:{running.port}/openapi.json", timeout=10).content)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", running.port))
    received = 0
    with sock:
        sock.sendall(request * 29 + request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        sock.settimeout(BODY_TIMEOUT_S + 5)
        started = time.monotonic()
        while data := sock.recv(16 * 1024):
            received += len(data)
            time.sleep(0.01)  # at most a few KB a read through the small buffer
    assert received > 30 * size, f"{received} bytes of {30 * size}"
    assert time.monotonic() - started > 2 * BODY_TIMEOUT_S  # slow enough to matter
