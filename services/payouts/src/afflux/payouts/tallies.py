"""Click tallies of one campaign-period (pure): what a newly counted click adds.

Fields of the ``clicks`` hash, per creator ``<a>``: ``r|<a>`` non-bot clicks,
``b|<a>`` bot clicks, ``u|<a>`` valid unique clicks (no quality flag),
``d|<a>|<day>`` non-bot clicks per day, ``x|<a>|<reason>`` flagged clicks per
reason, ``f|<a>`` and ``l|<a>`` the first and last valid click's time, ``c|<a>|<content>``
valid clicks on a link placed in a content (its ``utm_content`` names the content as
``<platform>:<content_id>``), for the content's CTR (a content the creator published in
the period always; ``cn|<a>`` how many others have such a field, at most
``MAX_CONTENTS``; ``co|<a>`` valid clicks naming a further one or something that is no
content's name),
``v|<a>|<day start ms>`` valid unique clicks per UTC day and ``vd|<a>`` those days,
space-separated: what the per-day click lines pay
(``afflux.shared.core.journal.click_days``). Clicks counted before the days were kept
have no ``v`` field: they are paid on the first click's day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass

from afflux.shared.click_decode import DecodedClick
from afflux.shared.core.click_flags import BOT, CLICK_FLAGS
from afflux.shared.core.content import CONTENT_ID_PATTERN, PLATFORM_PATTERN
from afflux.shared.core.engagement import ContentState
from afflux.shared.core.journal.click_days import day_start
from afflux.shared.core.journal.period import ClickFigures
from afflux.shared.core.periods import day_of
from afflux.shared.events import ClickRecorded

CONTENT_PARAM = "utm_content"  # a link placed in a content names it: <platform>:<content_id>
# Contents a creator's clicks are counted under per campaign-period: as many as a
# creator may publish in a campaign (AFFLUX_CREATOR_CONTENT_PER_CAMPAIGN's default).
MAX_CONTENTS = 1_000
MAX_CONTENT_ID = 200  # ContentPublished.content_id
# \Z, not $: a content id never ends in a newline.
_PLATFORM = re.compile(PLATFORM_PATTERN.removesuffix("$") + r"\Z")
_CONTENT_ID = re.compile(CONTENT_ID_PATTERN.removesuffix("$") + r"\Z")


@dataclass(frozen=True, slots=True)
class ClickItem:
    campaign_id: str
    period: str
    click_id: str
    affiliate_id: str
    occurred_at: int
    reasons: tuple[str, ...] = ()  # quality flags (``ClickRecorded.reasons``); empty: valid
    content: str = ""  # the content the link was placed in (``utm_content``), when named

    @classmethod
    def of(cls, event: ClickRecorded | DecodedClick, period: str) -> ClickItem:
        """What the ledger keeps of a click: flagged ones are counted, never paid."""
        return cls(
            campaign_id=event.campaign_id,
            period=period,
            click_id=event.click_id,
            affiliate_id=event.affiliate_id,
            occurred_at=event.occurred_at,
            reasons=event.reasons,
            content=event.utm.get(CONTENT_PARAM, ""),
        )


def count_clicks(
    tally: MutableMapping[str, str],
    clicks: Iterable[ClickItem],
    published: Mapping[str, ContentState] | None = None,
) -> tuple[set[str], set[str]]:
    """Add clicks never counted before to ``tally``; the changed fields, and the
    creators whose valid clicks changed. ``published``: the period's contents by key
    (``count_content``)."""
    touched: set[str] = set()
    valid: set[str] = set()
    # A batch brings tens of thousands of clicks: each field is named and read once.
    mark = touched.add
    for item in clicks:
        a = item.affiliate_id
        reasons = item.reasons
        if reasons and BOT in reasons:
            mark(_inc(tally, f"b|{a}"))
            continue
        mark(_inc(tally, f"r|{a}"))
        mark(_inc(tally, f"d|{a}|{day_of(item.occurred_at)}"))
        if reasons:
            for reason in reasons:
                # Reasons other than the known ones (a newer producer) count as "other".
                known = reason if reason in CLICK_FLAGS else "other"
                mark(_inc(tally, f"x|{a}|{known}"))
            continue
        mark(_inc(tally, f"u|{a}"))
        at = item.occurred_at
        day_name = mark_day(tally, a, at)
        mark(day_name)
        if tally[day_name] == "1":  # a new day (rare): the list of days too
            touched.update(new_day(tally, a, day_start(at)))
        first_name, last_name = f"f|{a}", f"l|{a}"
        first, last = tally.get(first_name), tally.get(last_name)
        if first is None or at < int(first):
            tally[first_name] = str(at)
        if last is None or at > int(last):
            tally[last_name] = str(at)
        mark(first_name)
        mark(last_name)
        valid.add(a)
        if item.content:
            touched.update(count_content(tally, a, item.content, published))
    return touched, valid


def count_content(
    tally: MutableMapping[str, str],
    affiliate_id: str,
    content: str,
    published: Mapping[str, ContentState] | None = None,
) -> list[str]:
    """Count a valid click on a link placed in ``content`` (the fields written). The
    visitor's URL names the content, and its field is kept for good: a name that is not a
    content's (``<platform>:<content_id>``), or a creator's ``MAX_CONTENTS`` + 1st
    different one in the period that the creator did not publish there (``published``),
    is counted in ``co|<a>`` instead (``cn|<a>`` counts the other names with a field of
    their own). A content the creator published always gets its field: visitors naming
    made-up contents cannot take its place (nor another creator's contents add to it)."""
    name = f"c|{affiliate_id}|{content}"
    if name in tally:
        return [_inc(tally, name)]
    state = None if published is None else published.get(content)
    publication = None if state is None else state.publication
    if publication is not None and publication.affiliate_id == affiliate_id:
        return [_inc(tally, name)]
    names = f"cn|{affiliate_id}"
    known = int(tally.get(names, "0"))
    if known >= MAX_CONTENTS or not is_content_key(content):
        return [_inc(tally, f"co|{affiliate_id}")]
    tally[names] = str(known + 1)
    return [_inc(tally, name), names]


def is_content_key(value: str) -> bool:
    """``<platform>:<content_id>`` as the content API names a content."""
    platform, colon, content_id = value.partition(":")
    return (
        bool(colon)
        and len(content_id) <= MAX_CONTENT_ID
        and _PLATFORM.match(platform) is not None
        and _CONTENT_ID.match(content_id) is not None
    )


def mark_day(tally: MutableMapping[str, str], affiliate_id: str, at: int) -> str:
    """Count a valid unique click on its UTC day; the day's field."""
    return _inc(tally, f"v|{affiliate_id}|{day_start(at)}")


def new_day(tally: MutableMapping[str, str], affiliate_id: str, day: int) -> list[str]:
    """List ``day``, whose first valid click was just counted, in ``vd`` (the fields
    written). A creator without ``vd`` whose ``u`` counts more than that click has clicks
    counted before the days were kept: they are put on the day of the first of them as
    it stands now, for good (left to follow the first click, a late click made earlier
    moved them all to its own day, ahead of lines dated between)."""
    days_name = f"vd|{affiliate_id}"
    known = tally.get(days_name)
    written = [days_name]
    if known is None:
        uncounted = int(tally.get(f"u|{affiliate_id}", "0")) - 1  # ``u`` counts this click
        if uncounted > 0:
            first_day = day_start(int(tally.get(f"f|{affiliate_id}", "0")))
            pinned = f"v|{affiliate_id}|{first_day}"
            tally[pinned] = str(int(tally.get(pinned, "0")) + uncounted)
            written.append(pinned)
            if first_day != day:
                known = str(first_day)
    tally[days_name] = f"{known} {day}" if known else str(day)
    return written


def figures(tally: Mapping[str, str], affiliate_id: str) -> ClickFigures:
    first = int(tally.get(f"f|{affiliate_id}", "0"))
    days = tally.get(f"vd|{affiliate_id}", "").split()
    return ClickFigures(
        affiliate_id,
        int(tally.get(f"u|{affiliate_id}", "0")),
        first,
        int(tally.get(f"l|{affiliate_id}", str(first))),
        tuple(sorted((int(d), int(tally.get(f"v|{affiliate_id}|{d}", "0"))) for d in days)),
    )


def all_figures(tally: Mapping[str, str]) -> list[ClickFigures]:
    return [figures(tally, name[2:]) for name in tally if name.startswith("u|")]


def _inc(tally: MutableMapping[str, str], name: str) -> str:
    tally[name] = str(int(tally.get(name, "0")) + 1)
    return name
