"""Whose turn a what-if replay is: while another principal waits, one whose replay just
ended waits as long as it took (at least the minimum gap); alone, it goes again at once;
the memory of turns stays bounded."""

from __future__ import annotations

import pytest

from afflux.payouts.whatif_turns import Turns

pytestmark = pytest.mark.unit


def _after_a_replay(took_s: float, waiting: str | None = "merchant:glow") -> Turns:
    turns = Turns(min_gap_s=1.0, waiting_s=30.0)
    if waiting:
        turns.refused_busy(waiting, 100.0)
    turns.ended("merchant:acme", started=100.0, ended=100.0 + took_s)
    return turns


@pytest.mark.parametrize(
    ("took_s", "asked_after_s", "wait_s"),
    [
        (10.0, 0.0, 10.0),  # as long as it took
        (10.0, 9.5, 0.5),
        (10.0, 10.0, 0.0),  # its turn again exactly then
        (0.2, 0.0, 1.0),  # a quick replay still leaves the minimum gap
        (0.2, 1.0, 0.0),
    ],
)
def test_while_another_waits_a_principal_waits_as_long_as_its_last_replay_took(
    took_s: float, asked_after_s: float, wait_s: float
) -> None:
    turns = _after_a_replay(took_s)
    assert turns.wait_s("merchant:acme", 100.0 + took_s + asked_after_s) == pytest.approx(wait_s)


def test_alone_a_principal_goes_again_at_once() -> None:
    assert _after_a_replay(10.0, waiting=None).wait_s("merchant:acme", 110.0) == 0.0


def test_a_waiter_that_got_its_turn_or_gave_up_long_ago_waits_no_more() -> None:
    started = _after_a_replay(10.0)
    started.started("merchant:glow")
    assert started.wait_s("merchant:acme", 110.0) == 0.0
    # Refused at 100, not seen for 30 s: nobody waits.
    assert _after_a_replay(10.0).wait_s("merchant:acme", 130.5) == 0.0


def test_a_principal_never_waits_for_its_own_refusal() -> None:
    turns = _after_a_replay(10.0, waiting="merchant:acme")
    assert turns.wait_s("merchant:acme", 110.0) == 0.0


def test_another_principal_never_waits_for_someone_elses_turn() -> None:
    turns = _after_a_replay(30.0)
    assert turns.wait_s("merchant:glow", 130.0) == 0.0
    assert turns.wait_s("admin:", 130.0) == 0.0


def test_turns_remembered_stay_bounded_and_the_latest_are_kept() -> None:
    turns = Turns(min_gap_s=100.0, max_tracked=3)
    turns.refused_busy("merchant:waiting", 10.0)
    for n in range(10):
        turns.ended(f"merchant:{n}", started=float(n), ended=float(n))
    assert sum(turns.wait_s(f"merchant:{n}", 10.0) > 0 for n in range(10)) == 3
    assert turns.wait_s("merchant:9", 10.0) > 0
    for n in range(10):
        turns.refused_busy(f"merchant:r{n}", float(n))
    assert turns.wait_s("merchant:9", 10.0) > 0  # the latest waiters are kept
