"""``afflux verify --chaos``: kill -9 random processes at random progress points, then the
differential comparison with a clean run of the same workload.

The seed decides the workload, which process dies (a service, Redis or the broker)
and after how many acknowledged requests; each is restarted on the same port and
data before the next kill. Every request is retried until it is acknowledged, so
the outcome must equal the clean run's to the cent.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from afflux.cli.differential import (
    Comparison,
    DifferentialStack,
    RunResult,
    Workload,
    compare,
    report,
)
from afflux.cli.differential_faults import PROCESSES, kill
from afflux.cli.help_format import PlainArgumentParser
from afflux.cli.processes import StartFailed
from afflux.cli.settings import CliSettings
from afflux.cli.storage import BrokerStorage, add_storage_option, storage_of
from afflux.cli.workload import PlannedVisit, Progress, plan


def requests_of(visits: list[PlannedVisit], creators: int) -> int:
    """How many requests the workload gets acknowledged: links, clicks, orders, refunds,
    confirmations (each exactly once, whatever the retries)."""
    total = 2 * creators
    for v in visits:
        total += len(v.touches)
        if v.order:
            total += 1 + bool(v.order.refund_minor) + v.order.confirm
    return total


def kill_plan(
    seed: int, kills: int, workload: Workload, processes: tuple[str, ...] = PROCESSES
) -> list[tuple[int, str]]:
    """(progress point, process) for each kill, points strictly inside the run (after the
    links, before the last request), in order."""
    rng = random.Random(f"chaos-{seed}")
    total = requests_of(
        plan(workload.seed, workload.visitors, workload.creators), workload.creators
    )
    first = 2 * workload.creators + 1
    span = range(first, total)
    points = (
        sorted(rng.choices(span, k=kills)) if kills > len(span) else sorted(rng.sample(span, kills))
    )
    return [(p, rng.choice(processes)) for p in points]


@dataclass
class ChaosRun:
    kills: list[tuple[int, str]]
    clean: RunResult
    chaotic: RunResult
    comparison: Comparison
    ack_times: list[float]


def run_chaos(
    work_dir: Path,
    *,
    seed: int,
    kills: int,
    workload: Workload,
    storage: BrokerStorage = "durable",
    clean: RunResult | None = None,
) -> ChaosRun:
    """The clean run (unless given), then the same workload under the seeded kills."""
    if clean is None:
        ds = DifferentialStack(work_dir / "clean", storage).start()
        try:
            clean = ds.run(workload)
        finally:
            ds.stop()
    # On memory storage a broker kill loses the log: a fault of its own, not chaos.
    processes = PROCESSES if storage == "durable" else tuple(p for p in PROCESSES if p != "broker")
    planned = kill_plan(seed, kills, workload, processes)
    ds = DifferentialStack(work_dir / "chaos", storage).start()

    def arrange(progress: Progress) -> None:
        def kill_in_turn() -> None:
            for point, name in planned:
                progress.wait_for(point, timeout_s=600)
                kill(ds, name)

        progress.at(planned[0][0] if planned else 0, kill_in_turn)

    try:
        chaotic = ds.run(workload, arrange if planned else None)
    finally:
        ds.stop()
    return ChaosRun(planned, clean, chaotic, compare(clean, chaotic), ds.ack_times)


def main(argv: list[str]) -> int:
    parser = PlainArgumentParser(prog="afflux verify --chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--visitors", type=int, default=80)
    parser.add_argument("--creators", type=int, default=12)
    add_storage_option(parser)
    args = parser.parse_args(argv)
    storage = storage_of(args)
    if storage == "memory":
        print(
            "afflux verify --chaos: memory storage loses the log when the broker dies;"
            " the broker is left out of the kills",
            file=sys.stderr,
        )
    workload = Workload(seed=args.seed, visitors=args.visitors, creators=args.creators)
    work_dir = CliSettings().data_dir / "chaos"
    started = time.monotonic()
    print(
        f"afflux verify --chaos: {args.kills} kills (seed {args.seed}), {args.visitors} visitors,"
        f" {storage} storage; a clean run first ...",
        flush=True,
    )
    try:
        result = run_chaos(
            work_dir, seed=args.seed, kills=args.kills, workload=workload, storage=storage
        )
    except StartFailed as exc:
        print(f"afflux verify --chaos: {exc}", file=sys.stderr)
        return 2
    for point, name in result.kills:
        print(f"  kill -9 {name} after {point} acknowledged requests")
    print(report("chaos", result.chaotic, result.ack_times))
    for line in result.comparison.corrections:
        print(f"  correction (not a difference): {line}")
    for line in result.comparison.differences[:50]:
        print(f"  DIFF {line}")
    print(
        f"afflux verify --chaos: {len(result.comparison.differences)} differences over"
        f" {result.comparison.creators} creators against the clean run;"
        f" {result.comparison.retried_errors} request errors retried;"
        f" {time.monotonic() - started:.0f}s"
    )
    return 0 if result.comparison.exact else 1
