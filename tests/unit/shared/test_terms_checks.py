"""What campaign terms must pass to be published (afflux.shared.core.terms_checks): no
coupon code or survey handle given twice once normalised, allowed domains that are
sites, checked on the request model while published terms still decode on a replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from afflux.clicks.destinations import BadDestination, check_destination
from afflux.shared.campaign_file import CampaignEntry, InvalidCampaignFile, load_campaign_file
from afflux.shared.core.terms import (
    MAX_TERMS_TIME_MS,
    MAX_TERMS_VERSION,
    CampaignTerms,
    SurveyTerms,
    TermsVersion,
    normalize_domain,
)
from afflux.shared.core.terms_checks import (
    MAX_MILESTONES,
    MAX_TIERS,
    PUBLIC_SUFFIXES,
    coupons_problem,
    domain_problem,
    handles_problem,
    key_collision,
    publish_problems,
)
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory, apply_record
from afflux.shared.wire import decode_record

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {"campaign_id": "c-1", "merchant_id": "m-1", "currency": "EUR"}

# ---------------------------------------------------------------- allowed domains

ALLOWED = [
    "example.com",
    "shop.example.com",
    "Shop.Example.COM",  # compared lower-cased
    " shop.example.com ",  # and trimmed
    "example.com.",  # a fully qualified name: one trailing dot
    "example.co.uk",  # a site below a public suffix
    "creator.github.io",
    "ab--cd.example.com",
    "123.example.com",  # a numeric label, not the last one
    "xn--bcher-kva.de",  # bücher.de in punycode
    "example.xn--p1ai",  # an internationalised top-level domain
    f"{'a' * 63}.com",
    ".".join(["a" * 61] * 4),  # 247 characters
]


@pytest.mark.parametrize("domain", ALLOWED)
def test_a_site_is_an_allowed_domain(domain: str) -> None:
    assert domain_problem(domain) is None


REFUSED = [
    # A public suffix would let a link redirect to every site below it.
    ("com", '"com" is a public suffix, not a site (a bare top-level domain is always refused)'),
    ("COM.", '"COM." is a public suffix, not a site (a bare top-level domain'),
    ("localhost", '"localhost" is a public suffix, not a site (a bare top-level domain'),
    ("xn--p1ai", '"xn--p1ai" is a public suffix, not a site (a bare'),
    ("co.uk", '"co.uk" is a public suffix, not a site'),
    ("com.au", '"com.au" is a public suffix, not a site'),
    ("CO.JP", '"CO.JP" is a public suffix, not a site'),
    ("com.br", '"com.br" is a public suffix, not a site'),
    ("github.io", '"github.io" is a public suffix, not a site'),
    ("myshopify.com", '"myshopify.com" is a public suffix, not a site'),
    # Not a host name alone.
    ("", "empty"),
    ("   ", "empty"),
    ("https://shop.example.com", '"https://shop.example.com" is a URL: give only its host name'),
    ("//shop.example.com", "is a URL"),
    ("shop.example.com/path", "has a path"),
    ("shop.example.com?x=1", "has a path"),
    ("shop.example.com:8443", '"shop.example.com:8443" has a port'),
    ("user@shop.example.com", "carries user information"),
    # The redirect matches subdomains already: there is no wildcard form.
    ("*.example.com", '"*.example.com": no wildcards: a domain already allows its subdomains'),
    ("*", "no wildcards"),
    # Internationalised names only as punycode.
    ("bücher.de", '"bücher.de" is not ASCII: give an internationalised name in punycode'),
    ("xn--zz.example.com", 'a label that is not valid punycode: "xn--zz"'),
    # Labels.
    (".example.com", "has an empty label"),
    ("example..com", "has an empty label"),
    ("example.com..", "has an empty label"),
    ("Example.COM..", "has an empty label"),  # one dot only is a fully qualified name's
    (".", "empty"),  # the root alone names no site
    ("-shop.example.com", "is not a host name: its labels are letters, digits and '-'"),
    ("shop-.example.com", "is not a host name"),
    ("shop_1.example.com", "is not a host name"),
    ("shop example.com", "is not a host name"),
    (f"{'a' * 64}.com", "has a label longer than 63 characters"),
    (".".join(["a" * 63] * 4), "is longer than 253 characters"),
    # Addresses and numeric top-level domains.
    ("10.0.0.1", '"10.0.0.1" is an IP address, not a host name'),
    ("::1", "is an IP address"),
    ("[::1]", "is an IP address"),
    ("example.123", "no top-level domain is numeric"),
]


@pytest.mark.parametrize(("domain", "reason"), REFUSED, ids=[d or "empty" for d, _ in REFUSED])
def test_what_is_not_a_site_is_refused_with_the_reason(domain: str, reason: str) -> None:
    problem = domain_problem(domain)
    assert problem is not None
    assert problem.startswith(reason) if reason.startswith('"') else reason in problem


def test_a_non_ascii_name_is_answered_with_its_punycode_form() -> None:
    assert '("xn--bcher-kva.de")' in (domain_problem("Bücher.de") or "")


def test_a_long_entry_is_not_echoed_whole() -> None:
    problem = domain_problem("https://" + "x" * 10_000)
    assert problem is not None
    assert len(problem) < 200


@pytest.mark.parametrize("suffix", sorted(PUBLIC_SUFFIXES))
def test_every_listed_public_suffix_is_refused_and_a_site_below_it_is_not(suffix: str) -> None:
    assert suffix == suffix.lower()
    assert len(suffix.split(".")) >= 2  # a bare top-level domain needs no entry
    assert "public suffix" in (domain_problem(suffix) or "")
    assert domain_problem(f"brand.{suffix}") is None


# One rule for the publish check, the model and the redirect: (as given, as compared).
NORMALISED = [
    ("example.com", "example.com"),
    ("Example.COM.", "example.com"),  # case, and the one dot of a fully qualified name
    ("  Shop.Example.com.\t", "shop.example.com"),  # trimmed first
    ("example.com..", "example.com.."),  # an empty label: not a fully qualified name
    ("example..com", "example..com"),
    ("com", "com"),  # a public suffix is the publish check's to refuse
    ("COM.", "com"),
    (".", ""),  # the root alone
    ("..", ".."),
    ("", ""),
    ("   ", ""),
    ("example.com .", "example.com ."),  # a dot after a space ends no name: kept
]


@pytest.mark.parametrize(("given", "compared"), NORMALISED)
def test_an_allowed_domain_is_compared_trimmed_lower_cased_without_one_trailing_dot(
    given: str, compared: str
) -> None:
    assert normalize_domain(given) == compared
    assert normalize_domain(compared) == compared  # the redirect normalises them again


@pytest.mark.parametrize(("given", "compared"), NORMALISED)
def test_the_model_holds_an_allowed_domain_as_it_is_compared(given: str, compared: str) -> None:
    terms = CampaignTerms.model_validate({**BASE, "allowed_domains": [given]})
    assert terms.allowed_domains == (compared,)


@pytest.mark.parametrize(
    ("given", "destination", "allowed"),
    [
        ("Example.COM.", "https://shop.example.com/", True),
        ("example.com", "https://shop.example.com./", True),  # the host's one dot too
        ("example.com..", "https://shop.example.com/", False),  # allows nothing
        ("example.com", "https://shop.example.com../", False),  # no host name
        ("example.com", "https://example.com../", False),
    ],
)
def test_the_redirect_reads_a_domain_and_a_host_by_the_same_rule(
    given: str, destination: str, allowed: bool
) -> None:
    domains = CampaignTerms.model_validate({**BASE, "allowed_domains": [given]}).allowed_domains
    if allowed:
        check_destination(destination, domains)
    else:
        with pytest.raises(BadDestination):
            check_destination(destination, domains)


# ---------------------------------------------------------------- keys that collapse


def test_key_collision_names_the_first_two_keys_that_normalise_alike() -> None:
    assert key_collision(["a", "b", "B", "A"], str.lower) == ("b", "B")
    assert key_collision(["a", "b"], str.lower) is None
    assert key_collision([], str.lower) is None


COUPONS = [
    (["ANNA10", "BEN15"], None),
    (["abc", "ABC"], '"abc" and "ABC" are the same code (codes are case-insensitive'),
    (["abc", "x", " Abc "], '"abc" and " Abc " are the same code'),
    (["abc\t", "abc"], '"abc\\t" and "abc" are the same code'),
    # Unicode: codes compare upper-cased, as an order's coupon_code is matched.
    (["straße", "STRASSE"], '"straße" and "STRASSE" are the same code'),
    (["\u0131", "I"], '"\u0131" and "I" are the same code'),  # dotless i
    # A code that is nothing once trimmed would match a blank coupon_code.
    (["", "A"], '"" is empty (codes are case-insensitive, surrounding spaces ignored)'),
    (["A", "  "], '"  " is empty'),
]


@pytest.mark.parametrize(("codes", "reason"), COUPONS)
def test_coupon_codes_given_twice_once_normalised_are_refused(
    codes: list[str], reason: str | None
) -> None:
    problem = coupons_problem(codes)
    assert problem == reason if reason is None else (problem or "").startswith(reason)


HANDLES = [
    (["@anna", "@ben"], None),
    (["@anna", "ANNA"], '"@anna" and "ANNA" are the same handle (handles are case-insensitive'),
    (["anna", " @Anna"], '"anna" and " @Anna" are the same handle'),
    # Handles compare casefolded, as a survey answer's handle is matched.
    (["straße", "STRASSE"], '"straße" and "STRASSE" are the same handle'),
    (["@", "anna"], '"@" is empty'),
]


@pytest.mark.parametrize(("handles", "reason"), HANDLES)
def test_survey_handles_given_twice_once_normalised_are_refused(
    handles: list[str], reason: str | None
) -> None:
    problem = handles_problem(handles)
    assert problem == reason if reason is None else (problem or "").startswith(reason)


# With Unicode's awkward cases of upper-casing and casefolding: dotless i, Kelvin sign, long s.
KEYS = ["abc", "ABC", " abc", "@Abc ", "straße", "STRASSE", "\u0131", "i", "I", "\u212a", "k"]
KEYS += ["\u017f", "s"]


@pytest.mark.parametrize("one", KEYS)
@pytest.mark.parametrize("other", KEYS)
def test_keys_refused_as_one_are_exactly_those_matched_as_one(one: str, other: str) -> None:
    """The check uses the normalisation that matching uses: two codes (handles) are
    refused as the same exactly when the terms would give one's owner to the other."""
    if one == other:
        return
    terms = CampaignTerms.model_validate({**BASE, "coupons": {one: "creator-1"}})
    survey = SurveyTerms.model_validate({"handles": {one: "creator-1"}})
    assert (coupons_problem([one, other]) is not None) == (terms.coupon_owner(other) == "creator-1")
    assert (handles_problem([one, other]) is not None) == (
        survey.handle_owner(other) == "creator-1"
    )


