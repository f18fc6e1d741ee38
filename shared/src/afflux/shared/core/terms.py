"""Campaign terms: a program's rules, effective-dated and versioned.

Frozen pydantic models so that the same definition validates YAML files, the
admin API and the ``campaigns`` topic, and exports a JSON Schema. What only
publishing refuses (a coupon code or survey handle given twice, an allowed domain
that is not a site) is in ``afflux.shared.core.terms_checks``, applied by
``afflux.shared.campaign_file.CampaignEntry``: these models also decode the versions
already on the topic, which must still load on a replay.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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

from afflux.shared.core.clock import MS_PER_DAY, MS_PER_SECOND, from_ms

# Defined beside the hosts it is shared with (review.py's coupon sites, which this module
# imports), and exported from here, where campaign terms' callers look for it.
from afflux.shared.core.domains import normalize_domain as normalize_domain
from afflux.shared.core.engagement_terms import EngagementCommission
from afflux.shared.core.money import (
    DEFAULT_MAX_ORDER_MINOR,
    MAX_AMOUNT_MINOR,
    check_currency,
    plain_decimal,
)
from afflux.shared.core.overrides import AgencyOverrides
from afflux.shared.core.review import ReviewTerms
from afflux.shared.core.visible_text import new_id_problem

AttributionModel = Literal["last_click", "first_click"]
PrecedenceStep = Literal["click_id", "coupon", "cookie", "livestream"]
Period = Literal["month", "week"]
NonNegativeMinor = Annotated[int, Field(ge=0, le=MAX_AMOUNT_MINOR)]
Percent = Annotated[
    Decimal,
    Field(ge=0, le=100, max_digits=9, decimal_places=4),
    BeforeValidator(plain_decimal),
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rate(_Frozen):
    """Either a percentage of the order amount or a fixed amount in minor units."""

    percent: Percent | None = None
    fixed_minor: NonNegativeMinor | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.percent is None) == (self.fixed_minor is None):
            raise ValueError("give exactly one of percent or fixed_minor")
        return self


class ProductRates(_Frozen):
    """Per-product rates of a sale's items: a sku's rate beats its category's, which beats
    the sale's own rate (base, tier or new-customer); excluded items earn nothing."""

    skus: dict[str, Percent] = Field(default_factory=dict, description="sku -> percent")
    categories: dict[str, Percent] = Field(default_factory=dict, description="category -> percent")
    excluded_skus: tuple[str, ...] = ()
    excluded_categories: tuple[str, ...] = Field(
        (), description="e.g. gift_card, shipping, tax: items of these categories earn nothing"
    )


class SaleCommission(_Frozen):
    """Pay per sale; ``new_customer`` replaces ``rate`` for first-time customers."""

    rate: Rate
    new_customer: Rate | None = None
    products: ProductRates | None = Field(
        None, description="per-product rates and exclusions over the order's items"
    )


class ClickCommission(_Frozen):
    """Pay per valid unique click, up to ``paid_click_cap`` clicks per creator per period."""

    per_click_minor: NonNegativeMinor
    paid_click_cap: Annotated[int, Field(ge=0)] | None = None


class VolumeTier(_Frozen):
    """From the ``from_sales``-th net sale of the period on, sales are paid at ``rate``."""

    from_sales: Annotated[int, Field(ge=1)]
    rate: Rate


class Milestone(_Frozen):
    """A bonus paid once per period when net sales reach ``at_sales``."""

    at_sales: Annotated[int, Field(ge=1)]
    bonus_minor: NonNegativeMinor


class RecurringCommission(_Frozen):
    """Pay on a subscription's renewals to the creator who won its first order: for the
    first ``max_renewals`` renewals, or those within ``max_months`` of the first order."""

    rate: Rate
    max_renewals: Annotated[int, Field(ge=1, le=1200)] | None = None
    max_months: Annotated[int, Field(ge=1, le=1200)] | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> Self:
        if (self.max_renewals is None) == (self.max_months is None):
            raise ValueError("give exactly one of max_renewals or max_months")
        return self


