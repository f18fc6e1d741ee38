"""The benchmarks that ``afflux bench NAME`` runs, found by name at run time.

They live in the ``afflux-bench`` package, which registers each one as an
``afflux.benches`` entry point. The cli never imports that package: the benchmarks
use the cli's stack helpers (embedded broker, Redis, child processes), so an import
the other way round would make a cycle, and a production install of the cli needs
no benchmarks at all.

Every benchmark accepts ``--broker tansu|kafka``. Those that start a broker read it
themselves; for those that start none (``NO_BROKER``) it is taken off their arguments here,
so that one command line runs every benchmark on either broker.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points

from afflux.cli.brokers import DEFAULT_BROKER, add_broker_option

GROUP = "afflux.benches"
# The ledger bench drives the payouts consumer's steps straight into Redis and the state
# bench the attribution stages' code in memory: neither touches a broker.
NO_BROKER = frozenset({"ledger", "state"})


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
    if name in NO_BROKER:
        argv = without_broker_option(name, argv)
    return int(found[name].load()(list(argv)))


def without_broker_option(name: str, argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--broker``, after checking its value; a broker other than the
    default is named on stderr as changing nothing."""
    parser = argparse.ArgumentParser(
        prog=f"afflux bench {name}", add_help=False, allow_abbrev=False
    )
    add_broker_option(parser)
    known, rest = parser.parse_known_args(list(argv))
    if known.broker != DEFAULT_BROKER:
        print(f"afflux bench {name} starts no broker: --broker {known.broker} changes nothing",
              file=sys.stderr)  # fmt: skip
    return rest
