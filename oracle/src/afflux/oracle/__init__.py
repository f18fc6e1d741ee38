"""The batch attribution oracle and the seeded scenarios it is checked on."""

from afflux.oracle.batch import (
    NetOutcome,
    OracleResult,
    admitted,
    attribute,
    canonical,
    net_outcomes,
)
from afflux.oracle.scenarios import Scenario, generate

__all__ = [
    "NetOutcome",
    "OracleResult",
    "Scenario",
    "admitted",
    "attribute",
    "canonical",
    "generate",
    "net_outcomes",
]
