"""What a draft of a campaign's terms would have paid: the same recorded inputs replayed
twice, under the recorded terms history ("current") and under the draft ("draft"), and
the difference per creator and per line, each with its reason.

Both sides come from ``replay.replay``, so the difference is the terms change alone:
nothing about timing, outages or the order events arrived in can differ between them.
The draft stands in for every version over the range (as if it had always been the
campaign's terms); its campaign, merchant and currency must be the campaign's own
(``draft_problem``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from afflux.shared.core.journal.explain import money, rule_in_words
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.terms_checks import plan_size_problem
from afflux.shared.core.whatif.log import EVER, CampaignLog, DateRange
from afflux.shared.core.whatif.replay import OrderDecision, Replay, ReplayedLine, replay

MAX_CHANGES = 500  # lines listed in a diff; ``changes_total`` counts them all
# What an answer lists (``as_dict``): the creators whose pay moves most, and of each the
# first order ids gained and lost; the totals count them all. A draft that moves every
# order of a large campaign would otherwise answer with every order id.
MAX_CREATORS = 500
MAX_ORDER_IDS = 100
# A sale priced at one rate; ``why`` never runs into a next rated part (a sale priced
# per item: ``10% of 2342 (category shoes), 20% of 1563 (...)``), which made a tier's
# change read as "sku X), 10% of 3905 (category shoes ... at 15% -> ... at 10%".
_PART_START = r"\), (?:\S+%|fixed \d+) of \d+ \("
_SALE_RULE = re.compile(
    r"^sale: (?P<rate>\S+%|fixed \d+) of \d+ \((?P<why>(?:(?!" + _PART_START + r").)*?)\)(?:;|$)"
)
_PART_SEPARATORS = (", ", "; ")
_PART = re.compile(r"^(?P<rate>\S+%|fixed \d+) of (?P<base>\d+) \((?P<why>.*)\)$")
_CAP_NOTE = re.compile(r"; (?:creator cap|campaign budget) cut \d+")
_HOW = {
    "click_id": "its named click",
    "coupon": "coupon",
    "survey": "survey answer",
    "livestream": "live stream",
    "renewal": "renewal of the first order it won",
}
_NOBODY = {
    "no_click": "no click of the visitor",
    "outside_window": "no click inside the window",
    "bot_only": "only flagged clicks",
    "unknown_click": "an unknown click id",
    "other_campaign": "no click in the campaign",
    "cookie_not_in_precedence": "clicks a cookie step would count, but the terms have none",
}


@dataclass(frozen=True, slots=True)
class CreatorDiff:
    affiliate_id: str
    currency: str
    current_minor: int
    draft_minor: int
    current_conversions: int
    draft_conversions: int
    gained: tuple[str, ...]  # order ids the draft gives this creator
    lost: tuple[str, ...]  # order ids the draft takes away

    @property
    def delta_minor(self) -> int:
        return self.draft_minor - self.current_minor


@dataclass(frozen=True, slots=True)
class LineChange:
    affiliate_id: str
    line_id: str
    kind: str
    order_id: str | None
    current_minor: int
    draft_minor: int
    reason: str


@dataclass(frozen=True)
class WhatIfDiff:
    campaign_id: str
    currency: str
    window: DateRange
    orders: int  # orders of the campaign in the range
    creators: tuple[CreatorDiff, ...]  # only those whose pay or conversions change
    changes: tuple[LineChange, ...]  # the largest changes first, at most MAX_CHANGES
    changes_total: int
    current_total_minor: int
    draft_total_minor: int

    @property
    def empty(self) -> bool:
        return not self.creators and not self.changes_total

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "currency": self.currency,
            "from": self.window.start,
            "to": self.window.end,
            "orders": self.orders,
            "empty": self.empty,
            "current_total_minor": self.current_total_minor,
            "draft_total_minor": self.draft_total_minor,
            "creators": [
                {
                    "affiliate_id": c.affiliate_id,
                    "currency": c.currency,
                    "current_minor": c.current_minor,
                    "draft_minor": c.draft_minor,
                    "delta_minor": c.delta_minor,
                    "current_conversions": c.current_conversions,
                    "draft_conversions": c.draft_conversions,
                    "gained": list(c.gained[:MAX_ORDER_IDS]),
                    "gained_total": len(c.gained),
                    "lost": list(c.lost[:MAX_ORDER_IDS]),
                    "lost_total": len(c.lost),
                }
                for c in self.creators[:MAX_CREATORS]
            ],
            "creators_total": len(self.creators),
            "changes": [
                {
                    "affiliate_id": c.affiliate_id,
                    "line_id": c.line_id,
                    "kind": c.kind,
                    "order_id": c.order_id,
                    "current_minor": c.current_minor,
                    "draft_minor": c.draft_minor,
                    "reason": c.reason,
                }
                for c in self.changes
            ],
            "changes_total": self.changes_total,
        }


def draft_problem(draft: CampaignTerms, current: CampaignTerms) -> tuple[str, str] | None:
    """(field, reason) when ``draft`` may not stand in for the campaign's terms."""
    if draft.campaign_id != current.campaign_id:
        return "campaign_id", f"the draft is for {draft.campaign_id!r}, not {current.campaign_id!r}"
    if draft.merchant_id != current.merchant_id:
        return "merchant_id", f"a draft keeps the campaign's merchant {current.merchant_id!r}"
    if draft.currency != current.currency:
        return "currency", f"a draft keeps the campaign's currency {current.currency}"
    engagement = draft.plan.engagement
    return plan_size_problem(
        len(draft.plan.tiers),
        len(draft.plan.milestones),
        len(engagement.tiers) if engagement is not None else 0,
    )


