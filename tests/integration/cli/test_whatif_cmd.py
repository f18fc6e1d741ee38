"""``afflux campaigns whatif`` on the session broker: an invalid draft exits 2 naming the
field before anything is read, an unknown campaign exits 2, and a range without events
is an empty diff, exit 0."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.campaign_publish import publish_terms

pytestmark = pytest.mark.integration

DRAFT = """
campaigns:
  - terms:
      campaign_id: {campaign}
      merchant_id: whatif-cli-merchant
      currency: EUR
      plan:
        sale: {{rate: {{percent: "{percent}"}}}}
"""


def whatif(infra: Any, draft: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "afflux.cli", "campaigns", "whatif", str(draft), *args],
        env={**os.environ, "AFFLUX_KAFKA_BOOTSTRAP": infra.kafka_bootstrap},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def published(infra: Any) -> str:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "whatif-cli-shop",
            "merchant_id": "whatif-cli-merchant",
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    asyncio.run(publish_terms(infra.kafka_bootstrap, [(terms, 0)]))
    return terms.campaign_id


def test_an_invalid_draft_exits_2_naming_the_field(infra: Any, tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT.format(campaign="whatif-cli-shop", percent="ten"))
    done = whatif(infra, draft)
    assert done.returncode == 2
    assert "campaigns.0.terms.plan.sale.rate.percent" in done.stderr


def test_an_unknown_campaign_exits_2(infra: Any, published: str, tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT.format(campaign="whatif-cli-nowhere", percent="20"))
    done = whatif(infra, draft)
    assert done.returncode == 2
    assert "unknown campaign 'whatif-cli-nowhere'" in done.stderr


def test_a_range_without_events_is_an_empty_diff(
    infra: Any, published: str, tmp_path: Path
) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT.format(campaign=published, percent="20"))
    done = whatif(infra, draft, "--from", "2020-01-01", "--to", "2020-01-31", "--json")
    assert done.returncode == 0, done.stderr
    [diff] = json.loads(done.stdout)
    assert diff["empty"] is True
    assert diff["orders"] == 0
    shown = whatif(infra, draft, "--from", "2020-01-01", "--to", "2020-01-31")
    assert shown.returncode == 0
    assert "No difference" in shown.stdout
