"""The ``afflux`` command: run the stack, the demo, benchmarks and admin tasks."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence

from afflux.cli import attribution_cmd, benches, ledger_cmd, secrets_cmd
from afflux.cli.brokers import add_broker_option, broker_of
from afflux.cli.storage import add_storage_option, storage_of


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="afflux", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start broker, Redis and the four services; Ctrl-C stops all")
    up.add_argument("--campaigns", default=None, help="campaign terms YAML to apply at start")
    up.add_argument("--partitions", type=int, default=None, help="partitions of data topics")
    add_storage_option(up)
    add_broker_option(up)

    demo = sub.add_parser("demo", help="run the stack and a simulated affiliate program")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--creators", type=int, default=50)
    demo.add_argument("--visitors", type=int, default=1500)
    demo.add_argument("--campaigns", default=None, help="campaign terms YAML (default: examples)")
    add_storage_option(demo)

    topics = sub.add_parser("topics", help="topic administration")
    topics.add_argument("action", choices=["create"])

    campaigns = sub.add_parser("campaigns", help="campaign terms administration")
    campaigns.add_argument("action", choices=["apply"])
    campaigns.add_argument("file")

    schemas = sub.add_parser("schemas", help="JSON Schemas of the events (docs/events/)")
    schemas.add_argument("action", choices=["export", "check"])
    schemas.add_argument("--dir", default="docs/events", help="target folder")

    bench = sub.add_parser("bench", help="benchmarks that print a figure beside a baseline")
    bench.add_argument("name", choices=sorted(benches.installed()))
    bench.add_argument("rest", nargs=argparse.REMAINDER)

    verify = sub.add_parser(
        "verify",
        help="drive a seeded workload and compare with the oracle; --chaos: kill -9 random "
        "processes and compare with a clean run",
    )
    verify.add_argument("rest", nargs=argparse.REMAINDER)

    secrets_cmd.add_parser(sub)
    ledger_cmd.add_parser(sub)
    attribution_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # argparse's REMAINDER drops a leading "--option" inside a sub-command, so
    # the pass-through commands get everything after their name themselves.
    given = list(sys.argv[1:] if argv is None else argv)
    if len(given) >= 2 and given[0] == "bench" and not given[1].startswith("-"):
        return benches.run(given[1], given[2:])
    if given[:1] == ["verify"] and "--chaos" in given:  # random kills, against a clean run
        chaos = importlib.import_module("afflux.cli.chaos")
        return int(chaos.main([a for a in given[1:] if a != "--chaos"]))
    if given[:1] == ["verify"]:
        return int(importlib.import_module("afflux.cli.verify").main(given[1:]))
    args = _parser().parse_args(given)
    if args.command == "up":
        from afflux.cli.up import run_up

        return run_up(args.campaigns, args.partitions, storage_of(args), broker_of(args))
    if args.command == "demo":
        from afflux.cli.demo import run_demo

        return run_demo(
            seed=args.seed,
            creators=args.creators,
            visitors=args.visitors,
            campaigns=args.campaigns,
            storage=storage_of(args),
        )
    if args.command == "secrets":
        return secrets_cmd.run(args.merchant)
    if args.command == "ledger":
        return ledger_cmd.run(args)
    if args.command == "attribution":
        return attribution_cmd.run(args)
    if args.command == "topics":
        return _create_topics()
    if args.command == "campaigns":
        module = importlib.import_module("afflux.orders.campaigns_cli")
        return int(module.main([args.action, args.file]))
    if args.command == "schemas":
        return _schemas(args.action, args.dir)
    if args.command == "bench":
        return benches.run(args.name, args.rest)
    if args.command == "verify":
        module = importlib.import_module("afflux.cli.verify")
        return int(module.main(list(args.rest)))
    return 2


def _schemas(action: str, directory: str) -> int:
    from pathlib import Path

    from afflux.shared import schemas

    if action == "check":
        stale = schemas.stale(Path(directory))
        for name in stale:
            print(f"stale: {directory}/{name}")
        return 1 if stale else 0
    written = schemas.export(Path(directory))
    print(f"{len(written)} file(s) written to {directory}")
    return 0


def _create_topics() -> int:
    from afflux.shared.io.kafka import create_topics
    from afflux.shared.settings import CommonSettings

    settings = CommonSettings()
    created = asyncio.run(create_topics(settings.kafka_bootstrap, settings.topic_partitions))
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