def draft_history(current: Sequence[TermsVersion], draft: CampaignTerms) -> tuple[TermsVersion]:
    """The draft as the campaign's only version, numbered after the current ones."""
    number = max((v.version for v in current), default=0) + 1
    return (TermsVersion(version=number, effective_from=0, published_at=0, terms=draft),)


def whatif(
    log: CampaignLog,
    current: Sequence[TermsVersion],
    draft: CampaignTerms,
    window: DateRange = EVER,
    stop: Callable[[], bool] | None = None,
) -> WhatIfDiff:
    """The log replayed under ``current`` and under ``draft``, and what differs; each
    replay raises ``replay.ReplayStopped`` once ``stop()`` holds (a caller's time limit)."""
    now = replay(log, current, window, stop)
    then = replay(log, draft_history(current, draft), window, stop)
    return compare(now, then, window)


def compare(now: Replay, then: Replay, window: DateRange) -> WhatIfDiff:
    """What differs between two replays of the same log, per creator and per line."""
    pay_now, pay_then = now.commission_by_creator(), then.commission_by_creator()
    conv_now, conv_then = now.conversions_by_creator(), then.conversions_by_creator()
    gained: dict[str, list[str]] = {}
    lost: dict[str, list[str]] = {}
    for order_id, was in now.decisions.items():
        becomes = then.decisions[order_id]
        before = was.affiliate_id if was.placed else None
        after = becomes.affiliate_id if becomes.placed else None
        if before != after:
            if before is not None:
                lost.setdefault(before, []).append(order_id)
            if after is not None:
                gained.setdefault(after, []).append(order_id)
    creators = []
    for affiliate in sorted({*pay_now, *pay_then, *conv_now, *conv_then, *gained, *lost}):
        row = CreatorDiff(
            affiliate,
            now.currency,
            pay_now.get(affiliate, 0),
            pay_then.get(affiliate, 0),
            conv_now.get(affiliate, 0),
            conv_then.get(affiliate, 0),
            tuple(sorted(gained.get(affiliate, ()))),
            tuple(sorted(lost.get(affiliate, ()))),
        )
        if row.delta_minor or row.gained or row.lost:
            creators.append(row)
    changes = _line_changes(now, then)
    changes.sort(key=lambda c: (-abs(c.draft_minor - c.current_minor), c.line_id, c.affiliate_id))
    return WhatIfDiff(
        campaign_id=now.campaign_id,
        currency=now.currency,
        window=window,
        orders=len(now.decisions),
        creators=tuple(sorted(creators, key=lambda c: (-abs(c.delta_minor), c.affiliate_id))),
        changes=tuple(changes[:MAX_CHANGES]),
        changes_total=len(changes),
        current_total_minor=sum(pay_now.values()),
        draft_total_minor=sum(pay_then.values()),
    )


