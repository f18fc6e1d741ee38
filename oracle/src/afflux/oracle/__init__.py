"""The batch attribution oracle and the seeded scenarios it is checked on; the commission
reference the payouts journal is checked against."""

from afflux.oracle.batch import (
    NetOutcome,
    OracleResult,
    admitted,
    attribute,
    canonical,
    net_outcomes,
)
from afflux.oracle.commission import (
    Component,
    TargetLine,
    balances,
    net_per_order,
    reference_from_events,
    reference_lines,
    target_amounts,
)
from afflux.oracle.scenarios import Scenario, generate

__all__ = [
    "Component",
    "NetOutcome",
    "OracleResult",
    "Scenario",
    "TargetLine",
    "admitted",
    "attribute",
    "balances",
    "canonical",
    "generate",
    "net_outcomes",
    "net_per_order",
    "reference_from_events",
    "reference_lines",
    "target_amounts",
]