# ---------------------------------------------------------------- the terms as sent


def test_publish_problems_names_each_field_in_order() -> None:
    terms = {
        **BASE,
        "allowed_domains": ["shop.example.com", "com", "https://x.example.com"],
        "coupons": {"abc": "creator-1", "ABC": "creator-2"},
        "survey": {"mode": "attribute", "handles": {"@ana": "creator-1", "ANA": "creator-2"}},
    }
    assert publish_problems(terms) == (
        'allowed_domains[1]: "com" is a public suffix, not a site '
        "(a bare top-level domain is always refused)",
        'allowed_domains[2]: "https://x.example.com" is a URL: give only its host name '
        "(no scheme, path or port)",
        'coupons: "abc" and "ABC" are the same code '
        "(codes are case-insensitive, surrounding spaces ignored)",
        'survey.handles: "@ana" and "ANA" are the same handle '
        "(handles are case-insensitive, a leading @ and surrounding spaces ignored)",
    )


@pytest.mark.parametrize(
    "terms",
    [
        BASE,
        {**BASE, "allowed_domains": ["shop.example.com"], "coupons": {"A": "c", "B": "c"}},
        {**BASE, "survey": None},
        # Shapes the model refuses on its own are left to it.
        {**BASE, "allowed_domains": "com", "coupons": ["abc", "ABC"], "survey": "x"},
        {**BASE, "allowed_domains": [7], "coupons": {1: "a", "1": "b"}},
    ],
)
def test_publish_problems_passes_what_it_does_not_judge(terms: dict[str, Any]) -> None:
    assert publish_problems(terms) == ()


