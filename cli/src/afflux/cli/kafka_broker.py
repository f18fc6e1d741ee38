"""Apache Kafka (KRaft, one node as broker and controller) on loopback ports, the
production broker, run from the jars ``deploy/kafka/pom.xml`` copies from Maven Central.

First use runs Maven once (network needed); later uses find the complete jar folder and
start offline. Needs ``java`` (17+) and, on first use, ``mvn``. Without them the
embedded broker (Tansu) still works, and ``AFFLUX_KAFKA_BOOTSTRAP`` points afflux at a
Kafka that is already running.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from afflux.cli.processes import Child, StartFailed, free_port, tcp_open

REPO_ROOT = Path(__file__).resolve().parents[4]
KAFKA_PROJECT = REPO_ROOT / "deploy" / "kafka"
COMPLETE_MARK = ".complete"  # holds the hash of the pom the folder was copied for
NODE_ID = 1
START_TIMEOUT_S = 90.0
# A controlled shutdown (leadership handed back, logs flushed) takes 2-3 s.
STOP_TIMEOUT_S = 30.0
# Small heap, serial GC and the client compiler: a test broker starts in a few
# seconds and stays light beside the services on a small machine.
JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
)
ALTERNATIVE = "or set AFFLUX_KAFKA_BOOTSTRAP to a running Kafka, or use the embedded broker"
LOG4J = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
"""