class CommissionPlan(_Frozen):
    """Any combination of the plan elements of DESIGN §4."""

    period: Period = "month"
    sale: SaleCommission | None = None
    lead_minor: NonNegativeMinor | None = None
    actions_minor: dict[str, NonNegativeMinor] = Field(default_factory=dict)
    click: ClickCommission | None = None
    base_fee_minor: NonNegativeMinor | None = None
    tiers: tuple[VolumeTier, ...] = ()
    milestones: tuple[Milestone, ...] = ()
    creator_cap_minor: NonNegativeMinor | None = None
    campaign_budget_minor: NonNegativeMinor | None = None
    recurring: RecurringCommission | None = Field(
        None, description="pay on subscription renewals (docs/payouts.md, Recurring commissions)"
    )
    engagement: EngagementCommission | None = Field(
        None, description="pay per engagement on creators' content (docs/payouts.md)"
    )

    @field_validator("tiers")
    @classmethod
    def _tiers_ascending(cls, tiers: tuple[VolumeTier, ...]) -> tuple[VolumeTier, ...]:
        starts = [tier.from_sales for tier in tiers]
        if starts != sorted(set(starts)):
            raise ValueError("tiers must have strictly ascending from_sales")
        return tiers

    @field_validator("milestones")
    @classmethod
    def _milestones_ascending(cls, ms: tuple[Milestone, ...]) -> tuple[Milestone, ...]:
        at = [m.at_sales for m in ms]
        if at != sorted(set(at)):
            raise ValueError("milestones must have strictly ascending at_sales")
        return ms


class EmvValues(_Frozen):
    """Earned media value: what a content's reach would have cost as ads, per unit.

    Values in minor units of the campaign's currency; impressions and views per 1,000
    (a CPM), each interaction kind per interaction. A KPI only: nothing is paid on it
    (afflux.shared.core.content_kpis.emv_minor; docs/payouts.md, KPIs)."""

    per_impression_minor_per_1000: NonNegativeMinor = 0
    per_view_minor_per_1000: NonNegativeMinor = 0
    per_like_minor: NonNegativeMinor = 0
    per_comment_minor: NonNegativeMinor = 0
    per_share_minor: NonNegativeMinor = 0
    per_save_minor: NonNegativeMinor = 0


LiveOverlap = Literal["latest_started", "earliest_started"]
SurveyMode = Literal["attribute", "report", "reduced_rate"]


class LivestreamTerms(_Frozen):
    """How live streams claim orders (the ``livestream`` precedence step)."""

    tail_minutes: Annotated[int, Field(ge=0, le=1440)] = Field(
        30, description="an order up to this long after a stream's end still counts"
    )
    overlap: LiveOverlap = Field(
        "latest_started",
        description="two streams of the campaign both claim an order: the one started "
        "latest (or earliest) wins; ties by platform:content_id",
    )

    @property
    def tail_ms(self) -> int:
        return self.tail_minutes * 60 * MS_PER_SECOND


class SurveyTerms(_Frozen):
    """What a post-purchase survey answer naming a creator does to an order no
    precedence step claims: ``attribute`` it (rule ``survey``), only ``report`` the
    answer, or attribute it paid at ``reduced_rate_percent`` of the usual gross."""

    mode: SurveyMode = "report"
    reduced_rate_percent: Percent | None = None
    handles: dict[str, str] = Field(
        default_factory=dict,
        description="creator handle (case-insensitive, leading @ ignored) -> affiliate_id",
    )

    @field_validator("handles")
    @classmethod
    def _handles(cls, handles: dict[str, str]) -> dict[str, str]:
        return {normalize_handle(h): affiliate for h, affiliate in handles.items()}

    @model_validator(mode="after")
    def _rate_with_mode(self) -> Self:
        if (self.mode == "reduced_rate") != (self.reduced_rate_percent is not None):
            raise ValueError("reduced_rate_percent: required with mode reduced_rate, only then")
        return self

    @property
    def attributes(self) -> bool:
        return self.mode != "report"

    def handle_owner(self, handle: str | None) -> str | None:
        return self.handles.get(normalize_handle(handle)) if handle else None


def normalize_handle(handle: str) -> str:
    """How handles are compared: trimmed, without a leading @, case-insensitive."""
    return handle.strip().lstrip("@").casefold()


