"""``afflux --help``, every command's ``--help`` and ``afflux --version`` as a user reads
them: plain text, no reStructuredText markup of the docstrings they come from."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from afflux.cli import benches
from afflux.cli.main import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
# Inline markup a terminal would show verbatim: ``literal``, `interpreted`, :role:, **strong**.
MARKUP = re.compile(r"`|\*\*|:[a-z]+:`")

COMMANDS = [
    ("up",),
    ("demo",),
    ("topics",),
    ("campaigns",),
    ("schemas",),
    ("bench",),
    ("verify",),
    ("verify", "--chaos"),
    ("secrets",),
    ("ledger",),
    ("attribution",),
    *[("bench", name) for name in sorted(benches.installed())],
]


def run_afflux(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as ``./afflux`` runs it."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("afflux")), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_prints_the_installed_version() -> None:
    answered = run_afflux("--version")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip() == f"afflux {version('afflux-cli')}"


def test_top_level_help_is_plain_text_listing_every_command() -> None:
    answered = run_afflux("--help")
    assert answered.returncode == 0, answered.stderr
    assert not MARKUP.search(answered.stdout), answered.stdout
    for command in ("up", "demo", "bench", "verify", "secrets", "ledger", "attribution"):
        assert re.search(rf"^\s+{command}\s", answered.stdout, re.MULTILINE), command
    assert "--version" in answered.stdout


def test_every_benchmark_is_listed_for_help() -> None:
    assert {"clicks", "orders", "attribution", "ledger"} <= set(benches.installed())


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_help_is_plain_text_with_a_description(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: afflux {' '.join(command)}"), text
    assert not MARKUP.search(text), text
    description = text.split("\n\n")[1]
    assert not description.lstrip().startswith(("options:", "positional arguments:")), text