# ---------------------------------------------------------------- the request model


def entry_json(**terms: Any) -> str:
    return json.dumps({"effective_from": 0, "terms": {**BASE, **terms}})


@pytest.mark.parametrize(
    ("terms", "reason"),
    [
        (
            {"coupons": {"abc": "creator-1", "ABC": "creator-2"}},
            'coupons: "abc" and "ABC" are the same code (codes are case-insensitive',
        ),
        (
            {"survey": {"handles": {"@Mia": "creator-1", "mia": "creator-2"}}},
            'survey.handles: "@Mia" and "mia" are the same handle',
        ),
        ({"allowed_domains": ["com"]}, 'allowed_domains[0]: "com" is a public suffix, not a site'),
        (
            {"allowed_domains": ["shop.example.com", "*.example.com"]},
            'allowed_domains[1]: "*.example.com": no wildcards',
        ),
    ],
)
def test_the_request_model_refuses_unpublishable_terms_naming_the_field(
    terms: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        CampaignEntry.model_validate_json(entry_json(**terms))
    (error,) = raised.value.errors(include_url=False)
    assert error["loc"] == ("terms",)
    assert error["msg"].startswith(reason)


def test_the_request_model_keeps_what_the_model_normalises() -> None:
    entry = CampaignEntry.model_validate_json(
        entry_json(
            allowed_domains=[" Shop.Example.com. ", "apps.example.co.uk"],
            coupons={" anna10 ": "creator-1", "BEN15": "creator-2"},
            survey={"handles": {"@Mia": "creator-1"}},
        )
    )
    assert entry.terms.allowed_domains == ("shop.example.com", "apps.example.co.uk")
    assert entry.terms.coupons == {"ANNA10": "creator-1", "BEN15": "creator-2"}


def test_the_model_reports_its_own_errors_first() -> None:
    with pytest.raises(ValidationError) as raised:
        CampaignEntry.model_validate_json(entry_json(currency="EURO", allowed_domains=["com"]))
    assert raised.value.errors()[0]["loc"] == ("terms", "currency")


def test_terms_given_as_a_model_are_checked_too() -> None:
    terms = CampaignTerms.model_validate({**BASE, "allowed_domains": ["co.uk"]})
    with pytest.raises(ValidationError, match="public suffix"):
        CampaignEntry(terms=terms)


def test_a_terms_file_names_the_entry_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text(
        "campaigns:\n"
        "  - terms: {campaign_id: c-1, merchant_id: m-1, currency: EUR,\n"
        "            coupons: {ANNA10: creator-1, anna10: creator-2}}\n"
    )
    with pytest.raises(InvalidCampaignFile) as raised:
        load_campaign_file(path)
    assert 'campaigns.0.terms: coupons: "ANNA10" and "anna10" are the same code' in str(
        raised.value
    )


# ---------------------------------------------------------------- replay


def test_terms_published_before_the_checks_still_decode_on_a_replay() -> None:
    """CampaignTerms itself stays as lenient as it was: a record already on the
    campaigns topic with an open allowed domain or a code given twice is read as it
    was read when published (the codes merged, the last one winning)."""
    old = {**BASE, "allowed_domains": ["com"], "coupons": {"abc": "creator-1", "ABC": "creator-2"}}
    old["survey"] = {"handles": {"@ana": "creator-1", "ANA": "creator-2"}}
    record = {
        "type": "CampaignTermsPublished",
        "event_id": "terms-c-1-1",
        "occurred_at": 0,
        "campaign_id": "c-1",
        "versions": [{"version": 1, "effective_from": 0, "published_at": 0, "terms": old}],
    }
    value = json.dumps(record).encode()

    (event,) = decode_record(value)
    directory = CampaignDirectory()
    bad = apply_record(directory, value)

    assert isinstance(event, CampaignTermsPublished)
    (version,) = event.versions
    assert isinstance(version, TermsVersion)
    assert version.terms.allowed_domains == ("com",)
    assert version.terms.coupons == {"ABC": "creator-2"}
    assert bad == []
    assert directory.campaign_ids() == ["c-1"]


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("version", MAX_TERMS_VERSION, True),
        ("version", MAX_TERMS_VERSION + 1, False),
        ("version", 2**64, False),  # taken by every reader, then refused by the ledger's JSON
        ("effective_from", MAX_TERMS_TIME_MS, True),
        ("effective_from", MAX_TERMS_TIME_MS + 1, False),  # past year 9999: no date shows it
        ("published_at", 2**63, False),
    ],
)
def test_a_versions_number_and_times_are_bounded(field: str, value: int, valid: bool) -> None:
    version = {"version": 1, "effective_from": 0, "published_at": 0, field: value}
    terms = {"campaign_id": "camp", "merchant_id": "m", "currency": "EUR"}
    if valid:
        assert getattr(TermsVersion.model_validate({**version, "terms": terms}), field) == value
        return
    with pytest.raises(ValidationError):
        TermsVersion.model_validate({**version, "terms": terms})