def normalize_coupon(code: str) -> str:
    """How coupon codes are compared: trimmed, case-insensitive (upper-cased, so codes
    are stored and shown as brands usually print them). The one rule for a campaign's
    codes and an order's ``coupon_code`` alike, and for refusing terms that give one
    code twice (afflux.shared.core.terms_checks)."""
    return code.strip().upper()


class CampaignTerms(_Frozen):
    """The rules of one program, as in force from a version's ``effective_from``."""

    campaign_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: str = ""
    merchant_id: Annotated[str, Field(min_length=1, max_length=64)]
    currency: str
    allowed_domains: tuple[str, ...] = ()
    cookie_window_days: Annotated[int, Field(ge=0, le=365)] = 30
    window_overrides_days: dict[str, Annotated[int, Field(ge=0, le=365)]] = Field(
        default_factory=dict, description="affiliate_id -> cookie window in days"
    )
    model: AttributionModel = "last_click"
    precedence: tuple[PrecedenceStep, ...] = ("click_id", "coupon", "cookie")
    coupons: dict[str, str] = Field(
        default_factory=dict, description="coupon code (case-insensitive) -> affiliate_id"
    )
    grace_seconds: Annotated[int, Field(ge=0, le=86_400)] = 60
    ip_duplicate_window_s: Annotated[int, Field(ge=0, le=604_800)] | None = Field(
        None,
        description="a click from the same IP hash and user agent (browser family and major "
        "version) on a creator's links to the campaign within this many seconds of a counted "
        "one is flagged ip_duplicate, and so is one beyond ip_agents_per_window counted clicks "
        "of its IP hash on the creator's links in this window; unset: the clicks service's "
        "AFFLUX_CLICKS_IP_DUPLICATE_WINDOW_S; 0: never",
    )
    ip_agents_per_window: Annotated[int, Field(ge=0, le=1_000)] | None = Field(
        None,
        description="counted clicks from one IP hash on one creator's links within the IP "
        "duplicate window, whatever their user agents; more are flagged ip_duplicate; unset: "
        "the clicks service's AFFLUX_CLICKS_IP_AGENTS_PER_WINDOW (4); 0: no bound",
    )
    lead_confirmation_required: bool = False
    lock_days: Annotated[int, Field(ge=0, le=365)] = 30
    min_payout_minor: NonNegativeMinor = 0
    max_order_minor: Annotated[int, Field(ge=1, le=MAX_AMOUNT_MINOR)] = Field(
        DEFAULT_MAX_ORDER_MINOR,
        description="the largest order or refund amount accepted, in minor units; "
        "larger ones are refused (HTTP 422) or dead-lettered",
    )
    plan: CommissionPlan = Field(default_factory=CommissionPlan)
    livestream: LivestreamTerms = Field(
        default_factory=LivestreamTerms,
        description="used when precedence lists livestream",
    )
    survey: SurveyTerms | None = Field(
        None, description="post-purchase survey answers; unset: only recorded and reported"
    )
    overrides: AgencyOverrides | None = Field(
        None, description="agency overrides on creators' pay (docs/payouts.md, Agency overrides)"
    )
    review: ReviewTerms | None = Field(
        None, description="risk signals and which hold a conversion (docs/payouts.md, Review queue)"
    )
    emv: EmvValues | None = Field(
        None, description="earned media value per impression and interaction; unset: no EMV"
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, code: str) -> str:
        return check_currency(code)

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalize_domain(d) for d in domains)

    @field_validator("coupons")
    @classmethod
    def _coupons(cls, coupons: dict[str, str]) -> dict[str, str]:
        return {normalize_coupon(code): affiliate for code, affiliate in coupons.items()}

    @field_validator("precedence")
    @classmethod
    def _precedence(cls, steps: tuple[PrecedenceStep, ...]) -> tuple[PrecedenceStep, ...]:
        if len(set(steps)) != len(steps) or not steps:
            raise ValueError(
                "precedence must list click_id, coupon, cookie, livestream at most once each"
            )
        return steps

    def window_ms(self, affiliate_id: str) -> int:
        """The cookie window for a creator: their override, else the campaign's."""
        days = self.window_overrides_days.get(affiliate_id, self.cookie_window_days)
        return days * MS_PER_DAY

    def max_window_ms(self) -> int:
        return max([self.cookie_window_days, *self.window_overrides_days.values()]) * MS_PER_DAY

    @property
    def grace_ms(self) -> int:
        return self.grace_seconds * MS_PER_SECOND

    @property
    def lock_ms(self) -> int:
        return self.lock_days * MS_PER_DAY

    def coupon_owner(self, code: str | None) -> str | None:
        return self.coupons.get(normalize_coupon(code)) if code else None


