"""What one creator may hold in one campaign-period: every amount afflux carries is at
most ``MAX_AMOUNT_MINOR`` (10^15), and so are a creator's total and reversed sums in a
period, and what one write adds to them.

Each amount alone is bounded where it enters, but sums are not: a plan paying a fixed
10^15 per sale reaches 10^18 after a thousand sales. Beyond 2^53 a sum is no longer
exact as a double, which is how the running sums reach the creator's balance (a Lua
script), and beyond 10^17 Redis refuses the number as written there: the write that
failed would stay in its period's outbox and stop every later one. So the ledger
refuses (dead-letters) the item that would take a creator past the bound, before
anything of it is written; what the creator already holds stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from afflux.shared.core.journal.records import Posting
from afflux.shared.core.money import MAX_AMOUNT_MINOR


class CreatorSumOutOfRange(ValueError):
    """A step would take a creator's sums in a campaign-period beyond ``MAX_AMOUNT_MINOR``;
    ``creators`` names every creator it would (a creator's other items may still fit)."""

    def __init__(self, reason: str, creators: frozenset[str] = frozenset()) -> None:
        super().__init__(reason)
        self.creators = creators


def is_reversal(component: str) -> bool:
    return component == "refund" or component.startswith("clawback")


def out_of_range(
    postings: Iterable[Posting], stored_sums: Mapping[str, int], where: str
) -> str | None:
    """Why the step's ``postings`` may not be written beside the period's ``stored_sums``
    (``total|<creator>``, ``reversed|<creator>``), or None when they may: every creator's
    total and reversed sums after them, and what they add per creator, per approval time
    and in all, stay within ±``MAX_AMOUNT_MINOR``."""
    refusals = creators_out_of_range(postings, stored_sums, where)
    return refusals[0][1] if refusals else None


def creators_out_of_range(
    postings: Iterable[Posting], stored_sums: Mapping[str, int], where: str
) -> list[tuple[str, str]]:
    """Each creator ``postings`` would take out of range (``out_of_range``), with why;
    the first reason per creator, creators in name order, then approval times."""
    added: dict[str, list[int]] = {}
    due: dict[tuple[str, int], int] = {}
    for p in postings:
        sums = added.get(p.affiliate_id)
        if sums is None:
            sums = added[p.affiliate_id] = [0, 0]
        sums[0] += p.amount_minor
        if is_reversal(p.component):
            sums[1] -= p.amount_minor
        slot = (p.affiliate_id, p.approve_at)
        due[slot] = due.get(slot, 0) + p.amount_minor
    found: dict[str, str] = {}
    for creator, (total, reversed_) in sorted(added.items()):
        after = (
            ("total", stored_sums.get(f"total|{creator}", 0) + total),
            ("reversed", stored_sums.get(f"reversed|{creator}", 0) + reversed_),
        )
        for name, value in (("added", total), ("reversal added", reversed_), *after):
            if abs(value) > MAX_AMOUNT_MINOR:
                found[creator] = (
                    f"creator {creator!r} in {where}: its {name} would be {value}, beyond "
                    f"{MAX_AMOUNT_MINOR} (the largest amount afflux carries)"
                )
                break
    later: dict[str, str] = {}
    for (creator, at), amount in sorted(due.items()):
        if abs(amount) > MAX_AMOUNT_MINOR and creator not in found and creator not in later:
            later[creator] = (
                f"creator {creator!r} in {where}: its amount approved at {at} would grow by "
                f"{amount}, beyond {MAX_AMOUNT_MINOR} (the largest amount afflux carries)"
            )
    return [*found.items(), *later.items()]
