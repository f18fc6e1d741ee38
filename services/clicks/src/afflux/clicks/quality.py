"""Click quality: which clicks no person made on purpose, decided once per click.

Flagged clicks are still redirected and recorded (with their reasons, see
``afflux.shared.core.click_flags``), but attribution and payouts ignore them;
raw and valid clicks stay countable downstream. Every table here lives in the
process's memory, is bounded (oldest entries dropped first) and is keyed by a
64-bit hash of its key, so an entry costs a few dozen bytes whatever the user
agent's length (a hash collision can only flag a click, never pay one). A table
that counts packs its count into the same int as the entry's expiry
(``CountedKeys``), so counting adds no object per entry.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import NamedTuple

from afflux.shared.core.click_flags import BOT, DUPLICATE, EMBEDDED, IP_DUPLICATE, RATE
from afflux.shared.core.terms import TermsVersion, terms_in_force

# Crawlers, link-preview fetchers (chat apps, social networks) and HTTP
# libraries. Matched case-insensitively anywhere in the User-Agent.
BOT_PATTERN = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrape|preview|facebookexternalhit|facebookcatalog"
    r"|meta-externalagent|embedly|quora link|pinterest|vkshare|w3c_validator|whatsapp"
    r"|skypeuripreview|bitlybot|outbrain|flipboard|tumblr|nuzzel|redditbot|applebot"
    r"|headlesschrome|phantomjs|lighthouse|pingdom|uptime|monitor|curl/|wget/"
    r"|python-requests|python-urllib|python-httpx|aiohttp|go-http-client|java/|okhttp"
    r"|libwww|httpclient|node-fetch|axios/|postman"
    # HTTP libraries and runtimes (Node's own fetch sends just "node"), scanners, and
    # fetchers of Google's and of Office that name no "bot".
    r"|^node$|^node/|^undici|httpie/|^dart/|dart:io|reqwest|^deno/|zgrab|masscan"
    r"|googleother|google-inspectiontool|mediapartners-google|iframely|microsoft office/",
    re.IGNORECASE,
)
# Browser families, most specific first: in-app browsers and Chromium forks also
# carry "Chrome/" and "Safari/", Chrome carries "Safari/".
_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (family, re.compile(pattern))
    for family, pattern in (
        ("Instagram", r"Instagram (\d+)"),
        ("Facebook", r"FBAV/(\d+)"),
        ("TikTok", r"(?:musical_ly|BytedanceWebview|TikTok)[_/ ]?(\d+)?"),
        ("HeadlessChrome", r"HeadlessChrome/(\d+)"),
        ("Edge", r"Edg(?:e|A|iOS)?/(\d+)"),
        ("Opera", r"(?:OPR|Opera)/(\d+)"),
        ("Samsung Internet", r"SamsungBrowser/(\d+)"),
        ("Firefox", r"(?:Firefox|FxiOS)/(\d+)"),
        ("Chrome", r"(?:Chrome|CriOS)/(\d+)"),
        ("Safari", r"Version/(\d+)[^ ]* (?:Mobile/\w+ )?Safari/"),
        ("Safari", r"AppleWebKit/.*Mobile/"),
    )
)
# Anything else: its first product token that is not "Mozilla" (curl/8.5, Googlebot/2.1).
_PRODUCT = re.compile(r"(?:^|[\s;(])((?!Mozilla/)[A-Za-z][\w.-]{0,39})/(\d+)")
_MAX_FAMILY = 40
_MAX_VERSION = 8  # a major version; "Chrome/" and 80 digits is no browser's
_UA_CACHE_MAX = 4096
MS_PER_MINUTE = 60_000
PRUNE_EVERY = 64  # writes between two prunings of a table
COUNT_BITS = 16  # a CountedKeys entry is ``until_ms << COUNT_BITS | count``
MAX_COUNT = (1 << COUNT_BITS) - 1  # counts stop there (bounds are far lower)


class UserAgentInfo(NamedTuple):
    """What the event keeps of a user agent: its family, major version and bot verdict."""

    family: str
    version: str
    is_bot: bool


def parse_user_agent(user_agent: str) -> UserAgentInfo:
    is_bot = not user_agent.strip() or BOT_PATTERN.search(user_agent) is not None
    for family, pattern in _FAMILIES:
        found = pattern.search(user_agent)
        if found:
            return UserAgentInfo(family, (found.group(1) or "")[:_MAX_VERSION], is_bot)
    product = _PRODUCT.search(user_agent)
    if product:
        return UserAgentInfo(
            product.group(1)[:_MAX_FAMILY], product.group(2)[:_MAX_VERSION], is_bot
        )
    return UserAgentInfo("Other" if user_agent.strip() else "", "", is_bot)


class BotDetector:
    """User agents parsed once; answers are cached because user agents repeat a lot."""

    def __init__(self) -> None:
        self._cache: dict[str, UserAgentInfo] = {}

    def classify(self, user_agent: str) -> UserAgentInfo:
        known = self._cache.get(user_agent)
        if known is not None:
            return known
        info = parse_user_agent(user_agent)
        if len(self._cache) >= _UA_CACHE_MAX:
            self._cache.clear()
        self._cache[user_agent] = info
        return info

    def is_bot(self, user_agent: str) -> bool:
        return self.classify(user_agent).is_bot


def top_level_navigation(mode: str | None, dest: str | None) -> bool:
    """Fetch Metadata of a click a person made: a top-level navigation to a document.

    A request without ``Sec-Fetch-Mode`` and ``Sec-Fetch-Dest`` (an older client)
    counts; with either, both must say so (``navigate``, ``document``). Anything
    else (an image, an iframe, a ``no-cors`` fetch) is the page loading the link
    by itself, which is how cookie stuffing works.
    """
    if mode is None and dest is None:
        return True
    return mode == "navigate" and dest == "document"


_AHEAD_OF_A_VISIT = frozenset({"prefetch", "prerender", "preview"})


def fetched_ahead(
    sec_purpose: str | None, purpose: str | None, x_purpose: str | None, x_moz: str | None
) -> bool:
    """Whether the browser fetches the link ahead of a visit that may never come: a
    speculative prefetch or prerender (``Sec-Purpose: prefetch``, ``prefetch;prerender``;
    the older ``Purpose``/``X-Purpose: prefetch`` or ``preview``, ``X-Moz: prefetch``).

    Chrome's speculation rules send such a fetch as a top-level navigation
    (``navigate``/``document``), so Fetch Metadata alone took it for a person's click: a
    creator's page prefetching its own link made every reader a paid click and an
    attribution cookie. Nor may it be redirected and flagged: the browser keeps the
    response and serves it when the person really clicks, so that click would never
    reach the service and the order would name a flagged click."""
    for value in (sec_purpose, purpose, x_purpose, x_moz):
        if value is not None:
            tokens = value.replace(";", ",").split(",")
            if any(t.strip().lower() in _AHEAD_OF_A_VISIT for t in tokens):
                return True
    return False


class ExpiringKeys:
    """Keys that stay open until a time; bounded, oldest inserted dropped first.

    Lookups never prune; every ``PRUNE_EVERY`` writes (and whenever the bound is
    reached) expired entries are dropped from the front, in insertion order
    (amortised O(1)). With windows that differ per key a long window at the front
    may keep shorter expired ones behind it until the bound pushes them out, which
    is harmless: ``is_open`` compares the times.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._until: OrderedDict[int, int] = OrderedDict()
        self._writes = 0

    def is_open(self, key: int, now_ms: int) -> bool:
        until = self._until.get(key)
        return until is not None and until > now_ms

    def open(self, key: int, until_ms: int, now_ms: int) -> None:
        entries = self._until
        entries[key] = until_ms
        entries.move_to_end(key)
        self._writes += 1
        if self._writes >= PRUNE_EVERY or len(entries) > self.max_entries:
            self._writes = 0
            _drop_expired(entries, now_ms, self.max_entries, 0)

    def __len__(self) -> int:
        return len(self._until)


