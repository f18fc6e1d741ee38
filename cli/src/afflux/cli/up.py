"""``afflux up``: the whole stack on one machine until Ctrl-C or SIGTERM."""

from __future__ import annotations

import secrets
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from afflux.cli.brokers import DEFAULT_BROKER, BrokerKind, kafka_data_dir
from afflux.cli.processes import StartFailed
from afflux.cli.settings import CliSettings
from afflux.cli.stack import Stack, StackOptions
from afflux.cli.storage import DEFAULT_STORAGE, BrokerStorage
from afflux.shared.secret_policy import settings_error

DEFAULT_CAMPAIGNS = Path("examples/campaigns.yaml")


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def build_stack(
    settings: CliSettings,
    work_dir: Path,
    env: dict[str, str],
    storage: BrokerStorage = DEFAULT_STORAGE,
    broker: BrokerKind = DEFAULT_BROKER,
) -> Stack:
    """The stack ``afflux up`` runs: Redis appends every write to its AOF (fsync every
    second) and, unless ``storage`` is memory, the broker's log is on disk; both under
    ``work_dir``, so the next run on the same data directory finds them again."""
    return Stack(
        StackOptions(
            work_dir=work_dir,
            kafka_bootstrap=settings.kafka_bootstrap or None,
            redis_url=settings.redis_url or None,
            ports=settings.ports(),
            partitions=settings.topic_partitions,
            env=env,
            redis_aof=True,
            storage=storage,
            broker=broker,
        )
    )


def admin_token(settings: CliSettings) -> tuple[str, bool]:
    """The configured admin token, or a fresh development token (and whether it was generated)."""
    configured = settings.admin_token_value()
    if configured:
        return configured, False
    return secrets.token_urlsafe(24), True


def campaigns_path(explicit: str | None, settings: CliSettings) -> Path | None:
    if explicit:
        return Path(explicit)
    if settings.campaigns_file:
        return settings.campaigns_file
    return DEFAULT_CAMPAIGNS if DEFAULT_CAMPAIGNS.exists() else None


def run_up(
    campaigns: str | None,
    partitions: int | None,
    storage: BrokerStorage = DEFAULT_STORAGE,
    broker: BrokerKind = DEFAULT_BROKER,
) -> int:
    try:
        settings = CliSettings()
    except ValidationError as exc:
        print(f"afflux up: invalid settings: {settings_error(exc)}", file=sys.stderr)
        return 2
    if partitions:
        settings = settings.model_copy(update={"topic_partitions": partitions})
    token, generated = admin_token(settings)
    stack = build_stack(
        settings, settings.data_dir / "up", {"AFFLUX_ADMIN_TOKEN": token}, storage, broker
    )
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        stack.check_ports()
        what = "Apache Kafka" if broker == "kafka" else f"broker ({storage} storage)"
        print(f"afflux: starting {what} and Redis ...", flush=True)
        stack.start_infra()
        terms = campaigns_path(campaigns, settings)
        if terms is not None:
            count = stack.apply_campaigns(terms)
            print(f"afflux: applied {terms} ({count} new terms versions)", flush=True)
        for name in ("clicks", "orders", "attribution", "payouts"):
            print(f"afflux: starting {name} ...", flush=True)
            stack.start_service(name)
        _print_ready(stack, token, generated)
        _watch(stack)
    except StartFailed as exc:
        print(f"afflux up: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Stop):
        print("\nafflux: stopping ...", flush=True)
    finally:
        # A second Ctrl-C must not cut the shutdown short and orphan a child.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stack.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
    print("afflux: stopped", flush=True)
    return 0


def _print_ready(stack: Stack, token: str, generated: bool) -> None:
    print("afflux is up:")
    store = stack.object_store
    where = f", log in {store.endpoint}/tansu" if store else ""
    storage: str = "external" if stack.options.kafka_bootstrap else stack.options.storage
    if not stack.options.kafka_bootstrap and stack.options.broker == "kafka":
        storage, where = "Apache Kafka, disk", f", log in {kafka_data_dir(stack.options.work_dir)}"
    print(f"  broker    {stack.kafka_bootstrap}   ({storage} storage{where})")
    aof = "   (AOF, fsync every second)" if not stack.options.redis_url else ""
    print(f"  redis     {stack.redis_url}{aof}")
    for name in ("clicks", "orders", "payouts", "attribution"):
        print(f"  {name:<12}{stack.url(name)}   (health {stack.url(name)}/healthz)")
    note = " (generated for development; set AFFLUX_ADMIN_TOKEN to choose)" if generated else ""
    print(f"  admin token {token}{note}")
    print(f"  data      {stack.options.work_dir}")
    print(f"  logs      {stack.log_dir}")
    print("Press Ctrl-C to stop.", flush=True)


def _watch(stack: Stack) -> None:
    while True:
        for child in [*stack.infra, *stack.services.values()]:
            if not child.alive():
                raise StartFailed(f"{child.name} exited unexpectedly:\n{child.log_tail()}")
        time.sleep(0.5)
