"""The batch attribution oracle and the seeded scenarios it is checked on."""

from afflux.shared.oracle.batch import OracleResult, attribute, canonical
from afflux.shared.oracle.scenarios import Scenario, generate

__all__ = ["OracleResult", "Scenario", "attribute", "canonical", "generate"]
