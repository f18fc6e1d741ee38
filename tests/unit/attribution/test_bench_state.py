"""``afflux bench state`` measures the stages' own state and shows what pruning keeps."""

from __future__ import annotations

import json

import pytest

from afflux.bench.state import main

pytestmark = pytest.mark.unit


def test_state_figures_are_per_key_and_pruning_drops_every_old_click(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--visitors", "2000", "--json"]) == 0

    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["join_keys"] > 1000
    assert result["join_bytes_per_key"] > 0
    assert result["join_changelog_bytes_per_key"] > 0
    assert result["refund_keys"] > 0
    assert result["refund_bytes_per_key"] > 0
    assert result["clicks_after_prune"] == 0
    assert result["join_keys_after_prune"] < result["join_keys"]
    assert result["refund_keys_after_prune"] == result["refund_keys"]
