"""The pieces of the redirect: the event on the wire, the Location, cookies, parameters."""

from __future__ import annotations

import pytest

from afflux.clicks.links import Link, prepare
from afflux.clicks.quality import UserAgentInfo
from afflux.clicks.redirect import (
    RandomHex,
    click_event,
    cookie_value,
    declined_page,
    not_found_page,
    set_flags,
    tracking_params,
)
from afflux.clicks.shipper import encode_event
from afflux.clicks.visitor_cookie import VisitorSeal, visitor_id_of
from afflux.shared.core.ids import derived_id, new_click_id, visitor_of_click
from afflux.shared.events import ClickRecorded
from afflux.shared.wire import decode_record

pytestmark = pytest.mark.unit

LINK = Link("abc123", "creator-1", "shop", "https://shop.example.com/p?x=1", True, 0)


def test_the_event_dict_is_a_valid_click_recorded_with_a_derived_id() -> None:
    click_id = new_click_id("v_visitor")
    agent = UserAgentInfo("Chrome", "131", is_bot=False)
    event = click_event(click_id, LINK, "v_visitor", 1_700_000_000_000, "h", agent, None)
    event["sub_ids"], event["utm"] = {"sub1": "a"}, {"utm_source": "ig"}
    (decoded,) = decode_record(encode_event(event))
    assert isinstance(decoded, ClickRecorded)
    assert decoded.event_id == derived_id("click", click_id)
    assert decoded.click_id == click_id
    assert visitor_of_click(click_id) == "v_visitor"
    assert (decoded.link_code, decoded.affiliate_id, decoded.campaign_id) == (
        "abc123",
        "creator-1",
        "shop",
    )
    assert decoded.sub_ids == {"sub1": "a"}
    assert decoded.utm == {"utm_source": "ig"}
    assert (decoded.user_agent, decoded.ua_family, decoded.ua_version) == ("", "Chrome", "131")
    assert (decoded.flags, decoded.flagged) == ((), False)


@pytest.mark.parametrize(
    ("flags", "is_bot", "is_duplicate"),
    [
        (("bot",), True, False),
        (("duplicate",), False, True),
        (("ip_duplicate", "rate"), False, True),  # any reason but bot reads as is_duplicate
        (("embedded",), False, True),
        (("bot", "rate", "embedded"), True, True),
    ],
)
def test_flagged_event_dicts_decode_with_compatible_booleans(
    flags: tuple[str, ...], is_bot: bool, is_duplicate: bool
) -> None:
    agent = UserAgentInfo("curl", "8", is_bot=True)
    event = click_event(new_click_id("v_v"), LINK, "v_v", 1_700_000_000_000, "h", agent, None)
    set_flags(event, flags)
    (decoded,) = decode_record(encode_event(event))
    assert isinstance(decoded, ClickRecorded)
    assert (decoded.flags, decoded.is_bot, decoded.is_duplicate) == (flags, is_bot, is_duplicate)
    assert decoded.flagged
    assert decoded.reasons == flags


def test_an_old_click_event_with_a_raw_user_agent_and_no_flags_still_decodes() -> None:
    old = {
        "event_id": "e1",
        "type": "ClickRecorded",
        "occurred_at": 1_700_000_000_000,
        "click_id": "v_a.1",
        "link_code": "abc",
        "affiliate_id": "creator-1",
        "campaign_id": "shop",
        "visitor_id": "v_a",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36",
        "is_duplicate": True,
    }
    decoded = ClickRecorded.model_validate(old)
    assert decoded.user_agent.startswith("Mozilla/5.0")
    assert (decoded.flags, decoded.reasons, decoded.flagged) == ((), ("duplicate",), True)


@pytest.mark.parametrize(
    ("destination", "location"),
    [
        ("https://s.example.com/p", "https://s.example.com/p?afx_click=CID"),
        ("https://s.example.com/p?x=1", "https://s.example.com/p?x=1&afx_click=CID"),
        ("https://s.example.com/p?", "https://s.example.com/p?afx_click=CID"),
        ("https://s.example.com/p?x=1#top", "https://s.example.com/p?x=1&afx_click=CID#top"),
        ("https://s.example.com/#/spa?y=2", "https://s.example.com/?afx_click=CID#/spa?y=2"),
    ],
)
def test_location_keeps_the_destination_query_and_fragment(destination: str, location: str) -> None:
    target = prepare(Link("c", "a", "k", destination, True, 0))
    assert f"{target.head}CID{target.tail}" == location


