"""A creator's content and its platform stats: identity and bounds shared by the wire
contract (``afflux.shared.events``), the ledger and the oracle."""

from __future__ import annotations

MAX_COUNT = 10**12
"""The largest count a snapshot may carry (views, likes, followers, ...)."""

PLATFORM_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}$"


def content_key(platform: str, content_id: str) -> str:
    """The record key of a content's events on the ``content`` topic, and its identity."""
    return f"{platform}:{content_id}"
