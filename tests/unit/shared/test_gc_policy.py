"""The periodic freeze keeps long-lived state out of the collector's passes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from afflux.shared.io.gc_policy import REFREEZE_EVERY_S, THAW_EVERY_S, Refreezer

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def thawed_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_nothing_happens_before_the_period_is_up() -> None:
    clock = FakeClock()
    refreezer = Refreezer(clock)
    clock.now += REFREEZE_EVERY_S - 0.001

    assert refreezer.maybe_refreeze() is False


def test_survivors_are_frozen_once_the_period_is_up() -> None:
    clock = FakeClock()
    refreezer = Refreezer(clock)
    gc.unfreeze()
    state = [{"visitor": i} for i in range(1000)]
    clock.now += REFREEZE_EVERY_S

    assert refreezer.maybe_refreeze() is True
    assert gc.get_freeze_count() >= len(state)


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


def test_cyclic_garbage_is_collected_before_freezing() -> None:
    clock = FakeClock()
    refreezer = Refreezer(clock)
    node = Node()
    alive = weakref.ref(node)
    del node
    clock.now += REFREEZE_EVERY_S

    refreezer.maybe_refreeze()

    assert alive() is None


def test_everything_is_thawed_once_an_hour_so_old_cycles_are_reclaimed() -> None:
    clock = FakeClock()
    refreezer = Refreezer(clock)
    node = Node()
    alive = weakref.ref(node)
    clock.now += REFREEZE_EVERY_S
    refreezer.maybe_refreeze()
    del node
    gc.collect()
    assert alive() is not None  # frozen: out of the collector's reach
    clock.now += THAW_EVERY_S

    refreezer.maybe_refreeze()

    assert alive() is None
