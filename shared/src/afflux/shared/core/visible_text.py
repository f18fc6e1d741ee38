"""Ids a reader can see: no character that shows as nothing, or nothing of its own.

An id someone creates over HTTP (an order, refund or renewal id, a content id) is an
idempotency key or an identity: "o-1" and "o-1" followed by a zero-width space are two
ids that look the same, so a retry whose id gained one was accepted as a second order
and paid twice. Such ids refuse every character of these Unicode general categories:

- ``Cc`` control characters: C0 (U+0000 to U+001F), DEL and C1 (U+0080 to U+009F);
- ``Cf`` format characters: zero-width space U+200B, joiners, bidirectional marks
  (U+200E, U+202E), word joiner U+2060, byte order mark U+FEFF, tag characters;
- ``Cs`` lone surrogates, ``Co`` private-use characters and ``Cn`` code points that
  Unicode (as this Python's ``unicodedata`` knows it) has not assigned: no font shows
  them the same way twice;
- ``Zl`` and ``Zp``, the line and paragraph separators U+2028 and U+2029.

They also refuse the default-ignorable characters of other categories, which render as
nothing too: the combining grapheme joiner U+034F, variation selectors (U+180B to
U+180F, U+FE00 to U+FE0F, U+E0100 to U+E01EF), the Khmer inherent vowels U+17B4 and
U+17B5, and the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0.

Letters and digits of any script, other marks and spaces inside an id stay allowed.
A **new** id (an order's, a refund's, a renewal's, a content's: ``new_id_problem``) must
also be in Unicode normalization form C (NFC): "été" written with U+00E9 and with "e"
and the combining acute U+0301 is the same text, shown the same, and was two ids (a
retry from a system that decomposes text, as macOS file names do, was paid as a second
order). So must a creator's affiliate id where it is named (a survey answer, content):
decomposed it looks like a creator and names nobody. Text that names what another
service made (a visitor, a click) or that a buyer types (a handle) is not refused for
it: it matches what it matches, as before.

Pure: only ``unicodedata``.
"""

from __future__ import annotations

import unicodedata

# The refused categories, and how a reason names a character of each.
INVISIBLE_CATEGORIES: dict[str, str] = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


# Default_Ignorable_Code_Point characters outside the refused categories (Mn, Lo).
_IGNORABLE = frozenset(
    (
        0x034F,
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        0x3164,
        0xFFA0,
        *range(0x180B, 0x1810),
        *range(0xFE00, 0xFE10),
        *range(0xE0100, 0xE01F0),
    )
)


def invisible_character(text: str) -> str | None:
    """Why ``text`` may not be an id: its first refused character by code point, e.g.
    ``"contains U+200B (an invisible format character)"``; None when it has none."""
    if text.isascii() and text.isprintable():  # the common case: no control character
        return None
    for char in text:
        kind = INVISIBLE_CATEGORIES.get(unicodedata.category(char))
        if kind is None and ord(char) in _IGNORABLE:
            kind = "a character that shows as nothing"
        if kind is not None:
            return f"contains U+{ord(char):04X} ({kind})"
    return None


def new_id_problem(text: str) -> str | None:
    """Why ``text`` may not be a new id: an invisible character (``invisible_character``),
    or text not in NFC, named at its first character that is not; None when neither."""
    problem = invisible_character(text)
    if problem is not None or text.isascii():
        return problem
    if not unicodedata.is_normalized("NFC", text):
        at = next(
            i for i in range(len(text)) if not unicodedata.is_normalized("NFC", text[: i + 1])
        )
        return (
            f"is not in Unicode normalization form C (NFC) at character {at + 1}"
            f" (U+{ord(text[at]):04X}): its NFC form looks the same and is another id;"
            " send ids NFC-normalized"
        )
    return None


def visible(text: str) -> str:
    """``text`` unchanged, or ValueError saying which character is refused (a pydantic
    ``AfterValidator``)."""
    problem = invisible_character(text)
    if problem is not None:
        raise ValueError(problem)
    return text


def visible_new_id(text: str) -> str:
    """``text`` unchanged, or ValueError saying why it may not be a new id (a pydantic
    ``AfterValidator``)."""
    problem = new_id_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text
