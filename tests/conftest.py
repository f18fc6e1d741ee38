"""Session fixtures: a private broker and a private redis-server on free loopback ports.

Nothing here depends on a server that was already running: each test session
starts its own and stops it at the end. The broker is the embedded Tansu unless
``AFFLUX_TEST_BROKER=kafka`` (``scripts/test --broker kafka``) asks for Apache Kafka.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from afflux.cli import orphans
from afflux.cli.brokers import BrokerKind, broker_from_env, start_chosen_broker
from afflux.cli.embedded import start_redis
from afflux.cli.processes import Child, free_port
from afflux.shared.io.kafka import create_topics

PARTITIONS = 4


# The test files that take longest (seconds of a full run on two cores with three workers,
# summed per file from the JUnit report). `scripts/test` hands whole files (or the units
# of ``work_unit``) to its workers in collection order (`--no-loadscope-reorder`;
# pytest-xdist would otherwise put the files with the most tests first, which leaves these
# for the end, where one worker can run a long file alone while the others idle), so
# these go first, longest first, and the many short files fill in behind them.
LONGEST_FILES = {
    "tests/e2e/abuse/test_schemas_fuzzed.py": 522,
    "tests/e2e/faults/test_faults.py": 516,
    "tests/integration/cli/test_bench_commands.py": 487,
    "tests/e2e/faults/test_differential.py": 438,
    "tests/e2e/cli/test_up.py": 341,
    "tests/e2e/abuse/test_production_refuses_weak_config.py": 330,
    "tests/e2e/cli/test_demo.py": 225,
    "tests/integration/attribution/test_divergence.py": 186,
    "tests/e2e/attribution/test_worker_kill_9.py": 137,
    "tests/e2e/attribution/test_worker_rebalance.py": 132,
    "tests/e2e/payouts/test_keys_stack.py": 129,
    "tests/e2e/foundation/test_api_reference.py": 126,
    "tests/e2e/payouts/test_webhooks_stack.py": 124,
    "tests/e2e/payouts/test_ledger_kill.py": 111,
    "tests/integration/attribution/test_failed_batch_retry.py": 110,
}

# Files that share a package-scoped stack go to one worker as one unit, so the stack starts
# once: handed out file by file, each worker that got one of them started its own.
PACKAGE_STACKS = {
    "tests/e2e/abuse/": (
        "test_no_raw_ip_anywhere.py",
        "test_poison.py",
        "test_probe_findings.py",
        "test_schemas_fuzzed.py",
        "test_signature_attacks.py",
    ),
}


def work_unit(nodeid: str) -> str:
    """The file of a test, or the package whose stack its file shares."""
    path = nodeid.split("::", 1)[0]
    package, _, name = path.rpartition("/")
    return package + "/" if name in PACKAGE_STACKS.get(package + "/", ()) else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the units of ``work_unit``."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class PackageStackScheduling(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return PackageStackScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker, and every process it starts, picks free ports from its
    own part of the range (``afflux.cli.processes.free_port``). The session's first
    process stops what a killed earlier run left running (``afflux.cli.orphans``)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        left = orphans.reap()
        if left:
            print(f"stopped {len(left)} process(es) a killed earlier run left: {left}")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and count.isdigit():
        os.environ["AFFLUX_PORT_SLICE"] = f"{worker[2:]}/{count}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: -LONGEST_FILES.get(item.nodeid.split("::", 1)[0], 0))


def required_tool(*names: str, package: str) -> str:
    """The path of the first of ``names`` on PATH; a missing tool fails the test, never skips it.

    ``scripts/system-deps`` (run by ``scripts/test``) installs these Debian packages.
    """
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.fail(
        f"{names[0]} is not installed: install the Debian package {package!r} "
        "(scripts/system-deps does it when run as root)",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def promtool() -> str:
    return required_tool("promtool", package="prometheus")


@pytest.fixture(scope="session")
def prometheus_server() -> str:
    return required_tool("prometheus", package="prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return required_tool("amtool", package="prometheus-alertmanager")


@pytest.fixture(scope="session")
def chromium() -> str:
    return required_tool("chromium", "chromium-browser", package="chromium")


@pytest.fixture(scope="session")
def chromedriver() -> str:
    """The WebDriver of Debian's chromium (Selenium drives the browser through it)."""
    return required_tool("chromedriver", package="chromium-driver")


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    redis_url: str
    partitions: int
    broker: Child
    redis: Child
    work_dir: Path


@pytest.fixture(scope="session")
def broker_kind() -> BrokerKind:
    """The broker this run tests against (``AFFLUX_TEST_BROKER``, tansu when unset)."""
    return broker_from_env()


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory, broker_kind: BrokerKind) -> Iterator[Infra]:
    """One broker and one Redis for the whole session, topics created."""
    work = tmp_path_factory.mktemp("infra")
    broker_port, redis_port = free_port(), free_port()
    broker = start_chosen_broker(broker_kind, broker_port, work)
    redis = start_redis(redis_port, work / "redis", work / "logs")
    try:
        bootstrap = f"127.0.0.1:{broker_port}"
        asyncio.run(create_topics(bootstrap, PARTITIONS))
        yield Infra(bootstrap, f"redis://127.0.0.1:{redis_port}/0", PARTITIONS, broker, redis, work)
    finally:
        redis.stop()
        broker.stop()
