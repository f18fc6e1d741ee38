"""Each workspace member imports only what its own pyproject.toml declares.

A service wheel installed alone must import: an ``afflux.*`` import of a package
its member does not depend on (directly or through another member) works in the
workspace's one venv and fails in production. Every module is read with ``ast``,
never imported, so an import inside a function is found too. The graph itself is
drawn in docs/architecture.md.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("afflux-clicks", "afflux-orders", "afflux-attribution", "afflux-payouts")


@dataclass(frozen=True)
class Member:
    name: str  # the distribution, e.g. afflux-payouts
    package: str  # its import package under afflux, e.g. payouts
    source: Path  # src/afflux/<package>
    depends_on: frozenset[str]  # the afflux-* distributions its pyproject.toml declares


def distribution(requirement: str) -> str:
    """``uvicorn[standard]>=0.32`` -> ``uvicorn``."""
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0]


def members() -> dict[str, Member]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found: dict[str, Member] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in sorted(ROOT.glob(pattern)):
            project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
            packages = [p for p in (folder / "src" / "afflux").iterdir() if p.is_dir()]
            packages = [p for p in packages if p.name != "__pycache__"]
            assert len(packages) == 1, f"{folder}: one package under src/afflux, not {packages}"
            declared = {distribution(d) for d in project.get("dependencies", [])}
            found[project["name"]] = Member(
                name=project["name"],
                package=packages[0].name,
                source=packages[0],
                depends_on=frozenset(d for d in declared if d.startswith("afflux-")),
            )
    return found


def reachable(name: str, graph: dict[str, Member]) -> set[str]:
    """The member and every member it depends on, directly or not."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(graph[current].depends_on)
    return seen


def afflux_imports(source: str) -> Iterator[tuple[int, str]]:
    """(line, package under afflux) for each ``afflux.X`` import and each
    ``importlib.import_module("afflux.X...")`` with a literal name."""
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for name in names:
            parts = name.split(".")
            if parts[0] == "afflux" and len(parts) > 1:
                yield node.lineno, parts[1]


GRAPH = members()


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_a_member_imports_only_the_members_it_declares(name: str) -> None:
    allowed = {GRAPH[m].package for m in reachable(name, GRAPH)}
    undeclared = [
        f"{path.relative_to(ROOT)}:{line} imports afflux.{package}"
        for path in sorted(GRAPH[name].source.rglob("*.py"))
        for line, package in afflux_imports(path.read_text())
        if package not in allowed
    ]
    assert undeclared == [], f"{name} declares only {sorted(allowed)}"


@pytest.mark.parametrize("name", SERVICES)
def test_no_service_depends_on_the_cli_the_benchmarks_or_the_oracle(name: str) -> None:
    # The service wheels carry production code only.
    assert reachable(name, GRAPH) == {name, "afflux-shared"}


def test_the_graph_has_no_cycle() -> None:
    for name, member in GRAPH.items():
        for dependency in member.depends_on:
            assert name not in reachable(dependency, GRAPH), f"{name} <-> {dependency}"