@pytest.mark.parametrize(
    ("key", "applied"),
    [
        (b"c-1", True),  # as every publisher keys it
        (None, True),  # no key to compare (a file replayed without keys)
        (b"c-2", False),  # compaction would keep it in place of c-2's own terms
    ],
)
def test_a_campaigns_record_keyed_for_another_campaign_is_refused(
    key: bytes | None, applied: bool
) -> None:
    record = {
        "type": "CampaignTermsPublished",
        "event_id": "terms-c-1-1",
        "occurred_at": 0,
        "campaign_id": "c-1",
        "versions": [{"version": 1, "effective_from": 0, "published_at": 0, "terms": BASE}],
    }
    directory = CampaignDirectory()
    bad = apply_record(directory, json.dumps(record).encode(), key)
    if applied:
        assert bad == []
        assert directory.campaign_ids() == ["c-1"]
        return
    assert bad == [
        ("key_mismatch: record keyed b'c-2' carries the terms of campaign 'c-1'", "KeyMismatch")
    ]
    assert directory.campaign_ids() == []


# ---------------------------------------------------------------- plan size


def tiers(count: int) -> list[dict[str, Any]]:
    return [{"from_sales": n + 1, "rate": {"percent": "1"}} for n in range(count)]


def milestones(count: int) -> list[dict[str, Any]]:
    return [{"at_sales": n + 1, "bonus_minor": 100} for n in range(count)]


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        ({"tiers": tiers(MAX_TIERS)}, None),
        ({"tiers": tiers(MAX_TIERS + 1)}, f"plan.tiers: 101 tiers: at most {MAX_TIERS}"),
        ({"milestones": milestones(MAX_MILESTONES)}, None),
        (
            {"milestones": milestones(MAX_MILESTONES + 1)},
            f"plan.milestones: 101 milestones: at most {MAX_MILESTONES}",
        ),
    ],
    ids=["tiers at the bound", "one tier more", "milestones at the bound", "one milestone more"],
)
def test_a_plan_lists_at_most_the_tiers_and_milestones_afflux_prices(
    plan: dict[str, Any], reason: str | None
) -> None:
    """Every sale is priced against each of them, and a what-if prices a period in one
    step it cannot stop: 21,000 tiers held one for two minutes past its time limit."""
    raw = entry_json(plan=plan)
    if reason is None:
        assert CampaignEntry.model_validate_json(raw).terms.plan.tiers is not None
        return
    with pytest.raises(ValidationError) as raised:
        CampaignEntry.model_validate_json(raw)
    assert raised.value.errors()[0]["msg"] == reason


