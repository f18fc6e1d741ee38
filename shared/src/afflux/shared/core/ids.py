"""Identifiers: random ones for new facts, deterministic ones for derived facts.

A click id embeds the visitor id (``<visitor_id>.<nonce>``) so that an order
carrying only a click id can be keyed by the visitor and land on the partition
that holds the visitor's clicks (DESIGN §2): the join never looks across
partitions.
"""

from __future__ import annotations

import hashlib
import re
import secrets

CLICK_ID_SEPARATOR = "."
# The clicks service's visitor cookie: ``<visitor_id>~<seal>`` (afflux.clicks.visitor_cookie)
_SEALED_VISITOR = re.compile(r"(v_[0-9a-f]{32})~[0-9a-f]{32}")


def new_id(prefix: str) -> str:
    """A fresh random id such as ``v_4kq2…``; 128 bits of entropy."""
    return f"{prefix}_{secrets.token_hex(16)}"


def new_visitor_id() -> str:
    return new_id("v")


def new_click_id(visitor_id: str) -> str:
    """A click id that carries its visitor id for partition routing."""
    return f"{visitor_id}{CLICK_ID_SEPARATOR}{secrets.token_hex(8)}"


def visitor_of_click(click_id: str) -> str | None:
    """The visitor id embedded in an afflux click id, or None for a foreign id."""
    visitor, sep, nonce = click_id.rpartition(CLICK_ID_SEPARATOR)
    if not sep or not visitor or not nonce:
        return None
    return visitor


def derived_id(prefix: str, *parts: str) -> str:
    """A deterministic id for an event derived from others (same inputs, same id)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return f"{prefix}_{digest}"


def order_partition_key(order_id: str, visitor_id: str | None, click_id: str | None) -> str:
    """The key an order is produced under: its visitor, else its click's visitor, else itself."""
    if visitor_id:
        return visitor_id
    if click_id:
        from_click = visitor_of_click(click_id)
        if from_click:
            return from_click
    return order_id


def visitor_id_in(value: str) -> str:
    """The visitor id a merchant means: the value itself, or the id in a visitor cookie
    sent whole (``<visitor_id>~<seal>``), which as it is would match no click."""
    sealed = _SEALED_VISITOR.fullmatch(value)
    return sealed.group(1) if sealed else value
