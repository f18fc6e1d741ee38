"""Pay per engagement in campaign terms: the ``engagement`` element of a commission plan.

A creator's content is paid on its interactions as its latest platform snapshot counts
them (``afflux.shared.core.engagement`` prices it; docs/payouts.md, "Pay per
engagement"). Interactions are likes, comments, shares and saves; views are valued per
1,000 beside them but are no interaction (they count toward neither the minimum, the
tiers nor the engagement rate).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from afflux.shared.core.money import MAX_AMOUNT_MINOR, plain_decimal

MinimumScope = Literal["content", "creator_period"]
# Minor units, fractions allowed (0.5: half a cent per like).
InteractionValue = Annotated[
    Decimal, Field(ge=0, le=10**9, max_digits=16, decimal_places=4), BeforeValidator(plain_decimal)
]
Ratio = Annotated[
    Decimal, Field(gt=0, le=10**6, max_digits=12, decimal_places=4), BeforeValidator(plain_decimal)
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EngagementValues(_Frozen):
    """What one interaction of each kind is worth, in minor units of the campaign's
    currency (fractions allowed; a content's total is rounded down to whole units)."""

    like_minor: InteractionValue = Decimal(0)
    comment_minor: InteractionValue = Decimal(0)
    share_minor: InteractionValue = Decimal(0)
    save_minor: InteractionValue = Decimal(0)
    per_1000_views_minor: InteractionValue = Decimal(0)


class EngagementTier(_Frozen):
    """A content with at least ``from_interactions`` interactions has all of them (and
    its views) valued at ``values`` instead of the base values."""

    from_interactions: Annotated[int, Field(ge=1)]
    values: EngagementValues


class EngagementReview(_Frozen):
    """A simple fake-engagement signal: a content is held for review (paid nothing until
    released with ``POST /v1/content/{platform}/{content_id}/release``) once a snapshot
    shows interactions / followers above ``max_rate``, or interactions above
    ``max_jump`` times the previous snapshot's (judged only when that one had at least
    ``jump_min_interactions``). A hold stays until released; a release is for good."""

    max_rate: Ratio | None = None
    max_jump: Ratio | None = None
    jump_min_interactions: Annotated[int, Field(ge=0)] = 100

    @model_validator(mode="after")
    def _some_signal(self) -> Self:
        if self.max_rate is None and self.max_jump is None:
            raise ValueError("review: give max_rate, max_jump or both")
        return self


class EngagementCommission(_Frozen):
    """Pay per engagement: ``values`` per interaction, nothing until ``minimum_interactions``
    is reached (by the content, or by all the creator's content of the period), ``tiers``
    by the content's interactions, at most ``content_cap_minor`` per content (the plan's
    creator cap and campaign budget apply on top), and an optional ``review``."""

    values: EngagementValues
    minimum_interactions: Annotated[int, Field(ge=0)] = 0
    minimum_scope: MinimumScope = "content"
    tiers: tuple[EngagementTier, ...] = ()
    content_cap_minor: Annotated[int, Field(ge=0, le=MAX_AMOUNT_MINOR)] | None = None
    review: EngagementReview | None = None

    @field_validator("tiers")
    @classmethod
    def _tiers_ascending(cls, tiers: tuple[EngagementTier, ...]) -> tuple[EngagementTier, ...]:
        starts = [tier.from_interactions for tier in tiers]
        if starts != sorted(set(starts)):
            raise ValueError("tiers must have strictly ascending from_interactions")
        return tiers