def test_a_terms_file_naming_a_key_twice_is_refused_naming_it(tmp_path: Path) -> None:
    """YAML keeps the last of a key given twice without a word: a creator listed under
    two agencies published terms in which the first agency earned nothing."""
    path = tmp_path / "campaigns.yaml"
    path.write_text(
        "campaigns:\n"
        "  - terms:\n"
        "      campaign_id: c-1\n"
        "      merchant_id: m-1\n"
        "      currency: EUR\n"
        "      overrides:\n"
        "        agencies:\n"
        "          creator-01: {agency_id: north, share_percent: '10'}\n"
        "          creator-01: {agency_id: south, share_percent: '40'}\n"
    )
    with pytest.raises(InvalidCampaignFile) as raised:
        load_campaign_file(path)
    assert "found the key 'creator-01' twice (line 9)" in str(raised.value)


def test_engagement_tiers_are_bounded_as_the_plans_are() -> None:
    tiers = [
        {"from_interactions": n + 1, "values": {"like_minor": "1"}} for n in range(MAX_TIERS + 1)
    ]
    engagement = {"values": {"like_minor": "1"}, "tiers": tiers}
    with pytest.raises(ValidationError) as raised:
        CampaignEntry.model_validate_json(entry_json(plan={"engagement": engagement}))
    assert (
        raised.value.errors()[0]["msg"] == f"plan.engagement.tiers: 101 tiers: at most {MAX_TIERS}"
    )
    engagement["tiers"] = tiers[:MAX_TIERS]
    assert CampaignEntry.model_validate_json(entry_json(plan={"engagement": engagement}))