class CountedKeys:
    """How often each key was counted in its window, which runs from its first count.

    Bounded and pruned like ``ExpiringKeys``. An entry is one int, ``until_ms <<
    COUNT_BITS | count``: it costs what an ``ExpiringKeys`` entry costs, where a
    ``[until, count]`` list would add some 70 bytes to each.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[int, int] = OrderedDict()
        self._writes = 0

    def count(self, key: int, now_ms: int) -> int:
        """Times ``key`` was counted in its window open at ``now_ms`` (0: none open)."""
        packed = self._entries.get(key)
        if packed is None or packed >> COUNT_BITS <= now_ms:
            return 0
        return packed & MAX_COUNT

    def add(self, key: int, until_ms: int, now_ms: int) -> None:
        """Count ``key`` once more; with no window open, open one until ``until_ms``."""
        entries = self._entries
        packed = entries.get(key)
        if packed is not None and packed >> COUNT_BITS > now_ms:
            if packed & MAX_COUNT < MAX_COUNT:
                entries[key] = packed + 1  # keeps its place: the window did not move
            return
        entries[key] = until_ms << COUNT_BITS | 1
        if packed is not None:
            entries.move_to_end(key)  # a new key is inserted last already
        self._writes += 1
        if self._writes >= PRUNE_EVERY or len(entries) > self.max_entries:
            self._writes = 0
            _drop_expired(entries, now_ms, self.max_entries, COUNT_BITS)

    def __len__(self) -> int:
        return len(self._entries)


def _drop_expired(
    entries: OrderedDict[int, int], now_ms: int, max_entries: int, shift: int
) -> None:
    """Drop entries from the front while they have expired or the table is over its bound."""
    while entries:
        first = next(iter(entries.values()))
        if first >> shift > now_ms and len(entries) <= max_entries:
            break
        entries.popitem(last=False)


class RateCounter:
    """Requests per key in fixed one-minute windows (each starting at its key's first request)."""

    def __init__(self, max_per_minute: int, max_entries: int) -> None:
        self.max_per_minute = max_per_minute
        self.max_entries = max_entries
        self._counts: OrderedDict[int, list[int]] = OrderedDict()  # key -> [minute ends, n]
        self._writes = 0

    def over(self, key: int, now_ms: int) -> bool:
        """Count this request; True when it is beyond the allowed number in its minute."""
        if self.max_per_minute <= 0:
            return False
        counts = self._counts
        known = counts.get(key)
        if known is not None and known[0] > now_ms:
            known[1] += 1
            return known[1] > self.max_per_minute
        counts[key] = [now_ms + MS_PER_MINUTE, 1]
        counts.move_to_end(key)
        self._writes += 1
        if self._writes >= PRUNE_EVERY or len(counts) > self.max_entries:
            self._writes = 0
            while counts:
                ends, _ = next(iter(counts.values()))
                if ends > now_ms and len(counts) <= self.max_entries:
                    break
                counts.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._counts)


