"""Click quality: bot / link-preview user agents and duplicate clicks.

Flagged clicks are still redirected and recorded, but attribution and
payouts ignore them; raw and unique clicks stay countable downstream.
"""

from __future__ import annotations

import re
from collections import OrderedDict

# Crawlers, link-preview fetchers (chat apps, social networks) and HTTP
# libraries. Matched case-insensitively anywhere in the User-Agent.
BOT_PATTERN = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrape|preview|facebookexternalhit|facebookcatalog"
    r"|meta-externalagent|embedly|quora link|pinterest|vkshare|w3c_validator|whatsapp"
    r"|skypeuripreview|bitlybot|outbrain|flipboard|tumblr|nuzzel|redditbot|applebot"
    r"|headlesschrome|phantomjs|lighthouse|pingdom|uptime|monitor|curl/|wget/"
    r"|python-requests|python-urllib|python-httpx|aiohttp|go-http-client|java/|okhttp"
    r"|libwww|httpclient|node-fetch|axios/|postman",
    re.IGNORECASE,
)
_UA_CACHE_MAX = 4096


class BotDetector:
    """``is_bot(user_agent)``; answers are cached because user agents repeat a lot."""

    def __init__(self) -> None:
        self._cache: dict[str, bool] = {}

    def is_bot(self, user_agent: str) -> bool:
        known = self._cache.get(user_agent)
        if known is not None:
            return known
        verdict = not user_agent.strip() or BOT_PATTERN.search(user_agent) is not None
        if len(self._cache) >= _UA_CACHE_MAX:
            self._cache.clear()
        self._cache[user_agent] = verdict
        return verdict


class DuplicateWindow:
    """Remembers (visitor, link) for ``window_ms`` after a counted click, in this process.

    A click is a duplicate when the same visitor clicked the same link less than
    ``window_ms`` before and that earlier click was not itself a duplicate (the
    window runs from the first counted click, so a burst does not extend it).
    Entries expire in insertion order, so pruning is amortised O(1); at most
    ``max_entries`` are kept (the oldest are dropped first).
    """

    def __init__(self, window_ms: int, max_entries: int = 1_000_000) -> None:
        self.window_ms = window_ms
        self.max_entries = max_entries
        self._until: OrderedDict[tuple[str, str], int] = OrderedDict()

    def seen(self, visitor_id: str, code: str, now_ms: int) -> bool:
        """True when this click is a duplicate; otherwise it opens a new window."""
        if self.window_ms <= 0:
            return False
        entries = self._until
        while entries:
            first = next(iter(entries.values()))
            if first > now_ms and len(entries) < self.max_entries:
                break
            entries.popitem(last=False)
        key = (visitor_id, code)
        until = entries.get(key)
        if until is not None and until > now_ms:
            return True
        entries[key] = now_ms + self.window_ms
        return False

    def __len__(self) -> int:
        return len(self._until)
