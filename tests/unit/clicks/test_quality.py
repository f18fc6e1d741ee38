"""Click quality: bots, embedded requests, per-visitor and per-IP duplicates, IP rate."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from afflux.clicks.quality import (
    MAX_COUNT,
    PRUNE_EVERY,
    BotDetector,
    CampaignIpWindows,
    ClickQuality,
    CountedKeys,
    ExpiringKeys,
    IpWindow,
    RateCounter,
    fetched_ahead,
    parse_user_agent,
    top_level_navigation,
)
from afflux.clicks.settings import ClicksSettings
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
OTHER_BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
HOUR = 3_600_000


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
        ("node", True),  # Node's built-in fetch
        ("undici", True),
        ("HTTPie/3.2.2", True),
        ("Dart/3.3 (dart:io)", True),
        ("reqwest/0.12.4", True),
        ("Deno/1.40.2", True),
        ("Mozilla/5.0 zgrab/0.x", True),
        ("masscan/1.3 (https://github.com/robertdavidgraham/masscan)", True),
        ("Mozilla/5.0 (compatible; GoogleOther)", True),
        ("Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)", True),
        ("Mediapartners-Google", True),
        ("Iframely/1.3.1 (+https://iframely.com/docs/about)", True),
        (
            "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)",
            True,
        ),
        # Real browsers and in-app browsers stay people.
        (OTHER_BROWSER, False),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            False,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
            False,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Mobile/15E148 Instagram 334.0.0.0 (iPhone15,2; iOS 17_5)",
            False,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.0;FBBV/1]",
            False,
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/125.0 Mobile Safari/537.36 musical_ly_2023405020 BytedanceWebview/d8a21c6",
            False,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.5 Safari/605.1.15",
            False,
        ),
    ],
)
def test_bot_and_link_preview_user_agents_are_recognised(user_agent: str, bot: bool) -> None:
    assert BotDetector().is_bot(user_agent) is bot


@pytest.mark.parametrize(
    ("user_agent", "family", "version"),
    [
        (BROWSER, "Chrome", "126"),
        (OTHER_BROWSER, "Firefox", "128"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
            "Edge",
            "131",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari",
            "17",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Mobile/15E148 Instagram 339.0.3.12.91",
            "Instagram",  # an in-app browser, before the WebKit it runs on
            "339",
        ),
        ("curl/8.5.0", "curl", "8"),  # not a browser: its first product token
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Googlebot",
            "2",
        ),
        ("", "", ""),
        ("something", "Other", ""),
        # A version of 80 digits is cut, as a product token's always was.
        ("Mozilla/5.0 Chrome/" + "9" * 80, "Chrome", "9" * 8),
        ("curl/" + "9" * 80, "curl", "9" * 8),
    ],
)
def test_the_user_agent_is_reduced_to_family_and_major_version(
    user_agent: str, family: str, version: str
) -> None:
    info = parse_user_agent(user_agent)
    assert (info.family, info.version) == (family, version)


@dataclass(frozen=True)
class FetchCase:
    mode: str | None
    dest: str | None
    counts: bool


@pytest.mark.parametrize(
    "case",
    [
        FetchCase("navigate", "document", True),  # a person following the link
        FetchCase(None, None, True),  # an older client without Fetch Metadata
        FetchCase("no-cors", "image", False),  # <img src=...>: cookie stuffing
        FetchCase("navigate", "iframe", False),  # a (hidden) iframe
        FetchCase("navigate", "frame", False),
        FetchCase("no-cors", "script", False),
        FetchCase("cors", "empty", False),  # fetch() from a page
        FetchCase("no-cors", "empty", False),
        FetchCase("navigate", None, False),  # half the metadata: not a document navigation
        FetchCase(None, "document", False),
        FetchCase("navigate", "embed", False),
        FetchCase("navigate", "object", False),
    ],
    ids=lambda c: f"{c.mode}-{c.dest}",
)
def test_only_a_top_level_navigation_counts(case: FetchCase) -> None:
    assert top_level_navigation(case.mode, case.dest) is case.counts


@pytest.mark.parametrize(
    ("headers", "ahead"),
    [
        ({"sec_purpose": "prefetch"}, True),  # speculation rules, <link rel=prefetch>
        ({"sec_purpose": "prefetch;prerender"}, True),  # a prerender
        ({"sec_purpose": "prefetch;anonymous-client-ip"}, True),  # private prefetch proxy
        ({"sec_purpose": " Prefetch "}, True),
        ({"purpose": "prefetch"}, True),  # older Chrome
        ({"x_purpose": "preview"}, True),  # Safari's page previews
        ({"x_moz": "prefetch"}, True),  # older Firefox
        ({}, False),  # a person's click
        ({"sec_purpose": "navigate"}, False),
        ({"purpose": "prefetched-data"}, False),  # a token, not a substring
    ],
)
def test_a_fetch_ahead_of_a_visit_is_told_by_its_purpose_headers(
    headers: dict[str, str], ahead: bool
) -> None:
    given = {"sec_purpose": None, "purpose": None, "x_purpose": None, "x_moz": None, **headers}
    assert fetched_ahead(**given) is ahead


def quality(
    *,
    visitor_window_ms: int = 30_000,
    ip_window_ms: int = HOUR,
    ip_agents: int = 4,
    rate_per_minute: int = 0,
    max_entries: int = 1_000,
) -> ClickQuality:
    return ClickQuality(
        visitor_window_ms=visitor_window_ms,
        ip_window=lambda campaign, now: IpWindow(ip_window_ms, ip_agents),
        rate_per_minute=rate_per_minute,
        max_entries=max_entries,
    )


def flags(
    q: ClickQuality,
    now: int,
    *,
    visitor: str = "v1",
    creator: str = "creator",
    campaign: str = "shop",
    ip: str = "ip1",
    ua: str = BROWSER,
    bot: bool = False,
    navigation: bool = True,
) -> tuple[str, ...]:
    return q.flags(
        bot=bot,
        navigation=navigation,
        visitor=visitor,
        creator=creator,
        campaign_id=campaign,
        ip_hash=ip,
        agent=parse_user_agent(ua),
        now_ms=now,
    )


def test_same_visitor_same_creator_within_the_window_is_a_duplicate() -> None:
    q = quality(ip_window_ms=0)
    assert flags(q, 1_000) == ()
    assert flags(q, 30_999) == ("duplicate",)  # 1 ms before the window closes
    assert flags(q, 31_000) == ()  # the window has closed: counted again
    assert flags(q, 31_001) == ("duplicate",)


def test_other_visitors_creators_and_campaigns_are_not_visitor_duplicates() -> None:
    q = quality(ip_window_ms=0)
    assert flags(q, 0, visitor="v1", creator="a") == ()
    assert flags(q, 1, visitor="v2", creator="a") == ()
    assert flags(q, 2, visitor="v1", creator="b") == ()
    assert flags(q, 3, visitor="v1", creator="a", campaign="other") == ()


def test_duplicates_do_not_extend_the_window() -> None:
    q = quality(visitor_window_ms=10, ip_window_ms=0)
    assert flags(q, 0) == ()
    assert flags(q, 9) == ("duplicate",)
    assert flags(q, 10) == ()


def test_a_zero_visitor_window_never_flags_duplicates() -> None:
    q = quality(visitor_window_ms=0, ip_window_ms=0)
    assert flags(q, 0) == ()
    assert flags(q, 0) == ()


@dataclass(frozen=True)
class IpCase:
    name: str
    second: dict[str, object]  # the second click's differences from the first (at 0)
    expect: tuple[str, ...]


@pytest.mark.parametrize(
    "case",
    [
        # No cookie: every click a new visitor; the IP + user agent still ties them.
        IpCase("new visitor, same IP and UA", {"visitor": "v2", "at": 1}, ("ip_duplicate",)),
        IpCase("1 ms before the hour ends", {"visitor": "v2", "at": HOUR - 1}, ("ip_duplicate",)),
        IpCase("the hour has ended", {"visitor": "v2", "at": HOUR}, ()),
        IpCase("same visitor too", {"at": 1}, ("duplicate", "ip_duplicate")),
        IpCase("other user agent", {"visitor": "v2", "ua": OTHER_BROWSER, "at": 1}, ()),
        IpCase("other IP", {"visitor": "v2", "ip": "ip2", "at": 1}, ()),
        IpCase("other creator", {"visitor": "v2", "creator": "other", "at": 1}, ()),
        IpCase("other campaign", {"visitor": "v2", "campaign": "other", "at": 1}, ()),
    ],
    ids=lambda c: c.name,
)
def test_the_ip_and_user_agent_window(case: IpCase) -> None:
    q = quality()
    assert flags(q, 0) == ()
    second = dict(case.second)
    at = second.pop("at")
    assert isinstance(at, int)
    assert flags(q, at, **second) == case.expect  # type: ignore[arg-type]


def test_the_ip_window_comes_from_the_campaign_and_zero_switches_it_off() -> None:
    q = quality(ip_window_ms=0)
    assert flags(q, 0, visitor="v1") == ()
    assert flags(q, 1, visitor="v2") == ()


def test_forty_cookieless_clicks_from_one_ip_and_browser_count_once() -> None:
    q = quality()
    results = [flags(q, n * 1_000, visitor=f"v{n}") for n in range(40)]
    assert results.count(()) == 1
    assert all("ip_duplicate" in r for r in results[1:])


def chrome(version: str, platform: str = "Windows NT 10.0; Win64; x64") -> str:
    return (
        f"Mozilla/5.0 ({platform}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{version} Safari/537.36"
    )


# Five browsers of distinct families a household could have behind its one address.
HOUSEHOLD = (
    chrome("126.0.0.0"),
    OTHER_BROWSER,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    chrome("131.0.0.0") + " Edg/131.0.2903.86",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
)


@pytest.mark.parametrize(
    ("first", "second", "expect"),
    [
        pytest.param(chrome("120.0.6099.1"), chrome("120.0.6099.2"), ("ip_duplicate",), id="build"),
        pytest.param(chrome("120.0.0.0"), chrome("120.1.6099.109"), ("ip_duplicate",), id="minor"),
        pytest.param(
            chrome("120.0.6099.1"),
            chrome("120.0.6099.1", "Macintosh; Intel Mac OS X 10_15_7"),
            ("ip_duplicate",),
            id="same-major-other-platform",
        ),
        pytest.param(chrome("120.0.6099.1"), chrome("121.0.6099.1"), (), id="other-major"),
        pytest.param(chrome("120.0.6099.1"), OTHER_BROWSER, (), id="other-family"),
    ],
)
def test_the_ip_window_keys_on_the_browser_family_and_major_version(
    first: str, second: str, expect: tuple[str, ...]
) -> None:
    q = quality()
    assert flags(q, 0, visitor="v1", ua=first) == ()
    assert flags(q, 1, visitor="v2", ua=second) == expect


def test_thirty_clicks_rotating_the_chrome_build_from_one_address_count_once() -> None:
    q = quality(rate_per_minute=30)
    results = [
        flags(q, n * 14_000, visitor=f"v{n}", ua=chrome(f"120.0.6099.{n + 1}")) for n in range(30)
    ]
    assert results[0] == ()
    assert all("ip_duplicate" in r for r in results[1:])


@pytest.mark.parametrize("bound", [1, 2, 4])
def test_an_address_gets_at_most_the_bound_of_counted_clicks_of_a_creator_whatever_the_browser(
    bound: int,
) -> None:
    q = quality(ip_agents=bound)
    results = [flags(q, n, visitor=f"v{n}", ua=ua) for n, ua in enumerate(HOUSEHOLD)]
    assert results == [()] * bound + [("ip_duplicate",)] * (len(HOUSEHOLD) - bound)


@dataclass(frozen=True)
class BoundCase:
    name: str
    last: dict[str, object]  # the click after the bound's four, its differences
    expect: tuple[str, ...]


@pytest.mark.parametrize(
    "case",
    [
        BoundCase("a fifth browser", {}, ("ip_duplicate",)),
        BoundCase("1 ms before the window ends", {"at": HOUR - 1}, ("ip_duplicate",)),
        # The window runs from the first counted click, not the last.
        BoundCase("the window has ended", {"at": HOUR}, ()),
        BoundCase("another address", {"ip": "ip2"}, ()),
        BoundCase("another creator", {"creator": "other"}, ()),
        BoundCase("another campaign of the creator", {"campaign": "other"}, ()),
        BoundCase("the fifth visitor again", {"visitor": "v3"}, ("duplicate", "ip_duplicate")),
    ],
    ids=lambda c: c.name,
)
def test_the_bound_on_an_address_and_creator_within_the_ip_window(case: BoundCase) -> None:
    q = quality(ip_agents=4)
    for n, ua in enumerate(HOUSEHOLD[:4]):
        assert flags(q, n * 1_000, visitor=f"v{n}", ua=ua) == ()
    last: dict[str, object] = {"visitor": "v9", "ua": HOUSEHOLD[4], "at": 10_000}
    last.update(case.last)
    at = last.pop("at")
    assert isinstance(at, int)
    assert flags(q, at, **last) == case.expect  # type: ignore[arg-type]


def test_once_the_window_has_ended_the_address_gets_the_bound_again() -> None:
    q = quality(ip_agents=2)
    first = [flags(q, n, visitor=f"a{n}", ua=ua) for n, ua in enumerate(HOUSEHOLD[:3])]
    again = [flags(q, HOUR + n, visitor=f"b{n}", ua=ua) for n, ua in enumerate(HOUSEHOLD[2:])]
    assert first == [(), (), ("ip_duplicate",)]
    assert again == [(), (), ("ip_duplicate",)]


def test_a_script_rotating_major_versions_gets_the_bound_not_thirty_clicks() -> None:
    q = quality(ip_agents=4, rate_per_minute=30)
    results = [
        flags(q, n * 14_000, visitor=f"v{n}", ua=chrome(f"{100 + n}.0.0.0")) for n in range(30)
    ]
    assert results.count(()) == 4
    assert results[4:] == [("ip_duplicate",)] * 26


def test_a_zero_bound_leaves_an_address_unbounded() -> None:
    q = quality(ip_agents=0)
    results = [flags(q, n, visitor=f"v{n}", ua=chrome(f"{100 + n}.0.0.0")) for n in range(30)]
    assert results == [()] * 30
    assert len(q.address_links) == 0  # nothing is counted: no memory spent
    assert flags(q, 30, visitor="v30", ua=chrome("100.0.1.2")) == ("ip_duplicate",)


def test_bot_embedded_and_flagged_clicks_do_not_count_towards_the_bound() -> None:
    q = quality(ip_agents=2)
    for n in range(10):
        assert flags(q, n, visitor=f"b{n}", ua=chrome(f"{100 + n}.0"), bot=True) == ("bot",)
        assert flags(q, n, visitor=f"e{n}", ua=chrome(f"{100 + n}.0"), navigation=False) == (
            "embedded",
        )
    assert flags(q, 10, visitor="v1", ua=HOUSEHOLD[0]) == ()
    assert flags(q, 11, visitor="v1", ua=HOUSEHOLD[1]) == ("duplicate",)  # not counted
    assert flags(q, 40_000, visitor="v2", ua=HOUSEHOLD[1]) == ()
    assert flags(q, 40_001, visitor="v3", ua=HOUSEHOLD[2]) == ("ip_duplicate",)


def test_a_zero_ip_window_switches_the_bound_off_too() -> None:
    q = quality(ip_window_ms=0, ip_agents=1)
    assert [flags(q, n, visitor=f"v{n}", ua=ua) for n, ua in enumerate(HOUSEHOLD)] == [()] * 5


@dataclass(frozen=True)
class CountCase:
    name: str
    adds: tuple[int, ...]  # times of the adds, each with a 10 ms window
    at: int
    count: int


@pytest.mark.parametrize(
    "case",
    [
        CountCase("never counted", (), 0, 0),
        CountCase("counted once", (0,), 9, 1),
        CountCase("counted three times", (0, 3, 9), 9, 3),
        CountCase("the window has ended", (0, 3), 10, 0),
        # An add once the window has ended opens a new one from there.
        CountCase("a new window", (0, 3, 10), 19, 1),
        CountCase("the new window has ended", (0, 3, 10), 20, 0),
    ],
    ids=lambda c: c.name,
)
def test_counted_keys_count_within_the_window_of_their_first_count(case: CountCase) -> None:
    keys = CountedKeys(max_entries=100)
    for at in case.adds:
        keys.add(7, at + 10, at)
    assert keys.count(7, case.at) == case.count
    assert keys.count(8, case.at) == 0


def test_a_reopened_counted_key_is_the_newest_so_the_bound_drops_older_ones_first() -> None:
    keys = CountedKeys(max_entries=2)
    keys.add(1, 10, 0)
    keys.add(2, 100, 5)
    keys.add(1, 110, 10)  # its window ended at 10: a new one from here
    keys.add(3, 120, 20)  # over the bound: the oldest window (key 2) goes
    assert (keys.count(1, 20), keys.count(2, 20), keys.count(3, 20)) == (1, 0, 1)


def test_counted_keys_are_bounded_pruned_and_stop_counting_at_the_maximum() -> None:
    keys = CountedKeys(max_entries=3)
    for n in range(5):
        keys.add(n, n + 10, n)
    assert len(keys) == 3  # the oldest dropped as the bound is passed
    assert keys.count(0, 5) == 0
    assert keys.count(4, 5) == 1
    late = CountedKeys(max_entries=1_000)
    for n in range(10):
        late.add(n, 10, 0)
    for n in range(PRUNE_EVERY):
        late.add(100 + n, 2_000, 1_000)
    assert len(late) == PRUNE_EVERY  # the ten expired keys pruned at the 64th write
    busy = CountedKeys(max_entries=10)
    for _ in range(MAX_COUNT + 5):
        busy.add(1, 10**13, 0)
    assert busy.count(1, 0) == MAX_COUNT
    assert busy.count(1, 10**13 - 1) == MAX_COUNT  # the count never spills into the expiry
    assert busy.count(1, 10**13) == 0


@dataclass(frozen=True)
class RateCase:
    name: str
    times: tuple[int, ...]
    over: tuple[bool, ...]


@pytest.mark.parametrize(
    "case",
    [
        RateCase("at the limit", (0, 1, 2), (False, False, False)),
        RateCase("one over the limit", (0, 1, 2, 3), (False, False, False, True)),
        # The minute runs from the key's first request: 60 s later it starts again.
        RateCase("next minute", (0, 1, 2, 60_000), (False, False, False, False)),
        RateCase("1 ms before the minute ends", (0, 1, 2, 59_999), (False, False, False, True)),
    ],
    ids=lambda c: c.name,
)
def test_rate_counts_requests_per_ip_per_minute(case: RateCase) -> None:
    counter = RateCounter(max_per_minute=3, max_entries=100)
    assert tuple(counter.over(1, at) for at in case.times) == case.over


def test_rate_is_across_creators_and_flags_counted_and_bot_requests_alike() -> None:
    q = quality(rate_per_minute=2, ip_window_ms=0, visitor_window_ms=0)
    assert flags(q, 0, creator="a") == ()
    assert flags(q, 1, creator="b") == ()
    assert flags(q, 2, creator="c") == ("rate",)
    assert flags(q, 3, creator="d", bot=True) == ("bot", "rate")
    assert flags(q, 4, creator="e", ip="ip2") == ()  # another address has its own minute


def test_a_zero_rate_limit_never_flags() -> None:
    assert not any(RateCounter(0, 100).over(1, n) for n in range(100))


def test_bot_and_embedded_requests_never_open_a_window() -> None:
    q = quality()
    assert flags(q, 0, bot=True) == ("bot",)
    assert flags(q, 1, navigation=False) == ("embedded",)
    assert flags(q, 2, bot=True, navigation=False) == ("bot", "embedded")
    assert flags(q, 3) == ()  # the person's own click still counts
    assert flags(q, 4, navigation=False) == ("embedded",)  # not checked against windows


def test_a_flagged_click_does_not_open_the_other_window() -> None:
    q = quality(rate_per_minute=1, visitor_window_ms=0)
    assert flags(q, 0, ip="busy", creator="a") == ()
    assert flags(q, 1, ip="busy", creator="b") == ("rate",)  # b's IP window was not opened
    assert flags(q, 60_001, ip="busy", creator="b") == ()


def test_tables_are_bounded_and_expired_entries_pruned() -> None:
    keys = ExpiringKeys(max_entries=3)
    for n in range(5):
        keys.open(n, n + 10, n)
    assert len(keys) == 3  # the oldest dropped as the bound is passed
    assert not keys.is_open(0, 5)
    assert keys.is_open(4, 5)
    late = ExpiringKeys(max_entries=1_000)
    for n in range(10):
        late.open(n, 10, 0)
    for n in range(PRUNE_EVERY):
        late.open(100 + n, 2_000, 1_000)
    # The 64th write pruned the ten expired keys; ten more were written after it.
    assert len(late) == PRUNE_EVERY
    counter = RateCounter(max_per_minute=5, max_entries=3)
    for n in range(5):
        counter.over(n, n)
    assert len(counter) == 3


def test_every_table_of_the_classifier_stays_within_max_entries() -> None:
    q = quality(rate_per_minute=1_000, max_entries=50)
    for n in range(500):
        flags(q, n, visitor=f"v{n}", ip=f"ip{n}")
    assert max(len(q.visitors), len(q.addresses), len(q.address_links), len(q.rates)) <= 50


def version(
    number: int, effective_from: int, window_s: int | None, agents: int | None = None
) -> TermsVersion:
    terms = CampaignTerms(
        campaign_id="shop",
        merchant_id="m",
        currency="EUR",
        ip_duplicate_window_s=window_s,
        ip_agents_per_window=agents,
    )
    return TermsVersion(version=number, effective_from=effective_from, published_at=0, terms=terms)


DEFAULT = IpWindow(7_000, 4)


@dataclass(frozen=True)
class WindowCase:
    name: str
    versions: tuple[TermsVersion, ...]
    at: int
    window: IpWindow


@pytest.mark.parametrize(
    "case",
    [
        WindowCase("unset: the service default", (version(1, 0, None),), 5, DEFAULT),
        WindowCase("set in the terms", (version(1, 0, 60),), 5, IpWindow(60_000, 4)),
        WindowCase("zero: off", (version(1, 0, 0),), 5, IpWindow(0, 4)),
        WindowCase("before the first version", (version(1, 10, 60),), 5, IpWindow(60_000, 4)),
        # version 2, published later to start before version 1's start: before it, the
        # first published (version 2 applied here, as it no longer did anywhere else)
        WindowCase(
            "before a later version starting first",
            (version(1, 10, 60), version(2, 7, 0)),
            5,
            IpWindow(60_000, 4),
        ),
        WindowCase(
            "the version in force",
            (version(1, 0, 60), version(2, 10, 120)),
            9,
            IpWindow(60_000, 4),
        ),
        WindowCase(
            "the next version",
            (version(1, 0, 60), version(2, 10, 120)),
            10,
            IpWindow(120_000, 4),
        ),
        WindowCase("the terms' bound", (version(1, 0, None, 2),), 5, IpWindow(7_000, 2)),
        WindowCase("the terms' zero bound", (version(1, 0, 60, 0),), 5, IpWindow(60_000, 0)),
        WindowCase(
            "the bound of the version in force",
            (version(1, 0, None, 2), version(2, 10, None)),
            10,
            DEFAULT,
        ),
    ],
    ids=lambda c: c.name,
)
def test_the_campaign_ip_window_follows_the_terms_in_force(case: WindowCase) -> None:
    windows = CampaignIpWindows(DEFAULT, lambda campaign: case.versions)
    assert windows("shop", case.at) == case.window
    assert windows("shop", case.at) == case.window  # from the cache


def test_the_cached_window_changes_when_a_later_version_takes_effect() -> None:
    windows = CampaignIpWindows(DEFAULT, lambda c: (version(1, 0, 60, 1), version(2, 10, 120)))
    assert windows("shop", 5) == IpWindow(60_000, 1)
    assert windows("shop", 10) == IpWindow(120_000, 4)


def test_an_unknown_campaign_gets_the_default_window() -> None:
    def unknown(campaign: str) -> tuple[TermsVersion, ...]:
        raise LookupError(campaign)

    assert CampaignIpWindows(DEFAULT, unknown)("nope", 0) == DEFAULT


def test_each_campaign_bounds_an_address_with_its_own_terms() -> None:
    bounds = {"strict": IpWindow(HOUR, 1), "shop": IpWindow(HOUR, 4)}
    q = ClickQuality(
        visitor_window_ms=0,
        ip_window=lambda campaign, now: bounds[campaign],
        rate_per_minute=0,
        max_entries=1_000,
    )

    def click(campaign: str, creator: str, n: int) -> tuple[str, ...]:
        return q.flags(
            bot=False,
            navigation=True,
            visitor=f"v{n}",
            creator=creator,
            campaign_id=campaign,
            ip_hash="ip1",
            agent=parse_user_agent(HOUSEHOLD[n]),
            now_ms=n,
        )

    assert [click("strict", "a", n) for n in range(3)] == [()] + [("ip_duplicate",)] * 2
    assert [click("shop", "b", n) for n in range(5)] == [()] * 4 + [("ip_duplicate",)]


@pytest.mark.parametrize(("value", "bound"), [(None, 4), ("2", 2), ("0", 0)])
def test_the_bound_is_the_ip_agents_per_window_setting(
    monkeypatch: pytest.MonkeyPatch, value: str | None, bound: int
) -> None:
    if value is not None:
        monkeypatch.setenv("AFFLUX_CLICKS_IP_AGENTS_PER_WINDOW", value)
    assert ClicksSettings(env="development").clicks_ip_agents_per_window == bound


def test_a_negative_bound_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFLUX_CLICKS_IP_AGENTS_PER_WINDOW", "-1")
    with pytest.raises(ValidationError, match="clicks_ip_agents_per_window"):
        ClicksSettings(env="development")
