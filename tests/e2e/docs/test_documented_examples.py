"""Every shell, Python and JavaScript example in README.md and docs/ runs against a stack.

Integrators copy these blocks as they are, so each fenced ```bash, ```sh, ```python
or ```js block is run, in document order, against one running stack (examples/
campaigns.yaml, development merchant secrets), with the stack's addresses in the
variables the examples default from: ``ORDERS_URL``, ``CLICKS_URL``, ``PAYOUTS_URL``,
``AFFLUX_KAFKA_BOOTSTRAP`` and the admin ``TOKEN``. A block must exit 0 (curl with
``--fail-with-body``, the programs on a refusal); a block that must not run says why
in an HTML comment on the line before its fence: ``<!-- not run: needs docker -->``.
A failing block is retried for a while, since some answers follow the topics (the
order outcome is 404 until the order is on the index); the examples are idempotent.
Some blocks must also print what the text says they print (``EXPECTED``).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from afflux.cli.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).parents[3]
ADMIN_TOKEN = "documented-examples-admin-token"
TERMS_YAML = (ROOT / "examples" / "campaigns.yaml").read_text()

LANGUAGES = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
LANGUAGES |= {"js": "js", "javascript": "js", "mjs": "js"}
NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>[^`\s]*)\s*$")
ES_MODULE = re.compile(r"^\s*(import\s|export\s)", re.M)
RETRY_FOR_S = 60.0
BLOCK_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Block:
    document: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    language: str  # bash, python or js
    code: str
    not_run: str | None  # the reason, when marked

    @property
    def name(self) -> str:
        return f"{self.document}:{self.line}:{self.language}"


@dataclass(frozen=True)
class Expect:
    document: str
    containing: str  # picks exactly one block of the document
    prints: str  # a regular expression its output must match
    stdlib_only: bool = False  # run with no site-packages: nothing from afflux importable


EXPECTED = [
    # the click sends a browser's user agent and is redirected; the order for its visitor
    # ... and is the creator's: dated to the whole second, it must not land before its click
    Expect(
        "README.md",
        '"$clicks/c/$code"',
        r'(?s)^HTTP/1\.1 302.*"status":"accepted"'
        r'.*"status":"attributed".*"affiliate_id":"creator-01"',
    ),
    Expect("docs/orders.md", '"$body" | openssl dgst', r'"status":"(accepted|duplicate)"'),
    Expect("docs/orders.md", '"$refund" | openssl dgst', r'"status":"(accepted|duplicate)"'),
    Expect(
        "docs/orders.md",
        "data=body,",
        r'^20[02] .*"status":"(accepted|duplicate)"',
        stdlib_only=True,
    ),
    Expect("docs/orders.md", 'method: "POST"', r'^20[02] .*"status":"(accepted|duplicate)"'),
    # the order outcomes, once the index holds the orders the blocks above sent
    Expect("docs/orders.md", "GET /v1/orders/$order", r'"order_id":"o-1001","outcomes"'),
    Expect("docs/orders.md", ".GET ${path}", r'^200 .*"order_id":"o-1003","outcomes"'),
    Expect(
        "docs/orders.md",
        '.GET {path}"',
        r'^200 .*"order_id":"o-1002","outcomes"',
        stdlib_only=True,
    ),
    Expect("docs/events/README.md", "from confluent_kafka import", r"^creator-01 coupon conv_"),
]


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks_of(path: Path) -> list[Block]:
    """The runnable-language blocks of one markdown file, with their not-run marks."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent = opening["indent"]
        end = next(
            (i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), len(lines)
        )
        language = LANGUAGES.get(opening["info"].lower())
        if language:
            body = [line.removeprefix(indent) for line in lines[index + 1 : end]]
            previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            mark = NOT_RUN.match(previous)
            found.append(
                Block(
                    str(path.relative_to(ROOT)),
                    index + 1,
                    language,
                    "\n".join(body) + "\n",
                    mark["reason"] if mark else None,
                )
            )
        index = end + 1
    return found


BLOCKS = [block for path in documents() for block in blocks_of(path)]
RUN = [block for block in BLOCKS if block.not_run is None]


def expectation(block: Block) -> Expect | None:
    return next(
        (e for e in EXPECTED if e.document == block.document and e.containing in block.code),
        None,
    )


def test_every_not_run_mark_gives_a_reason_and_stands_before_an_example() -> None:
    marked = {(b.document, b.line) for b in BLOCKS if b.not_run is not None}
    for path in documents():
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            mark = NOT_RUN.match(line)
            if not mark:
                continue
            assert mark["reason"], f"{path.name}:{number}: say why the example is not run"
            following = next(i for i in range(number, len(lines)) if lines[i].strip())
            where = (str(path.relative_to(ROOT)), following + 1)
            assert where in marked, f"{path.name}:{number}: the mark is not before an example"
    assert any(b.not_run is None for b in BLOCKS), "no example found to run"


def test_each_expectation_names_exactly_one_example() -> None:
    for expect in EXPECTED:
        matching = [b for b in RUN if b.document == expect.document and expect.containing in b.code]
        assert len(matching) == 1, f"{expect.document}: one run example with {expect.containing!r}"


def test_the_standard_library_example_imports_nothing_else() -> None:
    for block in RUN:
        expect = expectation(block)
        if expect is None or not expect.stdlib_only:
            continue
        nodes = list(ast.walk(ast.parse(block.code)))
        modules = {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module or "" for n in nodes if isinstance(n, ast.ImportFrom)}
        outside = {m for m in modules if m.partition(".")[0] not in sys.stdlib_module_names}
        assert not outside, f"{block.name} imports {outside}"


def command(block: Block, work: Path) -> list[str]:
    if block.language == "bash":
        return ["bash", "-euo", "pipefail", "-c", block.code]
    if block.language == "python":
        expect = expectation(block)
        isolated = ["-I", "-S"] if expect and expect.stdlib_only else []
        return [sys.executable, *isolated, "-c", block.code]
    node = shutil.which("node")
    assert node, "node (18 or later) is needed to run the JavaScript examples"
    # An example with import statements is an ES module, one with require() CommonJS.
    module = ".mjs" if ES_MODULE.search(block.code) else ".cjs"
    script = work / f"line-{block.line}{module}"
    script.write_text(block.code)
    return [node, str(script)]


@pytest.fixture(scope="module")
def example_env(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path_factory.mktemp("home")),
        "ORDERS_URL": stack.url("orders"),
        "CLICKS_URL": stack.url("clicks"),
        "PAYOUTS_URL": stack.url("payouts"),
        "AFFLUX_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "TOKEN": ADMIN_TOKEN,
    }


@pytest.mark.parametrize("block", RUN, ids=lambda b: b.name)
def test_the_documented_example_runs(
    block: Block, example_env: dict[str, str], tmp_path: Path
) -> None:
    expect = expectation(block)
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        run = subprocess.run(
            command(block, tmp_path),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
            env=example_env,
            cwd=tmp_path,
        )
        printed = run.returncode == 0 and (
            expect is None or re.search(expect.prints, run.stdout, re.M) is not None
        )
        if printed or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert run.returncode == 0, f"{block.name} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    if expect is not None:
        assert re.search(expect.prints, run.stdout, re.M), f"{block.name} printed:\n{run.stdout}"