# Bounds of a version's number and times. Unbounded, a version numbered 2**64 written
# straight to the campaigns topic was taken by every reader, then every conversion of
# its campaign failed in the ledger (its JSON encoder stops at 64 bits); a time past
# year 9999 cannot be shown as a date.
MAX_TERMS_VERSION = 1_000_000
MAX_TERMS_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


class TermsVersion(_Frozen):
    """One version of a campaign's terms and the event time from which it applies."""

    version: Annotated[int, Field(ge=1, le=MAX_TERMS_VERSION)]
    effective_from: Annotated[
        int, Field(ge=0, le=MAX_TERMS_TIME_MS, description="UTC milliseconds")
    ]
    published_at: Annotated[int, Field(ge=0, le=MAX_TERMS_TIME_MS, description="UTC milliseconds")]
    terms: CampaignTerms


class NoTermsInForce(LookupError):
    """A campaign without any version of its terms."""


# What a creator's id may hold: as the clicks service's links (and API keys) take it.
CREATOR_ID_PATTERN = r"^[A-Za-z0-9_.:@-]+$"
_CREATOR_ID = re.compile(CREATOR_ID_PATTERN)
MAX_CREATOR_ID_LENGTH = 200
MAX_MERCHANT_ID_LENGTH = 64  # as CampaignTerms.merchant_id


def creator_id_problem(affiliate_id: str) -> str | None:
    """Why ``affiliate_id`` cannot name a new creator (a link's, a key's, one the terms
    name), or None. A creator's id is a path segment of their pages and API URLs: "a/b"
    was a creator no URL reached, and ".." one whose pages a browser resolved to the
    directory above, redirecting in a loop."""
    if not affiliate_id or len(affiliate_id) > MAX_CREATOR_ID_LENGTH:
        return f"must be 1 to {MAX_CREATOR_ID_LENGTH} characters"
    if not _CREATOR_ID.fullmatch(affiliate_id):
        return (
            f"{affiliate_id[:100]!r}: a creator id holds ASCII letters, digits and _ . : @ -"
            " only (it names the creator's pages and URLs)"
        )
    if affiliate_id.strip(".") == "":
        return f"{affiliate_id!r} is only dots, which a URL reads as a directory"
    return None


def merchant_id_problem(merchant_id: str) -> str | None:
    """Why ``merchant_id`` cannot name a merchant an owner of keys or webhooks is (at most
    ``MAX_MERCHANT_ID_LENGTH``, as the terms' ``merchant_id``; no edge whitespace, no
    control or invisible character: an id no event carries received nothing), or None."""
    if len(merchant_id) > MAX_MERCHANT_ID_LENGTH:
        return f"a merchant id is at most {MAX_MERCHANT_ID_LENGTH} characters"
    if merchant_id != merchant_id.strip():
        return "leading or trailing whitespace"
    return new_id_problem(merchant_id)


def answered_creator_problem(terms: CampaignTerms, affiliate_id: str) -> str | None:
    """Why a survey answer naming ``affiliate_id`` names nobody of the campaign, or None.

    An answer stands as the order's for good (a later, right one is a 409), so "cr-a "
    or "cr-\u0430" (a Cyrillic a) would pay a creator nobody is. A creator's id is one
    its links could have (``CREATOR_ID_PATTERN``), or one the campaign's terms name."""
    if creator_id_problem(affiliate_id) is None or names_creator(terms, affiliate_id):
        return None
    return (
        f"names no creator: {affiliate_id[:100]!r} is no id a creator's links have (letters,"
        " digits and _ . : @ - only, not only dots) and the campaign's terms do not name it"
    )