def _line_changes(now: Replay, then: Replay) -> list[LineChange]:
    out: list[LineChange] = []
    empty = ReplayedLine("", "", "", None, "", 0, "")
    for line_id in sorted({*now.lines, *then.lines}):
        was, becomes = now.lines.get(line_id, empty), then.lines.get(line_id, empty)
        moved = was.line_id and becomes.line_id and was.affiliate_id != becomes.affiliate_id
        if was.paid_minor == becomes.paid_minor and not moved:
            continue
        reason = _why(was, becomes, now.decisions, then.decisions, now.currency)
        if moved:  # one line, two creators: each sees its own side
            out.append(_change(was, was.paid_minor, 0, reason))
            out.append(_change(becomes, 0, becomes.paid_minor, reason))
        else:
            line = becomes if becomes.line_id else was
            out.append(_change(line, was.paid_minor, becomes.paid_minor, reason))
    return out


def _change(line: ReplayedLine, current: int, draft: int, reason: str) -> LineChange:
    return LineChange(
        line.affiliate_id, line.line_id, line.kind, line.order_id, current, draft, reason
    )


def _why(
    was: ReplayedLine,
    becomes: ReplayedLine,
    before: dict[str, OrderDecision],
    after: dict[str, OrderDecision],
    currency: str,
) -> str:
    """Why a line's pay moves, its amounts in the currency's units (the rules' minor
    units read "paid 1001 -> 2500" for 10.01 -> 25.00 EUR)."""
    order = was.order_id or becomes.order_id
    if order is not None and order in before and order in after:
        a, b = before[order], after[order]
        if (a.affiliate_id, a.placed) != (b.affiliate_id, b.placed):
            return f"order {order}: was {_who(a)} now {_who(b)}"
    if not was.line_id:
        return f"new line: {_words(becomes.rule, currency)}"
    if not becomes.line_id:
        return f"line gone: {_words(was.rule, currency)}"
    subject = f"order {order}: " if order is not None else f"{was.kind} line: "
    reasons = []
    old, new = _SALE_RULE.match(was.rule), _SALE_RULE.match(becomes.rule)
    rate_moved = bool(old and new and old["rate"] != new["rate"])
    if old and new and rate_moved:
        was_rate, new_rate = _rate_words(old["rate"], currency), _rate_words(new["rate"], currency)
        if old["why"].split(" (")[0] == new["why"].split(" (")[0]:
            reasons.append(f"{_rate_of(new['why'])} {was_rate} -> {new_rate}")
        else:
            reasons.append(f"{old['why']} at {was_rate} -> {new['why']} at {new_rate}")
    old_cuts, new_cuts = _CAP_NOTE.findall(was.rule), _CAP_NOTE.findall(becomes.rule)
    if old_cuts != new_cuts and (
        rate_moved or _CAP_NOTE.sub("", was.rule) == _CAP_NOTE.sub("", becomes.rule)
    ):
        # Told beside a rate that moved too: a new cap that zeroed a line read as the
        # rate's rise alone.
        now = "; ".join(_cut(c, currency) for c in new_cuts) or "no cap cut"
        then = "; ".join(_cut(c, currency) for c in old_cuts) or "no cap cut"
        reasons.append(f"{now} (was: {then})")
    if reasons:
        return subject + "; ".join(reasons)
    changed = _changed_parts(was.rule, becomes.rule, currency)
    if changed:
        return subject + changed
    if was.rule != becomes.rule:
        return f"{subject}{_words(was.rule, currency)} -> {_words(becomes.rule, currency)}"
    paid = f"{money(was.paid_minor, currency)} -> {money(becomes.paid_minor, currency)}"
    return f"{subject}paid {paid}"


