"""Where the ``afflux`` command writes tables and progress: a rich console per stream."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console

# A file or pipe has no width of its own; rows of a table in a log must not wrap.
LOG_WIDTH = 160


def console_for(stream: TextIO) -> Console:
    """A terminal gets its own width and colours; a file or pipe plain text, wide enough
    that no table row wraps. Text is printed as given: no markup, emoji codes or
    highlighting, and plain lines never wrapped (URLs stay whole)."""
    console = Console(file=stream, highlight=False, soft_wrap=True)
    if console.is_terminal:
        return console
    return Console(file=stream, highlight=False, soft_wrap=True, width=LOG_WIDTH, color_system=None)
