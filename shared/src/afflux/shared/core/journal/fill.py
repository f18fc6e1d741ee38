"""Cap fill in event-time order, kept up to date change by change (DESIGN §4, caps).

A cap scope (one creator's lines of a period, or all lines of a campaign-period)
pays its lines in (time, line id) order until the cap is used up: the line that
crosses it gets what is left, every later line nothing. With ``S`` the running
sum of the lines' amounts, a line pays ``min(cap, S_i) - min(cap, S_{i-1})``.

Instead of walking the period, the scope keeps ``k``, how many leading lines are
paid in full, and ``s``, their sum (``s <= cap``, and the line at ``k``, if any,
does not fit whole). A change moves ``k`` only as far as the money it moves, so
its cost is the number of lines whose pay changes, plus a binary search. Every line
whose pay may have changed is added to ``touched``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

Key = tuple[int, str]  # (time, line id): the order lines are paid in


class CapScope:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.keys: list[Key] = []
        self.amount: dict[str, int] = {}
        self.key_of: dict[str, Key] = {}
        self.k = 0
        self.s = 0
        self.touched: set[str] = set()

    @classmethod
    def build(cls, cap: int, entries: Iterable[tuple[Key, int]]) -> CapScope:
        """A scope holding ``entries`` (key, amount) at once, without a walk per entry."""
        scope = cls(cap)
        for key, amount in sorted(entries):
            if amount > 0:
                scope.keys.append(key)
                scope.amount[key[1]] = amount
                scope.key_of[key[1]] = key
        scope._fill_forward()
        return scope

    def set(self, line_id: str, key: Key | None, amount: int) -> None:
        """Put ``line_id`` at ``key`` with ``amount`` (0 or no key: take it out)."""
        self._touch_crossing()
        old = self.key_of.get(line_id)
        if old is not None:
            if old == key and self.amount[line_id] == amount:
                return
            self._remove(line_id, old)
        if key is not None and amount > 0:
            self._insert(line_id, key, amount)
        self.touched.add(line_id)
        self._fix()

    def paid(self, line_id: str) -> int:
        key = self.key_of.get(line_id)
        if key is None:
            return 0
        index = bisect_left(self.keys, key)
        amount = self.amount[line_id]
        if index < self.k:
            return amount
        if index == self.k:
            return min(amount, self.cap - self.s)
        return 0

    def used(self) -> int:
        """What the scope pays in all: ``min(cap, total)``."""
        if self.k < len(self.keys):
            return self.cap
        return self.s

    def _insert(self, line_id: str, key: Key, amount: int) -> None:
        index = bisect_left(self.keys, key)
        self.keys.insert(index, key)
        self.amount[line_id] = amount
        self.key_of[line_id] = key
        if index < self.k:
            self.k += 1
            self.s += amount

    def _remove(self, line_id: str, key: Key) -> None:
        index = bisect_left(self.keys, key)
        amount = self.amount.pop(line_id)
        del self.key_of[line_id]
        del self.keys[index]
        if index < self.k:
            self.k -= 1
            self.s -= amount

    def _fix(self) -> None:
        while self.s > self.cap:
            self.k -= 1
            line = self.keys[self.k][1]
            self.s -= self.amount[line]
            self.touched.add(line)
        self._fill_forward()
        self._touch_crossing()

    def _fill_forward(self) -> None:
        while self.k < len(self.keys):
            line = self.keys[self.k][1]
            if self.s + self.amount[line] > self.cap:
                break
            self.s += self.amount[line]
            self.k += 1
            self.touched.add(line)

    def _touch_crossing(self) -> None:
        if self.k < len(self.keys):
            self.touched.add(self.keys[self.k][1])
