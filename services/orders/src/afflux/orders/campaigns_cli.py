"""``afflux campaigns apply FILE.yaml``: publish each campaign's terms as a new version.

A campaign whose terms and effective time equal its latest version is left
unchanged, so applying the same file twice publishes nothing the second time.
``python -m afflux.orders.campaigns_cli schema`` prints the JSON Schema of a
terms file (kept in docs/campaigns.schema.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from afflux.shared.campaign_file import CampaignFile, InvalidCampaignFile, load_campaign_file
from afflux.shared.io.campaign_publish import TermsRefused, TermsTooLarge, publish_terms
from afflux.shared.io.kafka import BrokerUnreachable, check_broker, create_topics
from afflux.shared.secret_policy import settings_error
from afflux.shared.settings import CommonSettings

NAME = "afflux campaigns"


async def apply(path: Path, settings: CommonSettings) -> list[str]:
    """Publish the file's terms; one line per campaign saying what happened."""
    entries = [(e.terms, e.effective_from) for e in load_campaign_file(path).campaigns]
    await check_broker(settings.kafka_bootstrap)
    await create_topics(
        settings.kafka_bootstrap, settings.topic_partitions, settings.input_retention_ms
    )
    published = {p.campaign_id: p for p in await publish_terms(settings.kafka_bootstrap, entries)}
    lines = []
    for terms, _ in entries:
        record = published.get(terms.campaign_id)
        if record is None:
            lines.append(f"{terms.campaign_id}: unchanged")
        else:
            lines.append(f"{terms.campaign_id}: published version {record.versions[-1].version}")
    return lines


def schema_text() -> str:
    """The JSON Schema of a campaign terms file (and, under ``terms``, of the PUT body)."""
    schema = CampaignFile.model_json_schema()
    schema["title"] = "afflux campaign terms file"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__)
    parser.add_argument("action", choices=["apply", "schema"])
    parser.add_argument("file", type=Path, nargs="?")
    args = parser.parse_args(list(argv))
    if args.action == "schema":
        sys.stdout.write(schema_text())
        return 0
    if args.file is None:
        parser.error("apply needs a FILE")
    try:
        settings = CommonSettings()
    except ValidationError as exc:
        print(f"{NAME}: invalid settings: {settings_error(exc)}", file=sys.stderr)
        return 2
    try:
        lines = asyncio.run(apply(args.file, settings))
    except InvalidCampaignFile as exc:
        print(f"{NAME}: invalid terms file: {exc}", file=sys.stderr)
        return 2
    except BrokerUnreachable as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 2
    except TermsRefused as exc:  # checked before anything is published
        print(f"{NAME}: nothing published: {exc.field}: {exc}", file=sys.stderr)
        return 2
    except TermsTooLarge as exc:  # the campaigns before it in the file were published
        print(f"{NAME}: not published: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