# ---------------------------------------------------------------- creators the terms name


@pytest.mark.parametrize(
    ("terms", "problem"),
    [
        (
            {"coupons": {"SAVE10": "team/anna"}},
            "coupons.SAVE10: 'team/anna': a creator id holds ASCII letters, digits and"
            " _ . : @ - only (it names the creator's pages and URLs)",
        ),
        (
            {"coupons": {"SAVE10": ".."}},
            "coupons.SAVE10: '..' is only dots, which a URL reads as a directory",
        ),
        (
            {"window_overrides_days": {"anna bell": 60}},
            "window_overrides_days: 'anna bell': a creator id holds ASCII letters, digits"
            " and _ . : @ - only (it names the creator's pages and URLs)",
        ),
        (
            {"survey": {"mode": "attribute", "handles": {"@ana": "."}}},
            "survey.handles.@ana: '.' is only dots, which a URL reads as a directory",
        ),
        (
            {"overrides": {"agencies": {"anna": {"agency_id": "x" * 201, "share_percent": 5}}}},
            "overrides.agencies.anna.agency_id: must be 1 to 200 characters",
        ),
        (
            {"overrides": {"agencies": {"an\u0430": {"agency_id": "ag", "share_percent": 5}}}},
            "overrides.agencies: 'an\u0430': a creator id holds ASCII letters, digits and"
            " _ . : @ - only (it names the creator's pages and URLs)",
        ),
    ],
)
def test_terms_naming_a_creator_no_url_can_reach_are_unpublishable(
    terms: dict[str, Any], problem: str
) -> None:
    assert publish_problems({**BASE, **terms}) == (problem,)


def test_creator_ids_links_take_are_publishable() -> None:
    terms = {
        **BASE,
        "coupons": {"A": "creator-01", "B": "anna.bell@insta", "C": "team:anna_2", "D": "..a"},
        "window_overrides_days": {"creator-01": 60},
        "overrides": {"agencies": {"creator-01": {"agency_id": "agency-1", "share_percent": 5}}},
    }
    assert publish_problems(terms) == ()


@pytest.mark.parametrize(
    ("codes", "problem"),
    [
        ({"SAVE\x0010": "c"}, 'coupons: "SAVE\\u000010" contains U+0000 (a control character)'),
        (
            {"SAVE\u200b": "c"},
            'coupons: "SAVE\u200b" contains U+200B (an invisible format character)',
        ),
    ],
)
def test_coupon_codes_with_invisible_characters_are_unpublishable(
    codes: dict[str, str], problem: str
) -> None:
    assert publish_problems({**BASE, "coupons": codes}) == (problem,)


def test_coupon_codes_keep_their_surrounding_spaces_ignored() -> None:
    assert publish_problems({**BASE, "coupons": {" SAVE10\n": "c"}}) == ()


@pytest.mark.parametrize(
    ("currency", "refused"),
    [
        ("JOD", False),  # three decimals, refused until ISO 4217's circulating codes
        ("CLP", False),
        ("VND", False),
        ("XAU", True),  # a metal
        ("eur", True),  # codes are capitals
        ("ABC", True),
    ],
)
def test_a_campaign_file_names_only_the_bad_currency(
    tmp_path: Path, currency: str, refused: bool
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "campaigns:\n  - terms:\n      campaign_id: c-1\n      merchant_id: m\n"
        f"      currency: {currency}\n      plan: {{sale: {{rate: {{percent: '10'}}}}}}\n"
    )
    if not refused:
        assert load_campaign_file(path).campaigns[0].terms.currency == currency
        return
    with pytest.raises(InvalidCampaignFile) as raised:
        load_campaign_file(path)
    message = str(raised.value)
    assert f"campaigns.0.terms.currency: Value error, unsupported currency {currency!r}" in message
    # Not also "campaigns: Tuple should have at least 1 item": the list was there.
    assert "at least 1 item" not in message