def _words(rule: str, currency: str) -> str:
    """A line's rule in the currency's units, its cap notes too."""
    cuts = _CAP_NOTE.findall(rule)
    words = rule_in_words(_CAP_NOTE.sub("", rule), currency)
    return words + "".join(f"; {_cut(c, currency)}" for c in cuts)


def _cut(note: str, currency: str) -> str:
    """``; creator cap cut 1500`` -> ``creator cap cut 1.500 KWD``."""
    what, _, amount = note[2:].rpartition(" ")
    return f"{what} {money(int(amount), currency)}"


def _changed_parts(old: str, new: str, currency: str) -> str:
    """Of two rules made of the same parts (a sale priced per item: ``sale: 10% of 2342
    (category shoes), 20% of 1563 (tier ...)``), only the parts that differ, whatever
    their order, a part whose reason stayed told by its rate; "" when the rules are not
    alike."""
    a, b = _rule_parts(old.removeprefix("sale: ")), _rule_parts(new.removeprefix("sale: "))
    if len(a) < 2 or len(a) != len(b) or old.startswith("sale: ") != new.startswith("sale: "):
        return ""
    gone, came = list(a), []
    for part in b:
        if part in gone:
            gone.remove(part)  # the same part in both: not a change
        else:
            came.append(part)
    return "; ".join(_part_change(x, y, currency) for x, y in zip(gone, came, strict=True))


def _rule_parts(rule: str) -> list[str]:
    """``rule`` split at the separators outside parentheses: a part's reason may itself
    hold a comma ("tier from net sale 20 (counted: 3, 4)")."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(rule):
        char = rule[i]
        depth += (char == "(") - (char == ")")
        if depth == 0 and rule.startswith(_PART_SEPARATORS, i):
            parts.append(rule[start:i])
            i += 2
            start = i
            continue
        i += 1
    parts.append(rule[start:])
    return parts


def _part_change(was: str, becomes: str, currency: str) -> str:
    old, new = _PART.match(was), _PART.match(becomes)
    if old and new and (old["base"], old["why"]) == (new["base"], new["why"]):
        rates = f"{_rate_words(old['rate'], currency)} -> {_rate_words(new['rate'], currency)}"
        return f"{_rate_of(old['why'])} {rates}"
    return f"{_part_words(was, currency)} -> {_part_words(becomes, currency)}"


def _rate_words(rate: str, currency: str) -> str:
    """``12.25%`` as it is; ``fixed 500`` -> ``fixed 5.00 EUR``."""
    if rate.startswith("fixed "):
        return f"fixed {money(int(rate[6:]), currency)}"
    return rate


_SURVEYED_PART = re.compile(r"survey-attributed: (\S+)% of (-?\d+)")


def _part_words(part: str, currency: str) -> str:
    """One part of a rule in the currency's units: a rated part, or a survey's share."""
    surveyed = _SURVEYED_PART.fullmatch(part)
    if surveyed:
        return f"survey-attributed: {surveyed[1]} % of {money(int(surveyed[2]), currency)}"
    if _PART.match(part):
        return _words("sale: " + part, currency)
    return part


def _rate_of(why: str) -> str:
    """``why``'s rate: "tier from net sale 20 rate", but "base rate", not "base rate rate"."""
    why = why.split(" (")[0]
    return why if why.endswith("rate") else f"{why} rate"


def _who(decision: OrderDecision) -> str:
    if decision.affiliate_id is None:
        return f"nobody ({_NOBODY.get(decision.reason, decision.reason)})"
    if not decision.placed:
        return f"{decision.affiliate_id} (refused by the ledger: amount or currency)"
    how = _HOW.get(decision.reason, decision.model.replace("_", " "))
    return f"{decision.affiliate_id} ({how})"
