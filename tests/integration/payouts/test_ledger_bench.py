"""``afflux bench ledger`` runs end to end on a small workload and ends with its JSON line."""

from __future__ import annotations

import json

import pytest

from afflux.bench.ledger import main

pytestmark = pytest.mark.integration


def test_a_small_ledger_bench_prints_its_figure_beside_the_baseline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--events", "2000", "--creators", "50", "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0, out
    result = json.loads(out[-1])
    assert result["bench"] == "ledger"
    assert result["unit"] == "events/s"
    assert result["value"] > 0
    assert result["baseline"] > 0
    assert result["ratio"] == pytest.approx(result["value"] / result["baseline"], rel=0.01)
    assert result["events"] == 2000
    assert result["check"] == "ok"
    assert result["facts_stored"] == result["conversions"] + result["reversals"] > 0
    # The human table comes first.
    assert any(line.startswith("raw pipelined Redis") for line in out[:-1])
