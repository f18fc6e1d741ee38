"""A service counts as started only when the process started holds its port: another
process answering /healthz there (a second stack that bound it first) is not it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from afflux.cli.port_owner import listens_on
from afflux.cli.processes import StartFailed, free_port
from afflux.cli.stack import SERVICES, Stack, StackOptions

pytestmark = pytest.mark.integration


class Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def impostor() -> Iterator[int]:
    """Another process's service: a port answering 200 on every path; the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_process_listening_on_a_port_is_its_owner_and_no_other_is() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert listens_on(os.getpid(), port)
            assert not listens_on(other.pid, port)
        finally:
            other.kill()
            other.wait()
    assert not listens_on(os.getpid(), port)  # closed: nobody listens


def test_a_socket_bound_but_not_listening_does_not_own_the_port() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        assert not listens_on(os.getpid(), bound.getsockname()[1])


def test_a_service_whose_port_another_process_answers_on_fails_to_start_naming_why(
    infra: Any, impostor: int, tmp_path: Path
) -> None:
    stack = Stack(
        StackOptions(
            work_dir=tmp_path,
            kafka_bootstrap=infra.kafka_bootstrap,
            redis_url=infra.redis_url,
            ports={**{name: free_port() for name in SERVICES}, "clicks": impostor},
        )
    )
    try:
        with pytest.raises(StartFailed) as failed:
            stack.start_service("clicks", timeout_s=60)
    finally:
        stack.stop()
    assert "clicks exited during start-up" in str(failed.value)
    assert "address already in use" in str(failed.value)
