"""``afflux bench ledger`` runs end to end on a small workload, on one Redis and on a
three-master Redis Cluster, ends with its JSON line and passes its own checks: every
fact stored once, offsets at the end, the journal netted per line equal to the oracle."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from typing import Any

import pytest

from afflux.bench.ledger import generate, main, to_records
from afflux.bench.ledger_checks import differences
from afflux.bench.ledger_cluster import owned_records

pytestmark = pytest.mark.integration

SMALL = ["--events", "2000", "--creators", "50", "--json"]


Run = tuple[dict[str, Any], list[str]]  # the JSON line, the human table before it


def _run(*extra: str) -> Run:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main([*SMALL, *extra])
    out = printed.getvalue().strip().splitlines()
    assert code == 0, out
    result: dict[str, Any] = json.loads(out[-1])
    return result, out[:-1]


@pytest.fixture(scope="module")
def plain() -> Run:
    """One small run on one Redis, shared by the tests that read it."""
    return _run()


def test_a_small_ledger_bench_prints_its_figure_beside_the_baseline(plain: Run) -> None:
    result, table = plain
    assert result["bench"] == "ledger"
    assert result["unit"] == "events/s"
    assert result["redis"] == "plain"
    assert result["value"] > 0
    assert result["baseline"] > 0
    assert result["ratio"] == pytest.approx(result["value"] / result["baseline"], rel=0.01)
    assert result["events"] == 2000
    assert result["load_average_1m"] >= 0
    assert result["check"] == "ok"
    assert any(line.startswith("raw pipelined Redis") for line in table)


def test_a_small_ledger_bench_nets_to_the_oracle_and_stores_every_fact_once(plain: Run) -> None:
    result, _ = plain
    every_fact = result["clicks"] + result["conversions"] + result["reversals"]
    assert result["facts_stored"] == result["facts_expected"] == every_fact == 2000
    assert result["oracle_amounts"] > 0
    assert result["oracle_differences"] == 0
    assert result["postings"] >= result["oracle_amounts"]  # one posting per amount at least
    assert 0 < result["active_creators"] <= 50


def test_a_small_ledger_bench_measures_bytes_per_posting_and_per_creator(plain: Run) -> None:
    result, table = plain
    parts = result["journal_bytes"] + result["per_event_bytes"] + result["other_bytes"]
    assert result["ledger_bytes"] == parts
    assert result["journal_bytes"] > 0
    assert result["bytes_per_posting"] == round(result["ledger_bytes"] / result["postings"])
    per_creator = round(result["ledger_bytes"] / result["active_creators"])
    assert result["bytes_per_active_creator"] == per_creator
    assert any("bytes per posting" in line for line in table)


def test_two_consumers_on_a_three_master_cluster_net_to_the_oracle() -> None:
    result, table = _run("--redis", "cluster", "--consumers", "2")
    assert result["check"] == "ok"
    assert result["cluster_check"] == "ok"
    assert result["cluster_masters"] == 3
    assert result["cluster_consumers"] == 2
    assert result["cluster_oracle_differences"] == 0
    assert result["cluster_facts_stored"] == result["facts_expected"] == 2000
    assert sum(c["events"] for c in result["cluster_per_consumer"]) == 2000
    assert all(c["events"] > 0 for c in result["cluster_per_consumer"])
    ratio = result["cluster_value"] / result["value"]
    assert result["cluster_ratio_to_one_consumer"] == pytest.approx(ratio, rel=0.01)
    assert any(line.startswith("ledger: 2 consumers, 3-master cluster") for line in table)


def test_partitions_are_dealt_out_so_consumers_own_disjoint_shares_of_every_record() -> None:
    records = to_records(generate(600, 20, 3, seed=7), pack=2)
    shares = owned_records(records, 2)
    assert sorted(r for share in shares for r in share) == sorted(records)
    partitions = [{(r[0], r[1]) for r in share} for share in shares]
    assert all(partitions)
    assert not partitions[0] & partitions[1]
    for share in shares:  # each partition's records keep their order
        for tp in {(r[0], r[1]) for r in share}:
            assert [r for r in share if (r[0], r[1]) == tp] == [
                r for r in records if (r[0], r[1]) == tp
            ]


def test_the_oracle_check_names_every_amount_the_journal_gets_wrong() -> None:
    oracle = {("line-a", 10): 500, ("line-b", 20): -120}
    journal = Counter(oracle)
    journal[("line-a", 10)] += 1  # one cent too much
    del journal[("line-b", 20)]  # a clawback never posted
    journal[("line-c", 30)] = 7  # a line the oracle does not pay
    assert differences(dict(journal), oracle) == [
        (("line-a", 10), 501, 500),
        (("line-b", 20), 0, -120),
        (("line-c", 30), 7, 0),
    ]


def test_the_refused_runs_dead_letter_every_sale_past_the_bound_and_net_to_the_oracle() -> None:
    result, table = _run("--poll-records", "100", "--refused", "--refused-sales", "40")
    assert result["check"] == result["refused_check"] == "ok"
    assert result["refused_dead_letters"] == result["polls"] - 1 > 0  # the first one fits
    assert result["refused_oracle_differences"] == 0
    assert result["refused_clean_value"] > 0
    assert result["refused_value"] > 0
    assert result["refused_slowdown"] > 0
    assert any(line.startswith("polls with a sale refused") for line in table)
