"""A Redis URL with the password added, and one safe to print.

Pure functions over URL text. The password comes from its own setting
(``AFFLUX_REDIS_PASSWORD``, usually ``AFFLUX_REDIS_PASSWORD_FILE``) so that the URL
itself, database number and host, stays plain configuration.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit


def with_password(url: str, password: str) -> str:
    """``url`` carrying ``password`` (percent-encoded); ValueError if it holds one already."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, colon, existing = userinfo.partition(":")
    if colon and existing:
        raise ValueError(
            "AFFLUX_REDIS_URL holds a password and AFFLUX_REDIS_PASSWORD is set too; set only one"
        )
    netloc = f"{username}:{quote(password, safe='')}@{hosts}"
    return urlunsplit(parts._replace(netloc=netloc))


def redacted(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    if not password:
        return url
    return urlunsplit(parts._replace(netloc=f"{username}:***@{hosts}"))