def kafka_version(pom: Path = KAFKA_PROJECT / "pom.xml") -> str:
    """The Kafka version the pom copies (``<kafka.version>``)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", _read_pom(pom))
    if found is None:
        raise StartFailed(f"{pom} names no <kafka.version>")
    return found.group(1).strip()


def java_binary() -> str:
    found = shutil.which("java")
    if found is None:
        raise StartFailed(
            "Apache Kafka needs a Java runtime: no `java` on PATH (install OpenJDK 17 or"
            f" newer, e.g. the Debian package openjdk-17-jre-headless), {ALTERNATIVE}"
        )
    return found


def lib_dir(project: Path = KAFKA_PROJECT) -> Path:
    return project / "target" / "lib"


def broker_classpath(log: Path, project: Path = KAFKA_PROJECT, out: TextIO = sys.stderr) -> str:
    """``target/lib/*`` of ``project``, after copying the jars with Maven unless that
    folder is complete (copied for this very pom)."""
    pom = project / "pom.xml"
    wanted = hashlib.sha256(_read_pom(pom).encode()).hexdigest()
    mark = lib_dir(project) / COMPLETE_MARK
    if not _complete(mark, wanted):
        with _lock(project / "target" / ".copy.lock"):
            if not _complete(mark, wanted):  # another process may have copied meanwhile
                _copy_jars(pom, log, wanted, out)
    return f"{lib_dir(project)}/*"


def _read_pom(pom: Path) -> str:
    try:
        return pom.read_text()
    except OSError as exc:
        raise StartFailed(
            f"{pom} is missing: afflux starts Apache Kafka from a source checkout only; "
            + ALTERNATIVE
        ) from exc


def _complete(mark: Path, wanted: str) -> bool:
    try:
        return mark.read_text().strip() == wanted
    except OSError:
        return False


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _copy_jars(pom: Path, log: Path, wanted: str, out: TextIO) -> None:
    mvn = shutil.which("mvn")
    version = kafka_version(pom)
    if mvn is None:
        raise StartFailed(
            f"the first start of Apache Kafka {version} copies its jars from Maven Central"
            " with Maven: no `mvn` on PATH (install the Debian package maven), " + ALTERNATIVE
        )
    target = lib_dir(pom.parent)
    shutil.rmtree(target, ignore_errors=True)  # no jars of an older version stay behind
    print(
        f"afflux: first use of Apache Kafka {version}: copying its jars from Maven Central"
        f" into {target} (about 60 MB; later starts are offline) ...",
        file=out,
        flush=True,
    )
    started = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        done = subprocess.run(
            [mvn, "-B", "-ntp", "-f", str(pom), "package"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StartFailed(
            f"Maven could not copy Apache Kafka {version} from Maven Central (the first"
            f" start needs network access to repo.maven.apache.org), {ALTERNATIVE}."
            f" Maven's log is {log}:\n{tail}"
        )
    (target / COMPLETE_MARK).write_text(wanted + "\n")
    print(
        f"afflux: Apache Kafka {version} jars ready in {time.monotonic() - started:.1f}s",
        file=out,
        flush=True,
    )


def server_properties(
    data_dir: Path, port: int, controller_port: int, advertised_port: int, host: str
) -> str:
    """One node as broker and controller; every replication factor and ISR minimum 1;
    the rest as compose.yaml configures production."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{advertised_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "controller.quorum.voters": f"{NODE_ID}@{host}:{controller_port}",
        "log.dirs": str(data_dir / "log"),
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding, never
    starting with '-' (which the command-line tools would read as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _format_storage(java: str, classpath: str, data_dir: Path, log_dir: Path) -> None:
    """Format the KRaft log directory once; a formatted one is reused (a restart)."""
    if (data_dir / "log" / "meta.properties").exists():
        return
    argv = [
        java,
        *JVM_OPTIONS,
        f"-Dlog4j.configuration=file:{data_dir / 'log4j.properties'}",
        "-cp",
        classpath,
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        _cluster_id(),
        "--config",
        str(data_dir / "server.properties"),
    ]
    log = log_dir / "kafka-format.log"
    with log.open("ab") as sink:
        done = subprocess.run(
            argv, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StartFailed(f"formatting Kafka's storage in {data_dir} failed:\n{tail}")


def serves_metadata(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """Whether ``bootstrap`` answers a metadata request naming this node as a broker and
    as the controller. Asked of that address only: the advertised one may be a gate
    that is not open yet."""
    host, port = _host_port(bootstrap)
    if not tcp_open(host, port):
        return False

    async def probe() -> bool:
        try:
            conn = await create_conn(host, port, request_timeout_ms=int(timeout_s * 1000))
        except (TimeoutError, OSError, KafkaError):
            return False
        try:
            response = await conn.send(MetadataRequest([]))
        except (TimeoutError, KafkaError):
            return False
        finally:
            conn.close()
        nodes = {broker[0] for broker in response.brokers}
        return NODE_ID in nodes and getattr(response, "controller_id", None) == NODE_ID

    # Its own thread and event loop: callers may be inside a running loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, probe()).result()


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    return host, int(port)


def start_kafka(
    port: int,
    data_dir: Path,
    log_dir: Path,
    host: str = "127.0.0.1",
    *,
    advertised_port: int | None = None,
) -> Child:
    """Start Kafka on ``port`` with its log under ``data_dir`` (formatted on first use,
    reused after), wait until it serves metadata; stop it with ``Child.stop``.

    ``advertised_port`` makes clients connect somewhere else after bootstrap
    (the fault tests' gate, see ``afflux.cli.gate``)."""
    java = java_binary()
    classpath = broker_classpath(log_dir / "kafka-maven.log")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "server.properties"
    config.write_text(
        server_properties(data_dir, port, free_port(host), advertised_port or port, host)
    )
    (data_dir / "log4j.properties").write_text(LOG4J)
    _format_storage(java, classpath, data_dir, log_dir)
    argv = [
        java,
        *JVM_OPTIONS,
        f"-Dlog4j.configuration=file:{data_dir / 'log4j.properties'}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(config),
    ]
    child = Child("broker", argv, log_dir / "broker.log", stop_timeout_s=STOP_TIMEOUT_S)
    child.start()
    try:
        child.wait_until(lambda: serves_metadata(f"{host}:{port}"), timeout_s=START_TIMEOUT_S)
    except BaseException:  # also Ctrl-C while waiting: leave no process behind
        child.stop()
        raise
    return child
