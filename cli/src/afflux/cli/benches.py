"""The benchmarks that ``afflux bench NAME`` runs, found by name at run time.

They live in the ``afflux-bench`` package, which registers each one as an
``afflux.benches`` entry point. The cli never imports that package: the benchmarks
use the cli's stack helpers (embedded broker, Redis, child processes), so an import
the other way round would make a cycle, and a production install of the cli needs
no benchmarks at all.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points

GROUP = "afflux.benches"


def installed() -> dict[str, EntryPoint]:
    """Each installed benchmark by its name (empty without ``afflux-bench``)."""
    return {point.name: point for point in entry_points(group=GROUP)}


def run(name: str, argv: Sequence[str]) -> int:
    """Run one benchmark's ``main`` with its own arguments; its exit code."""
    found = installed()
    if name not in found:
        known = ", ".join(sorted(found)) or "none: install afflux-bench"
        print(f"afflux bench: no benchmark {name!r} (installed: {known})", file=sys.stderr)
        return 2
    return int(found[name].load()(list(argv)))
