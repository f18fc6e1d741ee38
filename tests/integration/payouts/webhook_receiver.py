"""A webhook receiver on a free loopback port for the tests: it verifies every request's
signature with the reference ``standardwebhooks`` package and records what arrived."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

HOLD_MAX_S = 120.0


@dataclass
class Arrival:
    webhook_id: str
    event_type: str
    data: dict[str, Any]


@dataclass
class Receiver:
    """``fail_first``: answer 500 to the first n attempts of each webhook id; ``fail_always``:
    to every attempt. ``secrets`` maps the URL path to the endpoint's secret."""

    fail_first: int = 0
    fail_always: bool = False
    answer_after_s: float = 0.0  # a slow endpoint: how long it takes to answer
    slow_paths: dict[str, float] = field(default_factory=dict)  # path -> its own answer time
    # Endpoints that answer only once ``release`` is set (at most HOLD_MAX_S): slow for as
    # long as a test needs, with no answer time to guess. ``holding``: requests held now.
    held_paths: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    holding: Counter[str] = field(default_factory=Counter)
    most_held: int = 0  # the most requests held at once, all paths together
    answer_body: bytes = b"ok"
    answer_headers: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    attempts: Counter[str] = field(default_factory=Counter)
    arrivals: dict[str, list[Arrival]] = field(default_factory=dict)  # path -> accepted
    unverified: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender was cut off mid-request: no delivery
                    return
                status = receiver.handle(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("content-length", str(len(receiver.answer_body)))
                for name, value in receiver.answer_headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(receiver.answer_body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()  # no handler thread stays held
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        secret = self.secrets.get(path)
        try:
            if secret is None:
                raise WebhookVerificationError(f"no endpoint at {path}")
            parsed = Webhook(secret).verify(body, headers)
        except WebhookVerificationError as exc:
            with self.lock:
                self.unverified.append(f"{path}: {exc}")
            return 400
        msg_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        delay = self.slow_paths.get(path, self.answer_after_s)
        if delay:
            time.sleep(delay)
        if path in self.held_paths:
            with self.lock:
                self.holding[path] += 1
                self.most_held = max(self.most_held, sum(self.holding.values()))
            self.release.wait(HOLD_MAX_S)
            with self.lock:
                self.holding[path] -= 1
        with self.lock:
            self.attempts[msg_id] += 1
            if self.fail_always or self.attempts[msg_id] <= self.fail_first:
                return 500
            arrival = Arrival(msg_id, parsed["type"], parsed["data"])
            self.arrivals.setdefault(path, []).append(arrival)
        return 204

    def held(self, paths: set[str]) -> int:
        """Requests to ``paths`` held unanswered now."""
        with self.lock:
            return sum(self.holding[p] for p in paths)

    def received(self, path: str) -> list[Arrival]:
        with self.lock:
            return list(self.arrivals.get(path, []))

    def ids(self, path: str) -> set[str]:
        return {a.webhook_id for a in self.received(path)}

    def events(self, path: str) -> dict[str, set[str]]:
        """Event type -> the event ids that arrived at ``path``."""
        found: dict[str, set[str]] = {}
        for arrival in self.received(path):
            found.setdefault(arrival.event_type, set()).add(arrival.data["event_id"])
        return found


def total_attempts(receiver: Receiver) -> int:
    with receiver.lock:
        return sum(receiver.attempts.values())


def body_of(arrival: Arrival) -> str:
    return json.dumps(arrival.data, sort_keys=True)
