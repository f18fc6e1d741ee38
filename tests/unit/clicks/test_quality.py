"""Click quality: bots and link previews, duplicates within the window."""

from __future__ import annotations

import pytest

from afflux.clicks.quality import BotDetector, DuplicateWindow

pytestmark = pytest.mark.unit

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "bot"),
    [
        (BROWSER, False),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", False),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", True),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", True),
        ("Twitterbot/1.0", True),
        ("WhatsApp/2.23.20.0", True),
        ("TelegramBot (like TwitterBot)", True),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", True),
        ("curl/8.5.0", True),
        ("python-requests/2.32", True),
        ("", True),  # no user agent at all
    ],
)
def test_bot_and_link_preview_user_agents_are_recognised(user_agent: str, bot: bool) -> None:
    assert BotDetector().is_bot(user_agent) is bot


def test_same_visitor_same_link_within_the_window_is_a_duplicate() -> None:
    window = DuplicateWindow(window_ms=30_000)
    assert window.seen("v1", "code", 1_000) is False
    assert window.seen("v1", "code", 30_999) is True  # 1 ms before the window closes
    assert window.seen("v1", "code", 31_000) is False  # the window has closed: counted again
    assert window.seen("v1", "code", 31_001) is True


def test_other_visitors_and_other_links_are_not_duplicates() -> None:
    window = DuplicateWindow(window_ms=30_000)
    assert window.seen("v1", "a", 0) is False
    assert window.seen("v2", "a", 1) is False
    assert window.seen("v1", "b", 2) is False


def test_duplicates_do_not_extend_the_window() -> None:
    window = DuplicateWindow(window_ms=10)
    assert window.seen("v", "c", 0) is False
    assert window.seen("v", "c", 9) is True
    assert window.seen("v", "c", 10) is False


def test_a_zero_window_never_flags_duplicates() -> None:
    window = DuplicateWindow(window_ms=0)
    assert window.seen("v", "c", 0) is False
    assert window.seen("v", "c", 0) is False


def test_expired_entries_are_pruned_and_the_size_is_bounded() -> None:
    window = DuplicateWindow(window_ms=10, max_entries=3)
    for n in range(5):
        window.seen(f"v{n}", "c", n)
    assert len(window) <= 3
    window.seen("late", "c", 1_000)
    assert len(window) == 1
