"""The ``afflux`` command: run the stack, the demo, benchmarks and admin tasks."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from afflux.cli import (
    attribution_cmd,
    benches,
    keys_cmd,
    ledger_cmd,
    orphans,
    reviews_cmd,
    secrets_cmd,
    webhooks_cmd,
    whatif_cmd,
)
from afflux.cli.brokers import add_broker_option, broker_of
from afflux.cli.failures import guarded
from afflux.cli.help_format import PlainArgumentParser, counting, positive_count
from afflux.cli.storage import add_storage_option, storage_of


def _parser() -> argparse.ArgumentParser:
    parser = PlainArgumentParser(
        prog="afflux",
        description="Run the afflux stack, its demo, benchmarks and admin tasks.",
        epilog="New here? Start with: afflux demo (about a minute). Then afflux up keeps the "
        "stack running. afflux COMMAND --help explains each command; README.md and docs/ "
        "the rest.",
    )
    parser.add_argument("--version", action="version", version=f"afflux {_version()}")
    sub = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="start broker, Redis and the four services; Ctrl-C stops all",
        description="Start the broker, Redis and the four services on this machine, apply the "
        "campaign terms and print where each service answers. Runs until Ctrl-C or SIGTERM, "
        "then stops everything it started. Data lives in AFFLUX_DATA_DIR/up (.afflux/up by "
        "default).",
    )
    up.add_argument("--campaigns", default=None, help="campaign terms YAML to apply at start")
    up.add_argument(
        "--partitions", type=_positive, default=None, help="partitions of data topics (1 or more)"
    )
    add_storage_option(up)
    add_broker_option(up)

    demo = sub.add_parser(
        "demo",
        help="run the stack and a simulated affiliate program",
        description="Start a fresh stack, drive a simulated affiliate program through the real "
        "HTTP endpoints (creators' links, visitors who click and buy, promo codes, refunds), "
        "print each currency's creator ranking read back from the payouts API, and stop.",
    )
    demo.add_argument("--seed", type=int, default=7, help="seed of the simulation (default 7)")
    demo.add_argument(
        "--creators", type=counting("creators"), default=50, help="creators (default 50)"
    )
    demo.add_argument(
        "--visitors", type=counting("visitors"), default=1500, help="visitors (default 1500)"
    )
    demo.add_argument("--campaigns", default=None, help="campaign terms YAML (default: examples)")
    add_storage_option(demo)

    topics = sub.add_parser(
        "topics",
        help="topic administration",
        description="Create every afflux topic on AFFLUX_KAFKA_BOOTSTRAP (those missing).",
    )
    topics.add_argument("action", choices=["create"], help="create the missing topics")

    campaigns = sub.add_parser(
        "campaigns",
        help="campaign terms administration",
        description="apply: publish the campaign terms of a YAML file as new terms versions. "
        "whatif: replay the recorded events under the file's terms as a draft and show what "
        "each creator would have been paid beside what the current terms pay; nothing is "
        "published or written (docs/campaigns.md, What-if).",
    )
    campaigns.add_argument(
        "action", choices=["apply", "whatif"], help="publish the file's terms, or try them"
    )
    campaigns.add_argument("file", help="campaign terms YAML, e.g. examples/campaigns.yaml")
    whatif_cmd.add_options(campaigns)

    schemas = sub.add_parser(
        "schemas",
        help="JSON Schemas of the events (docs/events/)",
        description="Write the events' JSON Schemas (export) or list the stale ones (check).",
    )
    schemas.add_argument("action", choices=["export", "check"], help="write, or compare")
    schemas.add_argument("--dir", default="docs/events", help="target folder")

    bench = sub.add_parser(
        "bench",
        help="benchmarks that print a figure beside a baseline",
        description="Run one benchmark; `afflux bench NAME --help` lists its options.",
    )
    bench.add_argument("name", choices=sorted(benches.installed()), help="the benchmark")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="the benchmark's own options")

    verify = sub.add_parser(
        "verify",
        help="drive a seeded workload and compare with the oracle; --chaos: kill -9 random "
        "processes and compare with a clean run",
        description="See `afflux verify --help` and `afflux verify --chaos --help`.",
    )
    verify.add_argument("rest", nargs=argparse.REMAINDER, help="the options of verify")

    secrets_cmd.add_parser(sub)
    ledger_cmd.add_parser(sub)
    attribution_cmd.add_parser(sub)
    webhooks_cmd.add_parser(sub)
    keys_cmd.add_parser(sub)
    reviews_cmd.add_parser(sub)
    return parser


def _asks_help(given: Sequence[str]) -> bool:
    return "-h" in given or "--help" in given


def _version() -> str:
    try:
        return version("afflux-cli")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    return guarded(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    # argparse's REMAINDER drops a leading "--option" inside a sub-command, so
    # the pass-through commands get everything after their name themselves.
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] in (["up"], ["demo"], ["verify"], ["bench"]) and not _asks_help(given):
        orphans.reap_and_say(given[0])
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
    if args.command == "webhooks":
        return webhooks_cmd.run(args)
    if args.command == "keys":
        return keys_cmd.run(args)
    if args.command == "reviews":
        return reviews_cmd.run(args)
    if args.command == "topics":
        return _create_topics()
    if args.command == "campaigns" and args.action == "whatif":
        return whatif_cmd.run(Path(args.file), args.first, args.last, args.json)
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


def _positive(text: str) -> int:
    return positive_count(text, "partitions")


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
    from afflux.shared.io.kafka import PartitionsMismatch, create_topics
    from afflux.shared.settings import CommonSettings

    settings = CommonSettings()
    try:
        created = asyncio.run(
            create_topics(
                settings.kafka_bootstrap, settings.topic_partitions, settings.input_retention_ms
            )
        )
    except PartitionsMismatch as exc:
        print(f"afflux topics: {exc}", file=sys.stderr)
        return 2
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
