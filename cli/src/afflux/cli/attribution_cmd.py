"""``afflux attribution rebuild``: rebuild the attribution worker's state from the topics.

When the worker reports that a partition's state no longer matches its input
log (``/healthz`` 503 ``diverged``, ``afflux_attribution_diverged_partitions``
above 0), stop every worker, run this, and start them again. See
docs/reliability.md, "A recreated input topic".
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    attribution = sub.add_parser(
        "attribution", help="attribution worker administration", description=__doc__
    )
    attribution.add_argument(
        "action", choices=["rebuild"], help="delete its state and offsets; it replays the topics"
    )
    attribution.add_argument(
        "--group", default=None, help="the worker's group (default: AFFLUX_ATTRIBUTION_GROUP)"
    )


def run(args: argparse.Namespace) -> int:
    from afflux.attribution.rebuild import GroupStillActive, clear_state
    from afflux.attribution.settings import AttributionSettings

    settings = AttributionSettings()
    group = args.group or settings.attribution_group
    try:
        done = asyncio.run(clear_state(settings.kafka_bootstrap, group))
    except GroupStillActive as exc:
        print(f"afflux attribution rebuild: {exc}", file=sys.stderr)
        return 1
    print(
        f"afflux attribution rebuild: deleted the consumer group {group}"
        f"{'' if done.group_deleted else ' (it had no offsets)'} and the changelogs "
        f"{', '.join(done.topics_deleted) or '(none existed)'}, and began state epoch "
        f"{done.epoch}. Start the workers: they empty local stores of an earlier epoch and "
        "read every input topic from its start. Done when /healthz answers 200 and "
        'afflux_consumer_lag_messages{service="attribution"} is 0.'
    )
    return 0
