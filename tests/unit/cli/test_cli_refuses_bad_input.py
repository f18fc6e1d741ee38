"""Wrong input to the CLI is exit 2 with one line on stderr naming the option and why,
before anything starts: ``verify --visitors -5`` started a whole stack and reported over
0 creators, ``demo --creators 0`` ended in a traceback, a Redis URL without a scheme was
a traceback, and an empty merchant id was printed a secret."""

from __future__ import annotations

import pytest

from afflux.cli.main import main

pytestmark = pytest.mark.unit


def _exit_code(argv: list[str]) -> int | str | None:
    """What ``afflux`` exits with: argparse raises SystemExit, a command returns its code."""
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["verify", "--visitors", "-5"], "argument --visitors: -5 visitors: give 1 or more"),
        (["verify", "--creators", "0"], "argument --creators: 0 creators: give 1 or more"),
        (["demo", "--creators", "0"], "argument --creators: 0 creators: give 1 or more"),
        (["demo", "--visitors", "x"], "argument --visitors: 'x' is not a whole number"),
        (["up", "--partitions", "0"], "0 partitions: give 1 or more"),
        (["secrets", "new", "--merchant", ""], "a merchant id cannot be empty"),
        (["ledger", "rebuild", "--redis-url", "notaurl"], "--redis-url: Redis URL must"),
        (["ledger", "compact", "--redis-url", "notaurl"], "--redis-url: Redis URL must"),
    ],
)
def test_wrong_input_is_exit_2_naming_the_option(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    assert _exit_code(argv) == 2
    printed = capsys.readouterr()
    assert says in printed.err
    assert printed.out == ""