class IpWindow(NamedTuple):
    """A campaign's IP duplicate window, and the counted clicks one address gets on a
    creator's links in it."""

    window_ms: int  # 0: no IP duplicate window
    agents: (
        int  # counted clicks per IP hash and creator within the window, whatever the UA; 0: none
    )


WindowFor = Callable[[str, int], IpWindow]  # (campaign_id, now_ms) -> its IP window


class CampaignIpWindows:
    """The IP window of a campaign's terms in force, the service's default where they are silent.

    Cached per campaign for as long as the version in force stays in force;
    ``clear`` when terms are published.
    """

    def __init__(
        self, default: IpWindow, versions: Callable[[str], Sequence[TermsVersion]]
    ) -> None:
        self.default = default
        self._versions = versions
        self._cache: dict[str, tuple[IpWindow, int, int]] = {}  # campaign -> (window, from, until)

    def __call__(self, campaign_id: str, now_ms: int) -> IpWindow:
        cached = self._cache.get(campaign_id)
        if cached is not None and cached[1] <= now_ms < cached[2]:
            return cached[0]
        try:
            versions = self._versions(campaign_id)
        except LookupError:
            return self.default  # not loaded yet: never cached
        window, start, until = ip_window_in_force(versions, now_ms, self.default)
        self._cache[campaign_id] = (window, start, until)
        return window

    def clear(self) -> None:
        self._cache.clear()


