"""``afflux up``: the whole stack on one machine until Ctrl-C or SIGTERM."""

from __future__ import annotations

import secrets
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from rich import box
from rich.table import Table

from afflux.cli.brokers import DEFAULT_BROKER, BrokerKind, kafka_data_dir
from afflux.cli.console import console_for
from afflux.cli.log_growth import long_log_note
from afflux.cli.processes import StartFailed
from afflux.cli.settings import CliSettings
from afflux.cli.stack import SERVICES, Stack, StackOptions
from afflux.cli.stop_signals import Stopped, signals_held, stop_on_signals
from afflux.cli.storage import DEFAULT_STORAGE, BrokerStorage
from afflux.shared.io.campaign_publish import TermsRefused
from afflux.shared.secret_policy import settings_error

DEFAULT_CAMPAIGNS = Path("examples/campaigns.yaml")
SERVICE_ORDER = ("clicks", "orders", "payouts", "attribution")
# The lines under the table start their values where its address column starts.
LABEL_WIDTH = len("attribution") + 3


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
    if settings.up_env:
        # Its addresses would be taken for a broker and Redis to use (not started), and
        # its token reused: a stopped stack's ports, or whatever listens there now.
        print(
            f"afflux up: this shell sourced {settings.up_env}, another stack's addresses and"
            " token: start it from a new shell, or first run: unset AFFLUX_UP_ENV"
            " AFFLUX_KAFKA_BOOTSTRAP AFFLUX_REDIS_URL AFFLUX_ADMIN_TOKEN",
            file=sys.stderr,
        )
        return 2
    if partitions:
        settings = settings.model_copy(update={"topic_partitions": partitions})
    token, generated = admin_token(settings)
    stack = build_stack(
        settings, settings.data_dir / "up", {"AFFLUX_ADMIN_TOKEN": token}, storage, broker
    )
    with stop_on_signals():
        try:
            stack.check_ports()
            what = "Apache Kafka" if broker == "kafka" else f"broker ({storage} storage)"
            print(f"afflux: starting {what} and Redis ...", flush=True)
            stack.start_infra()
            if stack.object_store is not None:  # the embedded broker on durable storage
                note = long_log_note(stack.kafka_bootstrap, str(stack.options.work_dir))
                if note:
                    print(f"afflux up: note: {note}", file=sys.stderr, flush=True)
            terms = campaigns_path(campaigns, settings)
            if terms is not None:
                count = stack.apply_campaigns(terms)
                print(f"afflux: applied {terms} ({count} new terms versions)", flush=True)
            print(f"afflux: starting {', '.join(SERVICES)} ...", flush=True)
            stack.start_all()
            env_file = write_env_file(stack, token)
            _print_ready(stack, token, generated, env_file)
            _watch(stack)
        except StartFailed as exc:
            print(f"afflux up: {exc}", file=sys.stderr)
            return 1
        except TermsRefused as exc:  # checked before anything of the file is published
            print(f"afflux up: {terms}: nothing published: {exc.field}: {exc}", file=sys.stderr)
            return 2
        except (KeyboardInterrupt, Stopped):
            print("\nafflux: stopping ...", flush=True)
        finally:
            with signals_held():  # a second Ctrl-C must not orphan a child
                stack.stop()
                # Its addresses are no longer this stack's: a command that read them
                # would reach whatever takes the ports next.
                env_path(stack).unlink(missing_ok=True)
    print("afflux: stopped", flush=True)
    return 0


@dataclass(frozen=True)
class ServiceLine:
    """One row of the table ``afflux up`` prints once everything is healthy."""

    name: str
    address: str
    detail: str


def service_lines(stack: Stack) -> list[ServiceLine]:
    """Broker, Redis and each service: where it answers and what to know about it."""
    options = stack.options
    store = stack.object_store
    storage: str = "external" if options.kafka_bootstrap else options.storage
    where = f", log in {store.endpoint}/tansu" if store else ""
    if not options.kafka_bootstrap and options.broker == "kafka":
        storage, where = "Apache Kafka, disk", f", log in {kafka_data_dir(options.work_dir)}"
    lines = [
        ServiceLine("broker", stack.kafka_bootstrap, f"{storage} storage{where}"),
        ServiceLine(
            "redis", stack.redis_url, "" if options.redis_url else "AOF, fsync every second"
        ),
    ]
    for name in SERVICE_ORDER:
        url = stack.url(name)
        lines.append(ServiceLine(name, url, "health /healthz, API reference /docs"))
    return lines


