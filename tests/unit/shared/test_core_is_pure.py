"""The pure core stays pure: no I/O client, no event loop, no reading of the clock.

Every module under ``afflux.shared.core`` is read with ``ast`` (never imported
for the check), so a forbidden import inside a function is found too.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from dataclasses import dataclass
from pathlib import Path

import pytest

import afflux.shared.core

pytestmark = pytest.mark.unit

FORBIDDEN_PACKAGES = frozenset(
    {
        "aiokafka",
        "redis",
        "faust",
        "mode",
        "httpx",
        "fastapi",
        "starlette",
        "uvicorn",
        "asyncio",
    }
)
# Fully qualified: ``datetime.now`` is ``datetime.datetime.now``.
CLOCK_READS = frozenset(
    {
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.perf_counter_ns",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
    }
)


def impurities(source: str) -> list[str]:
    """What in ``source`` breaks the rule: forbidden imports and clock reads (called or
    merely referenced, as in ``clock = time.time``), each with its line."""
    tree = ast.parse(source)
    names: dict[str, str] = {}  # local name -> what it was imported as
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
                _check_package(alias.name, node.lineno, found)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            _check_package(node.module, node.lineno, found)
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in CLOCK_READS:
                    found.append(f"line {node.lineno}: imports {node.module}.{alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute | ast.Name):
            continue
        dotted = _dotted(node, names)
        if dotted in CLOCK_READS:
            found.append(f"line {node.lineno}: reads the clock ({dotted})")
    return found


def _check_package(module: str, line: int, found: list[str]) -> None:
    if module.split(".")[0] in FORBIDDEN_PACKAGES:
        found.append(f"line {line}: imports {module}")


def _dotted(node: ast.AST, names: dict[str, str]) -> str | None:
    """``a.b.c`` for an attribute chain on a name, with the name resolved through the
    module's imports; None for anything else."""
    attributes: list[str] = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(attributes)])


def core_modules() -> list[tuple[str, Path]]:
    modules = [("afflux.shared.core", Path(afflux.shared.core.__file__))]
    for info in pkgutil.walk_packages(afflux.shared.core.__path__, "afflux.shared.core."):
        spec = importlib.util.find_spec(info.name)  # imports the package, not the module
        assert spec is not None
        assert spec.origin is not None
        modules.append((info.name, Path(spec.origin)))
    return modules


@pytest.mark.parametrize(("name", "path"), core_modules(), ids=lambda v: str(v))
def test_core_module_imports_no_io_and_reads_no_clock(name: str, path: Path) -> None:
    assert impurities(path.read_text()) == [], f"{name} is not pure"


def test_every_core_module_is_checked() -> None:
    names = {name for name, _ in core_modules()}
    assert {"afflux.shared.core.terms", "afflux.shared.core.clock"} <= names
    assert len(names) == len(list(Path(afflux.shared.core.__file__).parent.rglob("*.py")))


@dataclass(frozen=True)
class Case:
    source: str
    impure: bool


CASES = [
    # an event loop or a client, however imported
    Case("import asyncio", True),
    Case("import redis.asyncio as r", True),
    Case("from aiokafka import AIOKafkaProducer", True),
    Case("from fastapi.responses import JSONResponse", True),
    # the clock, called ...
    Case("import time\nnow = time.time_ns()", True),
    Case("import time as t\nnow = t.monotonic()", True),
    Case("from datetime import datetime\nnow = datetime.now()", True),
    Case("import datetime\nnow = datetime.datetime.utcnow()", True),
    Case("from datetime import date\ntoday = date.today()", True),
    # ... imported by name, or only referenced
    Case("from time import time_ns", True),
    Case("import time\nclock = time.time", True),
    # converting a given time is pure
    Case("from datetime import UTC, datetime\nd = datetime.fromtimestamp(0, tz=UTC)", False),
    Case("import time\nfmt = time.strftime", False),
    # a local name that only looks like a module is not one
    Case("def f(time: object) -> None:\n    time.time()", False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.source.splitlines()[-1] for c in CASES])
def test_the_check_tells_impure_from_pure(case: Case) -> None:
    assert bool(impurities(case.source)) is case.impure


# The contracts every producer and consumer share: they may use the core, never the I/O edge.
CONTRACT_MODULES = (
    "events",
    "topics",
    "wire",
    "schemas",
    "event_docs",
    "campaign_file",
    "settings",
    "setting_files",
    "redis_url",
    "secret_policy",
    "ledger_facts",
    "content_facts",
    "whatif_decode",
    "click_decode",
    "yaml_mappings",
    "placement",
)
SHARED = Path(afflux.shared.core.__file__).parents[1]


def io_imports(source: str) -> list[str]:
    """Imports of ``afflux.shared.io`` or of an I/O client package in ``source``."""
    found = [f for f in impurities(source) if "imports" in f]
    for node in ast.walk(ast.parse(source)):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found += [
            f"line {node.lineno}: imports {m}"
            for m in modules
            if m == "afflux.shared.io" or m.startswith("afflux.shared.io.")
        ]
    return found


@pytest.mark.parametrize("module", CONTRACT_MODULES)
def test_contracts_import_nothing_from_the_io_edge(module: str) -> None:
    assert io_imports((SHARED / f"{module}.py").read_text()) == []


def test_every_top_level_shared_module_is_a_contract_or_lives_in_io() -> None:
    top_level = {p.stem for p in SHARED.glob("*.py")} - {"__init__"}
    assert top_level == set(CONTRACT_MODULES)
    assert (SHARED / "io" / "kafka.py").exists()


def test_the_io_check_sees_the_edge() -> None:
    assert io_imports("from afflux.shared.io.kafka import new_producer")
    assert io_imports("from afflux.shared.io import serving")
    assert not io_imports("from afflux.shared.core.terms import terms_in_force")
