"""How a host name is compared: a campaign's allowed domains, a link destination's host,
the terms' coupon sites and a referrer's host, all alike.

Pure, and imported by ``afflux.shared.core.terms`` and ``afflux.shared.core.review``
alike (terms imports review, so review could not import it from terms).
"""

from __future__ import annotations


def normalize_domain(domain: str) -> str:
    """How a campaign's allowed domains and a destination's host, and the review terms'
    coupon sites and a referrer's host, are compared: trimmed, lower-cased, and without
    the one trailing dot that makes a name fully qualified (``"Shop.Example.COM."`` is
    ``shop.example.com``).

    Only that one dot: ``"example.com.."`` is not a fully qualified name but one with an
    empty label, so it keeps its dots and matches no host (an allowed domain so written
    is refused where terms are published, ``terms_checks.domain_problem``) instead of
    passing as ``example.com``.
    Nor is the dot dropped after a space, so a second normalisation (the redirect
    normalises the terms' already normalised domains again) never changes the result.
    """
    host = domain.strip().lower()
    root = host[:-1]
    if host.endswith(".") and not root.endswith(".") and root == root.rstrip():
        return root
    return host