def names_creator(terms: CampaignTerms, affiliate_id: str) -> bool:
    """Whether the terms name the creator: a coupon or survey handle of it, a cookie
    window of its own, or its agency. Such a creator belongs to the campaign (what a
    creator key may do on its own depends on it, docs/portal.md)."""
    survey_handles = terms.survey.handles.values() if terms.survey is not None else ()
    members = terms.overrides.agencies if terms.overrides is not None else {}
    return (
        affiliate_id in terms.window_overrides_days
        or affiliate_id in terms.coupons.values()
        or affiliate_id in survey_handles
        or affiliate_id in members
    )


def terms_in_force(versions: Iterable[TermsVersion], at_ms: int) -> TermsVersion:
    """The version of a campaign's terms in force at event time ``at_ms`` (UTC ms).

    The one rule every service, the payouts ledger and the batch oracle follow:

    * a version is in force from its ``effective_from`` on, inclusive, until the
      next version's ``effective_from``: the latest ``effective_from <= at_ms`` wins;
    * versions with the same ``effective_from``: the higher version number wins, so
      a correction published later for the same instant replaces the earlier one
      from that instant on (before every start, see below), and a replay gives the
      same answer;
    * before the first ``effective_from`` the first version published (the lowest
      number) applies, as if it had always been in force: an order older than its
      campaign's terms is judged by the first terms, not refused. Not the earliest
      ``effective_from``: a version published later for a time still to come but
      before (or at) the first one's start would otherwise take over every event
      before it, orders the first terms already decided included, and every replay
      would price them by the later one.

    Raises NoTermsInForce only when ``versions`` is empty.
    """
    candidates = tuple(versions)
    if not candidates:
        raise NoTermsInForce(f"no terms in force at {at_ms}: the campaign has no versions")
    started = [v for v in candidates if v.effective_from <= at_ms]
    if not started:
        return min(candidates, key=lambda v: v.version)
    return max(started, key=lambda v: (v.effective_from, v.version))


@dataclass(frozen=True, slots=True)
class TermsTimeline:
    """``terms_in_force`` answered by a binary search, for callers that ask per event:
    the winner at each distinct ``effective_from`` (the same tie-break), in time order."""

    starts: tuple[int, ...]
    winners: tuple[TermsVersion, ...]
    first: TermsVersion  # the first published: in force before every start

    @classmethod
    def of(cls, versions: Iterable[TermsVersion]) -> TermsTimeline:
        best: dict[int, TermsVersion] = {}
        first: TermsVersion | None = None
        for v in versions:
            held = best.get(v.effective_from)
            if held is None or v.version > held.version:
                best[v.effective_from] = v
            if first is None or v.version < first.version:
                first = v
        if first is None:
            raise NoTermsInForce("no terms in force: the campaign has no versions")
        starts = tuple(sorted(best))
        return cls(starts, tuple(best[start] for start in starts), first)

    def at(self, at_ms: int) -> TermsVersion:
        """The version in force at event time ``at_ms`` (before the first start: the
        first published)."""
        index = bisect_right(self.starts, at_ms) - 1
        return self.winners[index] if index >= 0 else self.first


def currency_change(versions: Sequence[TermsVersion], terms: CampaignTerms) -> str | None:
    """Why ``terms`` may not become a version of a campaign with ``versions``: a campaign's
    currency is its first version's for good. Every amount of the campaign (orders,
    refunds, postings, balances, payout runs) is in it, and an order keeps the currency
    of the terms in force at its time: a later version in another currency would leave
    the older orders refundable only in a currency they were not paid in, and a payout
    run adding balances of both. A brand that changes currency starts a new campaign."""
    currencies = sorted({v.terms.currency for v in versions} - {terms.currency})
    if not currencies:
        return None
    return (
        f"campaign {terms.campaign_id!r} is paid in {', '.join(currencies)}: a campaign's"
        f" currency never changes (terms in {terms.currency} need a new campaign)"
    )


