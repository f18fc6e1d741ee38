"""Help texts are plain text: reStructuredText inline markup is dropped, words kept."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.cli.help_format import fill_paragraphs, plain_text

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class MarkupCase:
    given: str
    plain: str


MARKUP_CASES = [
    MarkupCase("``afflux up``: starts", "afflux up: starts"),  # literal
    MarkupCase("see :func:`clear_state`", "see clear_state"),  # role
    MarkupCase("the `Tansu <https://tansu.io>`_ broker", "the Tansu (https://tansu.io) broker"),
    MarkupCase("a `title reference`", "a title reference"),  # interpreted text
    MarkupCase("**never** twice", "never twice"),  # strong
    MarkupCase("``GET /c/{code}``\nand ``afx_vid``", "GET /c/{code}\nand afx_vid"),  # two lines
    MarkupCase("rates: 5 * 3 and 30 %", "rates: 5 * 3 and 30 %"),  # no markup: unchanged
]


@pytest.mark.parametrize("case", MARKUP_CASES)
def test_inline_markup_becomes_plain_words(case: MarkupCase) -> None:
    assert plain_text(case.given) == case.plain


def test_paragraphs_are_filled_apart_and_list_items_start_their_own_line() -> None:
    text = "First paragraph\nwraps here.\n\nPhases:\n1. peak: one\n   more\n2. latency: two"
    assert fill_paragraphs(text, width=40) == (
        "First paragraph wraps here.\n\nPhases:\n1. peak: one more\n2. latency: two"
    )


def test_a_long_list_item_hangs_under_its_text() -> None:
    filled = fill_paragraphs("- " + "word " * 12, width=30)
    first, *rest = filled.splitlines()
    assert first.startswith("- word")
    assert rest
    assert all(line.startswith("  word") for line in rest)
