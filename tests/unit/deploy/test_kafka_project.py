"""deploy/kafka runs the Kafka that compose.yaml runs, configured as one node, and says
what is missing when it cannot start (no Java, no Maven) and what to do instead."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from afflux.cli.brokers import TEST_BROKER_VARIABLE, broker_from_env
from afflux.cli.kafka_broker import (
    KAFKA_PROJECT,
    broker_classpath,
    kafka_version,
    server_properties,
    start_kafka,
)
from afflux.cli.processes import StartFailed

pytestmark = pytest.mark.unit

COMPOSE = Path(__file__).resolve().parents[3] / "compose.yaml"


def test_the_maven_project_copies_the_kafka_version_compose_runs() -> None:
    image = yaml.safe_load(COMPOSE.read_text())["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{kafka_version()}"


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


@dataclass(frozen=True)
class Case:
    key: str
    value: str


# One node is the whole cluster: nothing may wait for a second replica.
SINGLE_NODE = [
    Case("process.roles", "broker,controller"),  # KRaft, no ZooKeeper
    Case("controller.quorum.voters", "1@127.0.0.1:9101"),  # itself, on the controller port
    Case("listeners", "PLAINTEXT://127.0.0.1:9100,CONTROLLER://127.0.0.1:9101"),  # loopback
    Case("advertised.listeners", "PLAINTEXT://127.0.0.1:9102"),  # the gate's port when given
    Case("offsets.topic.replication.factor", "1"),  # consumer groups work at once
    Case("transaction.state.log.replication.factor", "1"),
    Case("transaction.state.log.min.isr", "1"),
    Case("min.insync.replicas", "1"),  # acks=all is one write
    Case("group.initial.rebalance.delay.ms", "0"),  # a first join is not held back 3 s
    Case("auto.create.topics.enable", "false"),  # as in compose.yaml: topics are declared
]


@pytest.mark.parametrize("case", SINGLE_NODE, ids=lambda c: c.key)
def test_server_properties_make_one_node_a_whole_cluster(case: Case, tmp_path: Path) -> None:
    written = _properties(server_properties(tmp_path, 9100, 9101, 9102, "127.0.0.1"))
    assert written[case.key] == case.value


def test_the_broker_log_lives_under_the_data_directory(tmp_path: Path) -> None:
    written = _properties(server_properties(tmp_path, 9100, 9101, 9100, "127.0.0.1"))
    assert written["log.dirs"] == str(tmp_path / "log")


def test_without_java_the_error_names_java_and_the_alternatives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with nothing on it
    with pytest.raises(StartFailed, match=r"`java`.*AFFLUX_KAFKA_BOOTSTRAP.*embedded broker"):
        start_kafka(1, tmp_path / "kafka", tmp_path / "logs")


def test_first_use_without_maven_names_maven_and_the_alternatives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "kafka"
    project.mkdir()
    shutil.copy(KAFKA_PROJECT / "pom.xml", project / "pom.xml")  # nothing copied yet
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StartFailed) as raised:
        broker_classpath(tmp_path / "maven.log", project)
    message = str(raised.value)
    assert re.search(r"Apache Kafka \d+\.\d+\.\d+", message)
    assert "`mvn`" in message
    assert "AFFLUX_KAFKA_BOOTSTRAP" in message


def test_the_test_broker_is_tansu_unless_kafka_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TEST_BROKER_VARIABLE, raising=False)
    assert broker_from_env() == "tansu"
    monkeypatch.setenv(TEST_BROKER_VARIABLE, "kafka")
    assert broker_from_env() == "kafka"


def test_an_unknown_test_broker_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_BROKER_VARIABLE, "redpanda")
    with pytest.raises(ValueError, match=r"AFFLUX_TEST_BROKER='redpanda'.*tansu, kafka"):
        broker_from_env()