def ip_window_in_force(
    versions: Sequence[TermsVersion], now_ms: int, default: IpWindow
) -> tuple[IpWindow, int, int]:
    """(window, from, until): the IP window of the version in force at ``now_ms``.

    Before every start the first version published applies (``terms_in_force``, as
    everywhere else in afflux; the one starting earliest applied here, so a version
    published to start before the first one's start changed the window of the clicks
    before it).
    """
    if not versions:
        return default, -(2**62), 2**62
    in_force = [v for v in versions if v.effective_from <= now_ms]
    version = terms_in_force(versions, now_ms)
    later = [v.effective_from for v in versions if v.effective_from > now_ms]
    start = version.effective_from if in_force else -(2**62)
    until = min(later, default=2**62)
    seconds = version.terms.ip_duplicate_window_s
    agents = version.terms.ip_agents_per_window
    window = IpWindow(
        default.window_ms if seconds is None else seconds * 1000,
        default.agents if agents is None else agents,
    )
    return window, start, until


_VALID: tuple[str, ...] = ()


class ClickQuality:
    """The flags of one click; the windows open only for a click that is counted.

    * ``bot``: HEAD, or the user agent of a crawler, link preview or library.
    * ``embedded``: not a top-level navigation (Fetch Metadata).
    * ``rate``: more than ``rate_per_minute`` requests from its IP hash in a minute,
      across links (every request counts, flagged or not).
    * ``duplicate``: the visitor clicked a link of the creator in the campaign within
      ``visitor_window_ms``.
    * ``ip_duplicate``: its IP hash and user agent (family and major version, so a
      rotated minor version or build is the same one) clicked a link of the creator
      in the campaign within the campaign's IP window; or the window's ``agents``
      clicks from its IP hash on the creator's links in the campaign, whatever their
      user agents, were counted within it (0: no bound).

    The windows are the creator's in the campaign, not a link's: a creator may make
    any number of links to a campaign, and per link one address would be paid the
    bound again on each (a probe made eight links and was paid 28 clicks in seconds
    from one address, where the bound promised 4).

    Bot and embedded requests are not checked against the windows and never open
    one, so a chat preview or a stuffed image never makes the person's own click a
    duplicate; the windows run from the first counted click (a burst does not
    extend them).
    """

    def __init__(
        self,
        *,
        visitor_window_ms: int,
        ip_window: WindowFor,
        rate_per_minute: int,
        max_entries: int,
    ) -> None:
        self.visitor_window_ms = visitor_window_ms
        self.ip_window = ip_window
        self.visitors = ExpiringKeys(max_entries)
        # (IP hash, creator, campaign, family, major)
        self.addresses = ExpiringKeys(max_entries)
        # (IP hash, creator, campaign): counted clicks
        self.address_links = CountedKeys(max_entries)
        self.rates = RateCounter(rate_per_minute, max_entries)

    def flags(
        self,
        *,
        bot: bool,
        navigation: bool,
        visitor: str,
        creator: str,
        campaign_id: str,
        ip_hash: str,
        agent: UserAgentInfo,
        now_ms: int,
    ) -> tuple[str, ...]:
        rate = self.rates.over(hash(ip_hash), now_ms)
        if bot or not navigation:
            found = [BOT] if bot else []
            if rate:
                found.append(RATE)
            if not navigation:
                found.append(EMBEDDED)
            return tuple(found)
        visitor_key = hash((visitor, creator, campaign_id))
        address_key = hash((ip_hash, creator, campaign_id, agent.family, agent.version))
        duplicate = self.visitor_window_ms > 0 and self.visitors.is_open(visitor_key, now_ms)
        ip_duplicate = self.addresses.is_open(address_key, now_ms)
        if not ip_duplicate:  # the address's count on the link is looked up only here
            window_ms, agents = self.ip_window(campaign_id, now_ms)
            link_key = hash((ip_hash, creator, campaign_id)) if agents > 0 else 0
            ip_duplicate = agents > 0 and self.address_links.count(link_key, now_ms) >= agents
            if not (duplicate or ip_duplicate or rate):
                if self.visitor_window_ms > 0:
                    self.visitors.open(visitor_key, now_ms + self.visitor_window_ms, now_ms)
                if window_ms > 0:
                    self.addresses.open(address_key, now_ms + window_ms, now_ms)
                    if agents > 0:
                        self.address_links.add(link_key, now_ms + window_ms, now_ms)
                return _VALID
        found = [DUPLICATE] if duplicate else []
        if ip_duplicate:
            found.append(IP_DUPLICATE)
        if rate:
            found.append(RATE)
        return tuple(found)
