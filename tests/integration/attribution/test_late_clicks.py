"""A stall delivers clicks after their orders were decided: the worker's answer, once its
corrections are netted, must still be the oracle's (event times alone); and the checks
of ``afflux verify`` must tell a worker that keeps its first decisions from one that
corrects them.

The stall is simulated by arrival order: every order, confirmation and refund is
produced first, the test waits until every order's outcome is on the topic, and only
then produces the clicks (as a broker stall or a clicks outage drained from the spool
would deliver them).
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import harness as h
import pytest

from afflux.cli.brokers import BrokerKind, broker_with_topics
from afflux.cli.ledger_compare import (
    attribution_differences,
    expected_lines,
    line_differences,
    lines_of,
    netted,
)
from afflux.oracle import attribute, generate, net_outcomes
from afflux.shared.core.terms import CommissionPlan, TermsVersion
from afflux.shared.events import (
    AnyEvent,
    CampaignTermsPublished,
    ClickRecorded,
    ConversionAttributed,
    Envelope,
    OrderPlaced,
    OrderUnattributed,
)
from afflux.shared.topics import CONVERSIONS, REVERSALS, UNMATCHED

pytestmark = pytest.mark.integration

SEEDS = range(300, 306)
PARTITIONS = 4


@dataclass
class StalledRun:
    redecide: bool
    inputs: list[Envelope]  # clicks, orders, confirmations, refunds
    campaigns: dict[str, tuple[TermsVersion, ...]]
    outputs: list[Envelope]  # conversions and reversals
    late_clicks: dict[str, float]  # afflux_late_clicks_total by outcome


@pytest.fixture(scope="module", params=[True, False], ids=["redecide", "redecide-off"])
def stalled(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    broker_kind: BrokerKind,
) -> Iterator[StalledRun]:
    redecide: bool = request.param
    work = tmp_path_factory.mktemp(f"late-clicks-{redecide}")
    with broker_with_topics(broker_kind, work, PARTITIONS) as bootstrap:
        scenarios = [generate(seed, grace_seconds=2, prefix="late") for seed in SEEDS]
        campaigns = scenarios[0].campaigns
        asyncio.run(h.publish_campaigns(bootstrap, campaigns))
        env = {"AFFLUX_ATTRIBUTION_REDECIDE": str(redecide).lower()}
        worker, metrics_port = h.start_worker(bootstrap, work, extra=env)
        try:
            events = [e for s in scenarios for e in s.events]
            clicks = [e for e in events if isinstance(e, ClickRecorded)]
            rest = [e for e in events if not isinstance(e, ClickRecorded)]
            asyncio.run(h.produce(bootstrap, rest, PARTITIONS))
            orders = {(e.campaign_id, e.order_id) for e in rest if isinstance(e, OrderPlaced)}
            _wait(lambda: orders <= _decided(bootstrap), "every order decided")
            asyncio.run(h.produce(bootstrap, clicks, PARTITIONS, orders_from=rest))
            _wait(
                lambda: (
                    _metric(metrics_port, "afflux_attribution_events_total", "clicks")
                    >= len(clicks)
                ),
                "every click consumed",
            )
            want = net_outcomes(_oracle_outputs(events, campaigns))
            if redecide:  # the corrections still pass through the refund stage
                _wait(lambda: net_outcomes(_outputs(bootstrap)) == want, "corrections settled")
            yield StalledRun(
                redecide,
                events,
                campaigns,
                _outputs(bootstrap),
                _late_clicks(metrics_port),
            )
        finally:
            worker.stop()


def test_after_a_stall_the_netted_outcome_of_every_order_equals_the_oracle(
    stalled: StalledRun,
) -> None:
    want = net_outcomes(_oracle_outputs(stalled.inputs, stalled.campaigns))
    got = net_outcomes(stalled.outputs)
    if stalled.redecide:
        assert got == want  # winner, rule, click, amount and what was reversed of it
        assert (
            stalled.late_clicks.get("reattributed", 0) + stalled.late_clicks.get("attributed", 0)
            > 0
        )
    else:
        assert got != want  # the stall changed attribution: the check is not vacuous
        assert set(stalled.late_clicks) == {"unchanged"}


def test_verify_reports_differences_exactly_when_the_stall_changed_attribution(
    stalled: StalledRun,
) -> None:
    terms: list[AnyEvent] = [
        CampaignTermsPublished(
            event_id=f"terms-{cid}",
            occurred_at=0,
            campaign_id=cid,
            versions=tuple(_paying(v) for v in versions),
        )
        for cid, versions in stalled.campaigns.items()
    ]
    events = terms + cast(list[AnyEvent], stalled.inputs)
    attribution = attribution_differences(events, stalled.outputs)
    actual = lines_of(events, stalled.outputs)
    ledger = line_differences(
        expected_lines(events), netted(x for lines in actual.values() for x in lines)
    )
    assert expected_lines(events), "the comparison must have lines to compare"
    if stalled.redecide:
        assert (attribution, ledger) == ([], [])
    else:
        assert attribution, "verify missed attribution changed by the stall"
        assert ledger, "verify missed creators paid for orders they lost"


PAYING = CommissionPlan.model_validate(
    {"sale": {"rate": {"percent": "10"}}, "lead_minor": 500, "base_fee_minor": 1_000}
)


def _paying(version: TermsVersion) -> TermsVersion:
    """The scenario's terms with a plan that pays (the attribution does not read it)."""
    terms = version.terms.model_copy(update={"plan": PAYING})
    return version.model_copy(update={"terms": terms})


def _oracle_outputs(
    events: list[Envelope], campaigns: dict[str, tuple[TermsVersion, ...]]
) -> list[Envelope]:
    result = attribute(events, campaigns)
    return [*result.conversions, *result.reversals]


def _outputs(bootstrap: str) -> list[Envelope]:
    topics = asyncio.run(h.read_topics(bootstrap, (CONVERSIONS.name, REVERSALS.name)))
    return [*topics[CONVERSIONS.name], *topics[REVERSALS.name]]


def _decided(bootstrap: str) -> set[tuple[str, str]]:
    topics = asyncio.run(h.read_topics(bootstrap, (CONVERSIONS.name, UNMATCHED.name)))
    return {
        (e.campaign_id, e.order_id)
        for events in topics.values()
        for e in events
        if isinstance(e, ConversionAttributed | OrderUnattributed)
    }


def _metric(port: int, name: str, label: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and f'"{label}"' in line
    )


def _late_clicks(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("afflux_late_clicks_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = float(line.rsplit(" ", 1)[1])
    return out


def _wait(done: Callable[[], bool], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")
