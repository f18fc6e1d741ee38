"""Agency overrides: an agency (or parent affiliate) earns a share of its creators' pay.

Configured per program in the campaign terms (``overrides``), beside the other
per-creator settings (coupons, window overrides, survey handles): who belongs to
which agency is part of what a merchant agreed to pay, it is versioned and
effective-dated with the rest of the terms, and a replay of the topics pays the
same overrides. ``agencies`` maps a member (a creator, or an agency that itself
belongs to one) to its agency and the percent of the member's pay the agency
earns. Up to ``levels`` agencies up the chain earn, each its own share of the
*creator's* pay (an agency's override is never itself overridden). A chain that
comes back to a member is refused when the terms are validated.

The override is paid by the brand on top of the creator's commission: the
creator's own lines are unchanged. Each override line mirrors one line of the
creator component by component (accrual, reductions before approval, clawbacks,
the creator's cap cuts), each rounded on the cumulative sum, so the override
always nets to ``share x what the creator's line pays``, rounded once, down. Down,
not half up: half up paid a 1-unit line's two 50 % levels a unit each, 2 on a pay of
1, and over many small lines an agency more than its share. Rounded per line, each
override line stays a function of its creator line alone, whatever the order in
which the lines arrive or are corrected; the agency forgoes less than one minor unit
per line and level.
An agency's overrides of a period are then capped by ``cap_minor`` in (time,
line id) order, like a creator's cap.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from afflux.shared.core.money import MAX_AMOUNT_MINOR, plain_decimal

OVERRIDE_LINE = "override"
OVERRIDE_CAP = "cap:override"
MAX_LEVELS = 3
# What the agencies up one creator's chain earn together, in percent of the creator's
# pay: like one share, never more than the whole of it.
MAX_CHAIN_PERCENT = Decimal(100)


class AgencyMembership(BaseModel):
    """One member's agency and the percent of the member's pay the agency earns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agency_id: Annotated[str, Field(min_length=1, max_length=200)]
    share_percent: Annotated[
        Decimal, Field(gt=0, le=100, max_digits=9, decimal_places=4), BeforeValidator(plain_decimal)
    ]


class AgencyOverrides(BaseModel):
    """``agencies``: member (creator or agency) -> its agency and share; ``levels``: how
    many agencies up the chain earn (1 to 3); ``cap_minor``: most one agency earns in
    overrides per period (unset: no cap)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agencies: dict[str, AgencyMembership] = Field(
        default_factory=dict, description="member (creator or agency id) -> {agency_id, share}"
    )
    levels: Annotated[int, Field(ge=1, le=MAX_LEVELS)] = 1
    cap_minor: Annotated[int, Field(ge=0, le=MAX_AMOUNT_MINOR)] | None = Field(
        None, description="most one agency earns in overrides per period"
    )

    @model_validator(mode="after")
    def _no_cycle(self) -> Self:
        cycle = find_cycle(self.agencies)
        if cycle is not None:
            raise ValueError(
                "agencies: an agency chain may not come back to a member: " + " -> ".join(cycle)
            )
        for member in sorted(self.agencies):  # each may be a creator
            chain = self.chain(member)
            total = sum((share for _, _, share in chain), Decimal(0))
            if total > MAX_CHAIN_PERCENT:
                path = " -> ".join([member, *(agency for _, agency, _ in chain)])
                raise ValueError(
                    f"agencies: the shares earned on {member}'s pay ({path}, {self.levels}"
                    f" levels) sum to {total}%, more than the whole of it"
                    f" ({MAX_CHAIN_PERCENT}%)"
                )
        return self

    def chain(self, affiliate_id: str) -> tuple[tuple[int, str, Decimal], ...]:
        """(level, agency, share of the creator's pay) for each agency up from a creator,
        at most ``levels``; level 1 is the creator's own agency."""
        out: list[tuple[int, str, Decimal]] = []
        member = affiliate_id
        for level in range(1, self.levels + 1):
            membership = self.agencies.get(member)
            if membership is None:
                break
            out.append((level, membership.agency_id, membership.share_percent))
            member = membership.agency_id
        return tuple(out)


def find_cycle(agencies: Mapping[str, AgencyMembership]) -> list[str] | None:
    """The first member chain that comes back to itself (``[a, b, a]``), or None;
    members taken in sorted order so the message is the same on every run."""
    done: set[str] = set()
    for start in sorted(agencies):
        path: list[str] = []
        seen: set[str] = set()
        member: str | None = start
        while member is not None and member not in done:
            if member in seen:
                return [*path[path.index(member) :], member]
            seen.add(member)
            path.append(member)
            nxt = agencies.get(member)
            member = nxt.agency_id if nxt is not None else None
        done |= seen
    return None


@dataclass(frozen=True, slots=True)
class MirroredPart:
    """One component of an override line: the name and date of the creator line's
    component it mirrors, and what the override's part of it must sum to."""

    name: str
    approve_at: int
    amount_minor: int


def share_of(amount: int, percent: Decimal) -> int:
    """``percent`` % of ``amount`` rounded down (toward minus infinity), exact: never
    more than the share, so an agency's overrides over any number of lines, and the
    levels of a chain together, never exceed their percent of what the lines pay."""
    exact = Fraction(amount) * Fraction(percent) / 100
    return exact.numerator // exact.denominator


def _order(name: str) -> int:
    """Within one date: the accrual first, then what reduces it."""
    return 0 if name == "accrual" else 1


def mirror(components: Mapping[tuple[str, int], int], percent: Decimal) -> tuple[MirroredPart, ...]:
    """The override's share of each of a creator line's components (name, approve_at) ->
    amount, each the difference of the share of the running sums, so the parts add up
    to ``share_of(total)`` and a change to one component moves as few parts as it can."""
    out: list[MirroredPart] = []
    running = 0
    taken = 0
    for (name, at), amount in sorted(
        components.items(), key=lambda kv: (kv[0][1], _order(kv[0][0]), kv[0][0])
    ):
        if not amount:
            continue
        running += amount
        now = share_of(running, percent)
        if now != taken:
            out.append(MirroredPart(name, at, now - taken))
        taken = now
    return tuple(out)
