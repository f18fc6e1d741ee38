"""The faults of the differential runs, each timed as a ``FaultFigure``.

Each is a plain function run on a thread of its own at a progress point (after N
acknowledged requests), so the workload keeps going while the fault lasts. A kill
is ``kill -9`` by the PID the stack started, then a restart on the same port and
data directory; a stall is SIGSTOP, a duration, then SIGCONT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

from afflux.cli.differential import DifferentialStack
from afflux.cli.processes import Child, stall
from afflux.cli.workload import WORKLOAD_CAMPAIGNS, Progress
from afflux.shared.io.kafka import create_topics

PROCESSES = ("clicks", "orders", "attribution", "payouts", "redis", "broker")


def _infra(ds: DifferentialStack, name: str) -> Child:
    return next(c for c in ds.stack.infra if c.name == name)


def kill_service(ds: DifferentialStack, name: str) -> None:
    with ds.fault(f"{name} kill -9"):
        ds.stack.kill_service(name)
        ds.stack.start_service(name)


def crash_redis(ds: DifferentialStack) -> None:
    with ds.fault("redis kill -9 (AOF everysec)"):
        ds.stack.crash_redis()


def crash_broker(ds: DifferentialStack) -> None:
    """kill -9 the broker and start it on the same port and storage; Tansu on memory
    storage has lost its log, so the topics and campaign terms are created again, as an
    operator would, and what depends on the old log has to notice. Kafka always restarts
    on its log on disk."""
    storage, kind = ds.stack.options.storage, ds.stack.options.broker
    log_lost = kind == "tansu" and storage == "memory"
    with ds.fault(f"broker kill -9 ({storage if kind == 'tansu' else kind})"):
        stack = ds.stack
        broker = _infra(ds, "broker")
        broker.kill()
        # the same port and storage (the object store, if any, keeps running)
        stack.infra[stack.infra.index(broker)] = stack._start_broker()
        if log_lost:
            asyncio.run(create_topics(ds.stack.kafka_bootstrap, ds.stack.options.partitions))
            ds.stack.apply_campaigns(WORKLOAD_CAMPAIGNS)


def kill(ds: DifferentialStack, name: str) -> None:
    """kill -9 one of ``PROCESSES`` and restart it."""
    if name == "redis":
        crash_redis(ds)
    elif name == "broker":
        crash_broker(ds)
    else:
        kill_service(ds, name)


def stall_broker(ds: DifferentialStack, seconds: float) -> None:
    broker = _infra(ds, "broker")
    with ds.fault(f"broker SIGSTOP {seconds:.0f}s"):
        stall(broker.pid)
        try:
            time.sleep(seconds)  # the fault is a duration
        finally:
            os.kill(broker.pid, signal.SIGCONT)


def kill_clicks_during_stall(
    ds: DifferentialStack, progress: Progress, seconds: float, acks_before_kill: int = 2
) -> None:
    """Stop the broker; once ``acks_before_kill`` more requests were acknowledged (clicks
    only in the click log), kill -9 the clicks service and restart it; let the broker go
    after ``seconds``. The restarted service is ready only once the broker answers."""
    broker = _infra(ds, "broker")
    with ds.fault(f"clicks kill -9 during a broker SIGSTOP of {seconds:.0f}s"):
        began = time.monotonic()
        stall(broker.pid)
        restart: threading.Thread | None = None
        failed: list[BaseException] = []

        def start_clicks() -> None:
            try:
                ds.stack.start_service("clicks")
            except BaseException as exc:  # raised below, on the fault's own thread
                failed.append(exc)

        try:
            progress.wait_for(progress.acks + acks_before_kill, timeout_s=seconds / 2)
            ds.stack.kill_service("clicks")
            restart = threading.Thread(target=start_clicks)
            restart.start()
            time.sleep(max(0.0, seconds - (time.monotonic() - began)))
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        if restart is not None:
            restart.join()
        if failed:
            raise failed[0]
