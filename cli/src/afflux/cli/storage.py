"""Where the embedded broker keeps its log: the one choice every command that starts
a broker offers (``--storage``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal, cast

BrokerStorage = Literal["durable", "memory"]
STORAGES: tuple[BrokerStorage, ...] = ("durable", "memory")
# Nothing acknowledged should live only in memory unless someone asked for it.
DEFAULT_STORAGE: BrokerStorage = "durable"


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        choices=STORAGES,
        default=DEFAULT_STORAGE,
        help="broker log: durable (a local S3 store on disk, the default) or memory "
        "(lost when the broker stops; faster)",
    )


def storage_of(args: argparse.Namespace) -> BrokerStorage:
    return cast(BrokerStorage, args.storage)


def object_store_dir(work_dir: Path) -> Path:
    return work_dir / "seaweedfs"
