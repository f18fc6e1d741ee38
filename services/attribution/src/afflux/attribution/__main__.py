"""``python -m afflux.attribution``: the attribution worker (/healthz, /metrics on its port)."""

from __future__ import annotations

import asyncio
import logging
import sys

from pydantic import ValidationError

from afflux.attribution.app import create_app
from afflux.attribution.changelog import ensure_changelogs
from afflux.attribution.settings import AttributionSettings
from afflux.shared.io.gc_policy import tune_gc
from afflux.shared.io.kafka import BrokerUnreachable, check_broker, partition_mismatches
from afflux.shared.secret_policy import settings_error

NAME = "afflux attribution"


def main() -> int:
    try:
        settings = AttributionSettings()
    except ValidationError as exc:
        print(f"{NAME}: invalid settings: {settings_error(exc)}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))
    logging.getLogger(__name__).info("starting")
    try:
        asyncio.run(check_broker(settings.kafka_bootstrap))
        mismatched = asyncio.run(
            partition_mismatches(settings.kafka_bootstrap, settings.topic_partitions)
        )
    except BrokerUnreachable as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 2
    if mismatched:
        # Its stages join topics partition by partition: started, they died a minute
        # later on a changelog that did not answer, or left refunds unapplied.
        print(
            f"{NAME}: {'; '.join(mismatched)} (AFFLUX_TOPIC_PARTITIONS="
            f"{settings.topic_partitions}; see docs/deploy.md, Scaling)",
            file=sys.stderr,
        )
        return 2
    (settings.data_dir / f"attribution{settings.instance_id}").mkdir(parents=True, exist_ok=True)
    app, runtime = create_app(settings)
    asyncio.run(
        ensure_changelogs(settings.kafka_bootstrap, runtime.changelogs, settings.topic_partitions)
    )
    import faust

    tune_gc()
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
