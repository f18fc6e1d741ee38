"""What campaign terms must pass to be published, beyond what decoding them requires.

Pure functions over strings and the terms as sent (a mapping, before the model
normalises it). Two kinds of mistake a brand can make that the model would otherwise
accept silently:

* **Keys that collapse.** Coupon codes and survey handles are matched
  case-insensitively (``normalize_coupon``, ``normalize_handle``: the same functions
  that match an order's ``coupon_code`` and ``survey_handle``), so the model keys its
  maps by the normalised form: ``{"abc": "creator-1", "ABC": "creator-2"}`` would
  become ``{"ABC": "creator-2"}`` and creator-1 would lose a code the brand thinks
  they have. Two keys with one normalised form are refused, as is a key that
  normalises to nothing (it would match a blank code or handle, or nothing).
* **Allowed domains that open the redirect.** A tracking link may redirect to a
  host that is an allowed domain or a subdomain of one (suffix match, the clicks
  service's ``check_destination``; there is no wildcard form), so ``com`` would
  allow every ``.com`` site. Each entry must be a DNS host name of a site: labels of
  1 to 63 characters of ``a-z 0-9 -`` not starting or ending with ``-``, at most 253
  characters, at least two labels, the last not numeric (no IP addresses); no
  scheme, path, port, user information or wildcard; internationalised names only in
  their punycode (``xn--``) form; and not a public suffix.

These checks run where terms are *published* (``afflux.shared.campaign_file.
CampaignEntry``: the body of ``PUT /v1/campaigns/{id}`` and each entry of a terms file
for ``afflux campaigns apply``), not in ``CampaignTerms`` itself, which also decodes
the ``CampaignTermsPublished`` records already on the compacted ``campaigns`` topic:
terms published before these checks existed must still decode on a replay, and are
judged as they were.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping

from afflux.shared.core.terms import (
    creator_id_problem,
    normalize_coupon,
    normalize_domain,
    normalize_handle,
)
from afflux.shared.core.visible_text import invisible_character

MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")

# Public suffixes of more than one label: names under which anyone can register a
# site, so allowing one would let a link redirect to every site below it. No public
# suffix list package is a dependency (none is installed, and the full list changes
# monthly), so this is a curated list of the common ones, ICANN's and the hosting
# platforms'. A bare top-level domain (one label) is always refused, listed or not.
PUBLIC_SUFFIXES = frozenset(
    {
        # United Kingdom
        "ac.uk", "co.uk", "gov.uk", "ltd.uk", "me.uk", "net.uk", "nhs.uk", "org.uk",
        "plc.uk", "police.uk",
        # Australia, New Zealand
        "asn.au", "com.au", "edu.au", "gov.au", "id.au", "net.au", "org.au",
        "ac.nz", "co.nz", "geek.nz", "gen.nz", "govt.nz", "net.nz", "org.nz",
        # Japan, Korea, China, Hong Kong, Taiwan
        "ac.jp", "ad.jp", "co.jp", "ed.jp", "go.jp", "gr.jp", "lg.jp", "ne.jp", "or.jp",
        "ac.kr", "co.kr", "go.kr", "ne.kr", "or.kr",
        "com.cn", "edu.cn", "gov.cn", "net.cn", "org.cn",
        "com.hk", "edu.hk", "gov.hk", "net.hk", "org.hk",
        "com.tw", "net.tw", "org.tw",
        # South and South-East Asia
        "ac.in", "co.in", "firm.in", "gen.in", "gov.in", "ind.in", "net.in", "org.in",
        "ac.id", "co.id", "or.id", "web.id",
        "com.my", "net.my", "org.my",
        "com.sg", "net.sg", "org.sg",
        "co.th", "in.th", "or.th",
        "com.ph", "com.pk", "com.vn",
        # Middle East, Africa
        "ac.il", "co.il", "net.il", "org.il",
        "com.sa", "com.tr", "net.tr", "org.tr", "com.eg", "com.ng",
        "ac.za", "co.za", "gov.za", "net.za", "org.za",
        # The Americas
        "com.br", "edu.br", "gov.br", "net.br", "org.br",
        "com.mx", "gob.mx", "net.mx", "org.mx",
        "com.ar", "net.ar", "org.ar",
        "com.co", "net.co", "org.co", "com.pe",
        # Europe
        "co.at", "or.at", "com.es", "nom.es", "org.es", "com.pl", "net.pl", "org.pl",
        "com.ua", "net.ua", "org.ua",
        # Names sold as second-level domains under a .com or .net
        "br.com", "cn.com", "de.com", "eu.com", "gb.com", "gb.net", "uk.com", "uk.net",
        "us.com", "za.com",
        # Hosting platforms: every customer's site is a subdomain
        "appspot.com", "azurewebsites.net", "blogspot.com", "cloudfront.net",
        "firebaseapp.com", "fly.dev", "github.io", "gitlab.io", "glitch.me",
        "herokuapp.com", "myshopify.com", "netlify.app", "onrender.com", "pages.dev",
        "readthedocs.io", "s3.amazonaws.com", "vercel.app", "web.app", "wixsite.com",
        "workers.dev",
    }
)  # fmt: skip


def quoted(text: str, limit: int = 100) -> str:
    """``text`` in double quotes, escaped as in JSON, for a reason shown to a brand
    (cut after ``limit`` characters: a reason does not echo a whole long input)."""
    return json.dumps(text if len(text) <= limit else f"{text[:limit]}...", ensure_ascii=False)


def key_collision(keys: Iterable[str], normalise: Callable[[str], str]) -> tuple[str, str] | None:
    """The first two keys (in the given order) that ``normalise`` makes the same, if any."""
    first: dict[str, str] = {}
    for key in keys:
        seen = first.setdefault(normalise(key), key)
        if seen != key:
            return seen, key
    return None


def map_problem(
    keys: Iterable[str], normalise: Callable[[str], str], noun: str, rule: str
) -> str | None:
    """Why the keys of a map matched through ``normalise`` cannot be published: one that
    normalises to nothing, or two that normalise alike; None when they are fine.
    ``noun`` names a key (``code``), ``rule`` says how keys are compared."""
    listed = list(keys)
    for key in listed:
        if not normalise(key):
            return f"{quoted(key)} is empty ({rule})"
    collision = key_collision(listed, normalise)
    if collision is None:
        return None
    one, other = collision
    return f"{quoted(one)} and {quoted(other)} are the same {noun} ({rule})"


COUPON_RULE = "codes are case-insensitive, surrounding spaces ignored"
HANDLE_RULE = "handles are case-insensitive, a leading @ and surrounding spaces ignored"


def _invisible_key_problem(keys: Iterable[str], normalise: Callable[[str], str]) -> str | None:
    """A key that still holds a control or invisible character once normalised: no
    customer types "SAVE\\x00" or "SAVE\\u200b", and it showed as "SAVE" on every page."""
    for key in keys:
        problem = invisible_character(normalise(key))
        if problem is not None:
            return f"{quoted(key)} {problem}"
    return None


def coupons_problem(codes: Iterable[str]) -> str | None:
    listed = list(codes)
    return _invisible_key_problem(listed, normalize_coupon) or map_problem(
        listed, normalize_coupon, "code", COUPON_RULE
    )


def handles_problem(handles: Iterable[str]) -> str | None:
    listed = list(handles)
    return _invisible_key_problem(listed, normalize_handle) or map_problem(
        listed, normalize_handle, "handle", HANDLE_RULE
    )


def _named_creators(terms: Mapping[str, object]) -> Iterable[tuple[str, object]]:
    """Every creator (or agency) id the terms as sent name, with the field naming it."""
    coupons = terms.get("coupons")
    if isinstance(coupons, Mapping):
        for code, owner in coupons.items():
            yield f"coupons.{code}", owner
    windows = terms.get("window_overrides_days")
    if isinstance(windows, Mapping):
        for affiliate in windows:
            yield "window_overrides_days", affiliate
    survey = terms.get("survey")
    handles = survey.get("handles") if isinstance(survey, Mapping) else None
    if isinstance(handles, Mapping):
        for handle, owner in handles.items():
            yield f"survey.handles.{handle}", owner
    overrides = terms.get("overrides")
    agencies = overrides.get("agencies") if isinstance(overrides, Mapping) else None
    if isinstance(agencies, Mapping):
        for member, membership in agencies.items():
            yield "overrides.agencies", member
            if isinstance(membership, Mapping):
                yield f"overrides.agencies.{member}.agency_id", membership.get("agency_id")


def creators_problems(terms: Mapping[str, object]) -> list[str]:
    """``field: reason`` for each creator id the terms name that no creator could have
    (``creator_id_problem``); only string ids are judged, the model reports the rest."""
    problems: list[str] = []
    for field, affiliate in _named_creators(terms):
        reason = creator_id_problem(affiliate) if isinstance(affiliate, str) else None
        if reason:
            problems.append(f"{field}: {reason}")
    return problems


def domain_problem(domain: str) -> str | None:
    """Why ``domain`` cannot be an allowed domain of a campaign, or None when it can.

    Compared as the model and the redirect compare it (``normalize_domain``): trimmed,
    lower-cased, one trailing dot (a fully qualified name) dropped."""
    shown = quoted(domain)
    host = normalize_domain(domain)
    if not host:
        return "empty: give the host name of a site, e.g. shop.example.com"
    if "://" in host or host.startswith("//"):
        return f"{shown} is a URL: give only its host name (no scheme, path or port)"
    if "*" in host:
        return (
            f"{shown}: no wildcards: a domain already allows its subdomains "
            "(give example.com to allow shop.example.com)"
        )
    if "@" in host:
        return f"{shown} carries user information: give only the host name"
    if any(c in host for c in "/?#"):
        return f"{shown} has a path: give only the host name"
    if "[" in host or host.count(":") > 1:
        return f"{shown} is an IP address, not a host name"
    if ":" in host:
        return f"{shown} has a port: give only the host name"
    if not host.isascii():
        return f"{shown} is not ASCII: give an internationalised name in punycode" + (
            f" ({quoted(ascii_form)})" if (ascii_form := _punycode(host)) else " (xn--...)"
        )
    if len(host) > MAX_HOST_LENGTH:
        return f"{shown} is longer than {MAX_HOST_LENGTH} characters"
    labels = host.split(".")
    for label in labels:
        if not label:
            return f"{shown} has an empty label (two dots in a row, or a dot at an end)"
        if len(label) > MAX_LABEL_LENGTH:
            return f"{shown} has a label longer than {MAX_LABEL_LENGTH} characters"
        if not _LABEL.fullmatch(label):
            return (
                f"{shown} is not a host name: its labels are letters, digits and '-', "
                "not starting or ending with '-'"
            )
        if label.startswith("xn--") and not _decodes(label):
            return f"{shown} has a label that is not valid punycode: {quoted(label)}"
    if all(label.isdigit() for label in labels):
        return f"{shown} is an IP address, not a host name"
    if labels[-1].isdigit():
        return f"{shown} is not a host name: no top-level domain is numeric"
    if len(labels) < 2 or host in PUBLIC_SUFFIXES:
        return f"{shown} is a public suffix, not a site" + (
            " (a bare top-level domain is always refused)" if len(labels) < 2 else ""
        )
    return None


def _punycode(host: str) -> str | None:
    """The punycode form of an internationalised host name, when it has one."""
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _decodes(label: str) -> bool:
    """Whether an ``xn--`` label is valid punycode of a non-ASCII name."""
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        return False
    return not decoded.isascii()


# Every sale is priced against each tier and milestone of its period, and a what-if prices
# a campaign-period in one step it cannot stop: a draft of 21,000 tiers (1 MB) held the
# payouts process's replay for two minutes past its 60 s limit.
MAX_TIERS = 100
MAX_MILESTONES = 100


def plan_size_problem(
    tiers: int, milestones: int, engagement_tiers: int = 0
) -> tuple[str, str] | None:
    """(field, reason) when a plan lists more tiers or milestones than afflux prices."""
    if tiers > MAX_TIERS:
        return "plan.tiers", f"{tiers} tiers: at most {MAX_TIERS}"
    if milestones > MAX_MILESTONES:
        return "plan.milestones", f"{milestones} milestones: at most {MAX_MILESTONES}"
    if engagement_tiers > MAX_TIERS:
        return "plan.engagement.tiers", f"{engagement_tiers} tiers: at most {MAX_TIERS}"
    return None


def _count(value: object) -> int:
    return len(value) if isinstance(value, list | tuple) else 0


def publish_problems(terms: Mapping[str, object]) -> tuple[str, ...]:
    """Why terms as sent (a mapping, before the model normalises it) cannot be
    published: one ``field: reason`` each, in the order of the fields; () when fine.

    Only ``allowed_domains``, ``coupons``, ``survey.handles``, the creator ids the terms
    name and the number of ``plan.tiers`` and ``plan.milestones`` are looked at, and only
    where they have the expected shape (a list of strings, a mapping with string keys,
    lists): the model reports anything else."""
    problems: list[str] = []
    plan = terms.get("plan")
    if isinstance(plan, Mapping):
        engagement = plan.get("engagement")
        size = plan_size_problem(
            _count(plan.get("tiers")),
            _count(plan.get("milestones")),
            _count(engagement.get("tiers")) if isinstance(engagement, Mapping) else 0,
        )
        if size:
            problems.append(f"{size[0]}: {size[1]}")
    domains = terms.get("allowed_domains")
    if isinstance(domains, list | tuple):
        for index, domain in enumerate(domains):
            reason = domain_problem(domain) if isinstance(domain, str) else None
            if reason:
                problems.append(f"allowed_domains[{index}]: {reason}")
    coupons = terms.get("coupons")
    if isinstance(coupons, Mapping):
        reason = coupons_problem(k for k in coupons if isinstance(k, str))
        if reason:
            problems.append(f"coupons: {reason}")
    survey = terms.get("survey")
    handles = survey.get("handles") if isinstance(survey, Mapping) else None
    if isinstance(handles, Mapping):
        reason = handles_problem(k for k in handles if isinstance(k, str))
        if reason:
            problems.append(f"survey.handles: {reason}")
    problems.extend(creators_problems(terms))
    return tuple(problems)
