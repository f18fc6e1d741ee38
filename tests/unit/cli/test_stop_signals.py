"""SIGINT and SIGTERM stop a long-running command even when SIGINT was inherited as
ignored (a background job started by a shell without job control)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from afflux.cli.stop_signals import Stopped, signals_held, stop_on_signals

pytestmark = pytest.mark.unit


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    """This process as ``afflux up &`` starts from a script: SIGINT ignored."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    term_before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        signal.signal(signal.SIGTERM, term_before)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.usefixtures("sigint_ignored")
def test_a_stop_signal_raises_stopped_even_when_sigint_was_ignored(signum: int) -> None:
    # raise_signal signals this thread: the Python handler runs as soon as it returns.
    with stop_on_signals(), pytest.raises(Stopped, match=signal.Signals(signum).name):
        signal.raise_signal(signum)


@pytest.mark.usefixtures("sigint_ignored")
def test_the_inherited_dispositions_are_back_after_the_command() -> None:
    term_before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        pass
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) == term_before


@pytest.mark.usefixtures("sigint_ignored")
def test_a_second_signal_during_the_shutdown_is_held_off() -> None:
    with stop_on_signals(), signals_held():
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