VISITOR = "v_" + "0123456789abcdef" * 2
SEAL = VisitorSeal(b"the service's secret")
SEALED = SEAL.cookie_value(VISITOR)
OTHER = "v_" + "fedcba9876543210" * 2


def visitor_from(cookie: str) -> str | None:
    value = cookie_value(cookie)
    return SEAL.visitor_of(value) if value is not None else None


@pytest.mark.parametrize(
    ("cookie", "visitor"),
    [
        (f"afx_vid={SEALED}", VISITOR),
        (f"other=1; afx_vid={SEALED}; more=2", VISITOR),
        (f'afx_vid="{SEALED}"', VISITOR),
        (f"xafx_vid={SEALED}", None),  # another cookie whose name ends the same
        # a well-formed id without the seal: anyone who saw a click id could send it
        (f"afx_vid={VISITOR}", None),
        (f"afx_vid={VISITOR}~", None),
        (f"afx_vid={VISITOR}~{SEALED.partition('~')[2][:-1]}", None),  # seal cut short
        (f"afx_vid={OTHER}~{SEALED.partition('~')[2]}", None),  # another visitor's seal
        (f"afx_vid={VisitorSeal(b'another secret').cookie_value(VISITOR)}", None),
        (f"afx_vid={SEALED.upper()}", None),  # the redirect writes lowercase hex
        (f"afx_vid={SEALED}0", None),  # too long
        ("afx_vid=v_<script>", None),
        ("afx_vid=", None),
        ("afx_vid=x", None),
        ("afx_vid=" + "a" * 65, None),
    ],
)
def test_visitor_cookie_names_a_visitor_only_when_this_service_sealed_it(
    cookie: str, visitor: str | None
) -> None:
    assert visitor_from(cookie) == visitor


def test_a_sealed_cookie_holds_the_visitor_id_a_merchant_page_reads() -> None:
    assert visitor_id_of(SEALED) == VISITOR
    assert visitor_id_of(VISITOR) == VISITOR


def test_sub_ids_and_utm_are_taken_other_parameters_ignored() -> None:
    sub_ids, utm = tracking_params(
        b"sub1=a&sub5=e&sub6=no&utm_source=ig&utm_campaign=spring%20sale&ref=x"
    )
    assert sub_ids == {"sub1": "a", "sub5": "e"}
    assert utm == {"utm_source": "ig", "utm_campaign": "spring sale"}


def test_not_found_page_escapes_the_code() -> None:
    page = not_found_page('<script>alert("x")</script>').decode()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_a_declined_prefetch_page_sends_the_person_on_to_the_same_link() -> None:
    """Shown by an in-app browser that kept it, it makes the tap a real click: the same
    code and query, nothing the query held able to leave the attribute."""
    page = declined_page("abc123", b"sub1=a%20b&utm_source=ig").decode()
    assert (
        '<meta http-equiv="refresh" content="0;url=/c/abc123?sub1=a%20b&amp;utm_source=ig">' in page
    )
    assert '<a href="/c/abc123?sub1=a%20b&amp;utm_source=ig">Open the link</a>' in page
    hostile = declined_page("abc123", b'x="><script>alert(1)</script>\xff').decode()
    assert "<script>" not in hostile
    assert '"' not in hostile.split("url=", 1)[1].split('"', 1)[0]
    assert declined_page("abc123", b"").decode().count('/c/abc123"') == 2  # no "?" added


def test_random_hex_gives_fresh_digits_of_the_asked_length_across_refills() -> None:
    random = RandomHex(size=64)
    ids = [random.hex(8) for _ in range(1_000)] + [random.hex(16) for _ in range(100)]
    assert {len(i) for i in ids[:1_000]} == {16}
    assert {len(i) for i in ids[1_000:]} == {32}
    assert set("".join(ids)) <= set("0123456789abcdef")
    assert len(set(ids)) == len(ids)  # 64- and 128-bit draws: a repeat means reused bytes
    assert len(random.hex(100)) == 200  # more than one refill holds
