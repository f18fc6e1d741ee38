"""What ``afflux up`` prints once it is up: a table of where each part answers."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from afflux.cli.console import console_for
from afflux.cli.stack import Stack, StackOptions
from afflux.cli.storage import BrokerStorage
from afflux.cli.up import service_lines, service_table

pytestmark = pytest.mark.unit

PORTS = {"clicks": 9001, "orders": 9002, "payouts": 9003, "attribution": 9004}


def printed_table(stack: Stack) -> str:
    out = io.StringIO()
    console_for(out).print(service_table(service_lines(stack)))
    return out.getvalue()


def embedded_stack(tmp_path: Path, storage: BrokerStorage) -> Stack:
    stack = Stack(
        StackOptions(work_dir=tmp_path, ports=dict(PORTS), storage=storage, broker="tansu")
    )
    stack.kafka_bootstrap = "127.0.0.1:39092"  # as start_infra sets them
    stack.redis_url = "redis://127.0.0.1:39379/0"
    return stack


def test_every_service_name_stands_apart_from_its_url(tmp_path: Path) -> None:
    text = printed_table(embedded_stack(tmp_path, "memory"))
    for name, port in PORTS.items():
        assert re.search(rf"^\s*{name}\s+http://127\.0\.0\.1:{port}\s", text, re.MULTILINE), text
    assert "attributionhttp" not in text


def test_the_table_names_the_brokers_storage_and_redis_durability(tmp_path: Path) -> None:
    text = printed_table(embedded_stack(tmp_path, "memory"))
    assert re.search(r"broker\s+127\.0\.0\.1:39092\s+memory storage", text)
    assert re.search(r"redis\s+redis://127\.0\.0\.1:39379/0\s+AOF, fsync every second", text)


def test_servers_given_from_outside_are_marked_external(tmp_path: Path) -> None:
    stack = Stack(
        StackOptions(
            work_dir=tmp_path,
            kafka_bootstrap="kafka.internal:9092",
            redis_url="redis://redis.internal:6379/0",
            ports=dict(PORTS),
        )
    )
    lines = {line.name: line for line in service_lines(stack)}
    assert lines["broker"].detail == "external storage"
    assert lines["redis"].detail == ""
