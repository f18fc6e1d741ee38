"""An id someone creates over HTTP has no character a reader cannot see: "o-1" and "o-1"
with a zero-width space look the same, so a retry whose id gained one was a second
order, paid twice. The reason names the first such character by its code point."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from afflux.shared.core.visible_text import (
    invisible_character,
    new_id_problem,
    visible,
    visible_new_id,
)

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Refused:
    text: str
    reason: str


REFUSED = [
    # Cc, control characters: C0, DEL and C1, at both ends of each range
    Refused("o\x001", "contains U+0000 (a control character)"),
    Refused("o\x1f1", "contains U+001F (a control character)"),
    Refused("o\x7f1", "contains U+007F (a control character)"),
    Refused("o\x801", "contains U+0080 (a control character)"),
    Refused("o\x851", "contains U+0085 (a control character)"),  # next line (NEL)
    Refused("o\x9f1", "contains U+009F (a control character)"),
    # Cf, format characters: shown as nothing
    Refused("o-1\u200b", "contains U+200B (an invisible format character)"),  # zero-width space
    Refused("\ufeffo-1", "contains U+FEFF (an invisible format character)"),  # byte order mark
    Refused("o\u20601", "contains U+2060 (an invisible format character)"),  # word joiner
    Refused("o\u200e1", "contains U+200E (an invisible format character)"),  # left-to-right mark
    Refused("o\u202e1", "contains U+202E (an invisible format character)"),  # RTL override
    Refused("o\u00ad1", "contains U+00AD (an invisible format character)"),  # soft hyphen
    Refused("o\U000e00411", "contains U+E0041 (an invisible format character)"),  # tag A
    # Zl and Zp, separators that break a line where none shows
    Refused("o\u20281", "contains U+2028 (a line separator)"),
    Refused("o\u20291", "contains U+2029 (a paragraph separator)"),
    # Cs, Co, Cn: no glyph anyone agrees on
    Refused("o\ud8001", "contains U+D800 (a lone surrogate)"),
    Refused("o\ue0001", "contains U+E000 (a private-use character)"),
    Refused("o\U0010fffd", "contains U+10FFFD (a private-use character)"),
    Refused("o\uffff", "contains U+FFFF (an unassigned code point)"),  # a noncharacter
    Refused("o\U000e0080", "contains U+E0080 (an unassigned code point)"),
    # only the first is named
    Refused("a\u200bb\x00", "contains U+200B (an invisible format character)"),
    # default-ignorable characters of other categories render as nothing too
    Refused("o-1\u034f", "contains U+034F (a character that shows as nothing)"),
    Refused("o-1\ufe0f", "contains U+FE0F (a character that shows as nothing)"),
    Refused("o-1\u3164", "contains U+3164 (a character that shows as nothing)"),
    Refused("o-1\U000e0100", "contains U+E0100 (a character that shows as nothing)"),
]

NOT_NFC = [
    # the composed form looks the same and was another order id (paid twice)
    Refused(
        "commande-e\u0301te\u0301",
        "is not in Unicode normalization form C (NFC) at character 11 (U+0301): its NFC form"
        " looks the same and is another id; send ids NFC-normalized",
    ),
    Refused(
        "\u212b-1",  # the angstrom sign, whose NFC form is U+00C5
        "is not in Unicode normalization form C (NFC) at character 1 (U+212B): its NFC form"
        " looks the same and is another id; send ids NFC-normalized",
    ),
]


@pytest.mark.parametrize("case", NOT_NFC, ids=lambda c: ascii(c.text))
def test_a_new_id_not_in_nfc_is_refused_naming_where(case: Refused) -> None:
    assert new_id_problem(case.text) == case.reason
    with pytest.raises(ValueError, match=f"^{re.escape(case.reason)}$"):
        visible_new_id(case.text)
    # Text naming what is there already (a handle, a visitor) is not refused for it.
    assert invisible_character(case.text) is None


def test_a_new_id_is_refused_for_an_invisible_character_first() -> None:
    assert new_id_problem("e\u0301\u200b") == "contains U+200B (an invisible format character)"
    assert new_id_problem("\u00e9t\u00e9") is None
    assert new_id_problem("o-1") is None


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: ascii(c.text))
def test_an_invisible_character_is_named_by_its_code_point(case: Refused) -> None:
    assert invisible_character(case.text) == case.reason
    with pytest.raises(ValueError, match=f"^{re.escape(case.reason)}$"):
        visible(case.text)


ALLOWED = [
    "o-1",
    "",  # nothing to refuse (lengths are the model's business)
    " o-1 ",  # edge whitespace is the caller's rule (an order id refuses it, a handle not)
    "Bestellung 7 ö",  # letters of any script, a space inside
    "\u6ce8\u6587-\uff17",  # CJK and a fullwidth digit are visible
    "\u0637\u0644\u0628-\u0667",  # Arabic letters and an Arabic-Indic digit
    "e\u0301",  # a combining accent (Mn) shows on its letter
    "\u00e9t\u00e9",  # composed accents (NFC)
    "o\u00a01",  # a no-break space shows as a space
    "~!@#$%^&*()_+{}|:<>?`-=[]\\;',./\"",  # every ASCII punctuation
    "👍🏽",  # an emoji with a skin tone modifier
]


@pytest.mark.parametrize("text", ALLOWED, ids=ascii)
def test_visible_text_of_any_script_passes_unchanged(text: str) -> None:
    assert invisible_character(text) is None
    assert visible(text) is text
