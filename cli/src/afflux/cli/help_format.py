"""Help texts as plain text: the module docstrings that describe commands are written in
reStructuredText (``literal``, `role`, **strong**), which a terminal shows verbatim.

``PlainArgumentParser`` is the parser every ``afflux`` command builds; its sub-command
parsers inherit it, so every ``--help`` goes through ``plain_text``.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from collections.abc import Callable
from typing import Any

_LINK = re.compile(r"`([^`<]+?)\s*<([^>]+)>`__?")  # `text <url>`_
_ROLE = re.compile(r":[a-z:]+:`([^`]+)`")  # :func:`name`
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_INTERPRETED = re.compile(r"`([^`]+)`_{0,2}")
_STRONG = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
# A line that starts an item of a list: "- text", "* text", "1. text".
_ITEM = re.compile(r"^\s*(?:[-*]|\d+\.)\s+")


def plain_text(text: str) -> str:
    """``text`` with its reStructuredText inline markup removed, words kept."""
    text = _LINK.sub(r"\1 (\2)", text)
    text = _ROLE.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    return _STRONG.sub(r"\1", text)


def fill_paragraphs(text: str, width: int, indent: str = "") -> str:
    """Each paragraph (blank-line separated) filled to ``width`` on its own; a list item
    starts a line of its own, its continuation lines indented under its text."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", textwrap.dedent(text).strip()):
        items: list[list[str]] = []
        for line in block.splitlines():
            if not items or _ITEM.match(line):
                items.append([line.strip()])
            else:
                items[-1].append(line.strip())
        filled = []
        for words in items:
            item = " ".join(words)
            marker = _ITEM.match(item)
            hang = " " * (marker.end() if marker else 0)
            filled.append(
                textwrap.fill(item, width, initial_indent=indent, subsequent_indent=indent + hang)
            )
        paragraphs.append("\n".join(filled))
    return "\n\n".join(paragraphs)


class PlainHelpFormatter(argparse.HelpFormatter):
    """Descriptions and option help as plain text; paragraphs and lists kept apart."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return fill_paragraphs(plain_text(text), width, indent)

    def _expand_help(self, action: argparse.Action) -> str:
        return plain_text(super()._expand_help(action))


class PlainArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help is plain text (its sub-command parsers too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", PlainHelpFormatter)
        super().__init__(*args, **kwargs)


def positive_count(text: str, what: str) -> int:
    """A whole number of at least 1, else an argparse error naming ``what``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} {what}: give 1 or more")
    return value


def counting(what: str) -> Callable[[str], int]:
    """An argparse ``type`` for a count of ``what`` (1 or more): ``--visitors -5`` started a
    whole stack and then reported over 0 creators, ``--creators 0`` a traceback."""

    def parse(text: str) -> int:
        return positive_count(text, what)

    parse.__name__ = what  # argparse names the type in its own messages
    return parse