def merchant_change(versions: Sequence[TermsVersion], terms: CampaignTerms) -> str | None:
    """Why ``terms`` may not become a version of a campaign with ``versions``: a campaign's
    merchant is its first version's for good. An order or refund is checked against the
    merchant of the terms in force at its time: a later version naming another merchant
    would leave the former one able to report orders and refunds dated before the change
    for the whole backfill window, paying or taking back the campaign's creators. A
    brand that changes hands starts a new campaign."""
    merchants = sorted({v.terms.merchant_id for v in versions} - {terms.merchant_id})
    if not merchants:
        return None
    return (
        f"campaign {terms.campaign_id!r} belongs to {', '.join(merchants)}: a campaign's"
        f" merchant never changes (terms of {terms.merchant_id} need a new campaign)"
    )


def backdated_version(
    versions: Sequence[TermsVersion], terms: CampaignTerms, effective_from: int, now_ms: int
) -> str | None:
    """Why ``terms`` may not become a new version starting at ``effective_from``: a later
    version of a campaign applies from its publication on. Starting before it, it would
    change the terms of orders already decided, lines already approved or paid and the
    period terms the ledger holds, while every replay of the log (``afflux ledger
    rebuild``, the oracle, the what-if) prices that past by the new terms: the live
    ledger and its own rebuild would disagree. A campaign's first version may start in
    the past (nothing was decided under another), and terms equal to the latest version
    with its ``effective_from`` publish nothing, so applying a file again is no change."""
    if not versions or effective_from >= now_ms:
        return None
    latest = max(versions, key=lambda v: v.version)
    if latest.terms == terms and latest.effective_from == effective_from:
        return None
    return (
        f"effective_from {iso_ms(effective_from)} is before now ({iso_ms(now_ms)}): a new"
        f" version of campaign {terms.campaign_id!r} applies from its publication on, so"
        " that nothing already decided, approved or paid is priced again (omit"
        " effective_from, or give a time to come; only a campaign's first version may"
        " start in the past)"
    )


def iso_ms(at_ms: int) -> str:
    """``at_ms`` as an ISO 8601 UTC time to the millisecond (for messages)."""
    return from_ms(at_ms).isoformat(timespec="milliseconds")


def history_conflict(held: Sequence[TermsVersion], incoming: Sequence[TermsVersion]) -> str | None:
    """Why ``incoming`` (a campaigns record's whole history) may not follow ``held``: it
    changes or leaves out a version published before the latest one held. Versions are
    only appended (``append_version``), so a record that rewrites an earlier one (a
    coupon given to another creator, a rate changed back in time) was never written by a
    publisher, and taking it would reprice what was decided under the version every
    reader held.

    The latest version held is left out of the comparison: until publications took a
    lock per campaign (2026-12-04), two at once could both append it, each with its own
    terms, and every reader took the later record. Histories written so must replay as
    they ran, so a record replacing the latest version is still taken."""
    if not held:
        return None
    latest = max(version.version for version in held)
    by_number = {version.version: version for version in incoming}
    for version in held:
        if version.version == latest:
            continue
        other = by_number.get(version.version)
        if other is None:
            if len(incoming) < len(held):
                continue  # an older, shorter record: it changes nothing held
            return f"history_rewrite: it leaves out version {version.version}"
        if other != version:
            return (
                f"history_rewrite: version {version.version} differs from the version"
                f" {version.version} published at {version.published_at}"
            )
    return None


def takes_over(held: Sequence[TermsVersion], incoming: Sequence[TermsVersion]) -> bool:
    """Whether a campaigns record with ``incoming`` replaces ``held``: it holds at least as
    many versions (never let an older record shrink the history) and rewrites none."""
    return len(incoming) >= len(held) and history_conflict(held, incoming) is None


def append_version(
    versions: tuple[TermsVersion, ...], terms: CampaignTerms, effective_from: int, published_at: int
) -> tuple[TermsVersion, ...]:
    """Add ``terms`` as the next version; an identical latest version is not repeated."""
    if versions:
        latest = max(versions, key=lambda v: v.version)
        if latest.terms == terms and latest.effective_from == effective_from:
            return versions
        number = latest.version + 1
    else:
        number = 1
    new = TermsVersion(
        version=number, effective_from=effective_from, published_at=published_at, terms=terms
    )
    return (*versions, new)