def service_table(lines: Sequence[ServiceLine]) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title="afflux is up:",
        title_justify="left",
    )
    table.add_column("component", style="bold")
    table.add_column("address", no_wrap=True)
    table.add_column("details")
    for line in lines:
        table.add_row(line.name, line.address, line.detail)
    return table


def env_path(stack: Stack) -> Path:
    return stack.options.work_dir / "env"


def write_env_file(stack: Stack, token: str) -> Path:
    """Write the running stack's addresses and admin token as shell assignments, so
    that the admin commands (``afflux ledger rebuild``, ``afflux campaigns ...``, ``afflux
    keys ...``) and the README's curl examples reach this stack after ``. <file>``:
    without them they use the configured defaults (127.0.0.1:9092, redis://127.0.0.1:6379)
    and not the free ports the stack chose. Readable by its owner only (the token)."""
    values = {
        "AFFLUX_UP_ENV": str(env_path(stack)),  # the next afflux up refuses such a shell
        "AFFLUX_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "AFFLUX_REDIS_URL": stack.redis_url,
        "AFFLUX_ADMIN_TOKEN": token,
        "TOKEN": token,
        "CLICKS_URL": stack.url("clicks"),
        "ORDERS_URL": stack.url("orders"),
        "PAYOUTS_URL": stack.url("payouts"),
        # What the admin commands read (``afflux keys``, ``webhooks``, ``reviews``): without
        # it they called the default port, another stack's, with this stack's token.
        "AFFLUX_CLICKS_URL": stack.url("clicks"),
        "AFFLUX_ORDERS_URL": stack.url("orders"),
        "AFFLUX_PAYOUTS_URL": stack.url("payouts"),
    }
    path = env_path(stack)
    text = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)
    return path


def _print_ready(stack: Stack, token: str, generated: bool, env_file: Path) -> None:
    console = console_for(sys.stdout)
    console.print(service_table(service_lines(stack)))
    note = " (generated for development; set AFFLUX_ADMIN_TOKEN to choose)" if generated else ""
    payouts = stack.url("payouts")
    for what, value in (
        ("admin token", f"{token}{note}"),
        ("data", str(stack.options.work_dir)),
        ("logs", str(stack.log_dir)),
        ("shell", f". {env_file}  (this stack's addresses and token for the afflux commands)"),
        ("portal", f"{payouts}/login (a key from: afflux keys issue --creator ID | --merchant ID)"),
    ):
        console.print(f"{what:<{LABEL_WIDTH}}{value}")
    console.print("Press Ctrl-C to stop.")
    sys.stdout.flush()


# A child restarted this many times within RESTART_WINDOW_S keeps failing: the stack stops.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 300.0


def _watch(stack: Stack) -> None:
    """Restart a service or Redis that exits (a crash, an OOM kill, an operator's kill -9:
    the rest of the stack carries on, as in production under a supervisor); stop the
    stack when the broker or its object store exits, or a child keeps failing. It stopped
    every process when any one exited: a crash of the ledger alone took the redirects and
    order intake down with it."""
    restarts: dict[str, list[float]] = {}
    while True:
        for child in [*stack.infra, *stack.services.values()]:
            if child.alive():
                continue
            # The status first: the log's tail may be an old line (a warning at start)
            # when a signal ended the process without a word.
            what = (
                f"{child.name} exited unexpectedly ({child.exit_status()}); the end of its"
                f" log ({child.log_path}):\n{child.log_tail()}"
            )
            if child.name not in (*stack.services, "redis"):
                raise StartFailed(what)
            now = time.monotonic()
            recent = [t for t in restarts.get(child.name, []) if now - t < RESTART_WINDOW_S]
            if len(recent) >= MAX_RESTARTS:
                raise StartFailed(f"{what}\n(restarted {len(recent)} times in 5 minutes)")
            restarts[child.name] = [*recent, now]
            print(f"afflux up: {what.rstrip()}\nafflux up: restarting {child.name}", flush=True)
            try:
                if child.name == "redis":
                    stack.restart_redis()
                else:
                    stack.start_service(child.name)
            except StartFailed as exc:  # tried again on the next round, within the limit
                print(f"afflux up: {exc}", flush=True)
                continue
            print(f"afflux up: {child.name} restarted", flush=True)
        time.sleep(0.5)
