"""Progress of a long step with its rate and time left: rich's live bar on a terminal, a
plain line every few seconds when the output is a file or a pipe (a log keeps a few
lines, not hundreds of redraws)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from afflux.cli.console import console_for

PLAIN_EVERY_S = 5.0


@dataclass(frozen=True)
class Pace:
    """How far a step is: ``done`` of ``total`` after ``elapsed_s``."""

    done: int
    total: int
    elapsed_s: float

    @property
    def rate(self) -> float | None:
        """Units per second so far; None before the first unit or the first instant."""
        if self.done <= 0 or self.elapsed_s <= 0:
            return None
        return self.done / self.elapsed_s

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; 0 when done, None while no rate is known."""
        if self.done >= self.total:
            return 0.0
        rate = self.rate
        return None if rate is None else (self.total - self.done) / rate


def clock_text(seconds: float | None) -> str:
    """``0:07``, ``12:30``, ``1:02:03``; ``-:--`` when unknown."""
    if seconds is None:
        return "-:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def rate_text(rate: float | None, unit: str) -> str:
    return f"? {unit}/s" if rate is None else f"{rate:.1f} {unit}/s"


def progress_line(label: str, unit: str, pace: Pace) -> str:
    """One plain line: ``simulating visitors 300/1500 (20%), 45.2 visitors/s, 0:06 elapsed,
    ETA 0:27``."""
    percent = 100 * pace.done // max(pace.total, 1)
    return (
        f"{label} {pace.done}/{pace.total} ({percent}%), {rate_text(pace.rate, unit)}, "
        f"{clock_text(pace.elapsed_s)} elapsed, ETA {clock_text(pace.eta_s)}"
    )


class RateColumn(ProgressColumn):
    """Units per second, in the task's own unit (rich's speed column counts bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        return Text(rate_text(task.speed, self.unit), style="progress.data.speed")


class ProgressDisplay:
    """Counts units of one step and shows the count, rate and time left while it runs."""

    def __init__(self, total: int, label: str, unit: str, stream: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.label = label
        self.unit = unit
        self.done = 0
        self.started = time.monotonic()
        self._console = console_for(stream)
        self._last_line = self.started
        self._live = self._console.is_terminal
        self._progress = _live_progress(self._console, unit) if self._live else None
        if self._progress is not None:
            self._task = self._progress.add_task(label, total=self.total)
            self._progress.start()

    def advance(self, steps: int = 1) -> None:
        self.done = min(self.total, self.done + steps)
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done)
            return
        now = time.monotonic()
        if now - self._last_line >= PLAIN_EVERY_S and self.done < self.total:
            self._last_line = now
            self._print_line(now)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        else:
            self._print_line(time.monotonic())

    def _print_line(self, now: float) -> None:
        pace = Pace(self.done, self.total, now - self.started)
        self._console.print(progress_line(self.label, self.unit, pace))


def _live_progress(console: Console, unit: str) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )
