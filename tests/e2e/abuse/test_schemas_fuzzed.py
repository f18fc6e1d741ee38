"""Schemathesis against each HTTP service's own OpenAPI schema: no 5xx, answers match it.

Merchant requests to orders are signed by the hook in schemathesis_signing.py, so the
fuzzing reaches what lies behind the signature check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from afflux.cli.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HOOKS_DIR = Path(__file__).parent
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


# The run's own bound (600 s) fires before the suite's 300 s default, saying what it found.
@pytest.mark.timeout(660)
@pytest.mark.parametrize("service", ["clicks", "orders", "payouts", "attribution"])
def test_fuzzed_requests_never_get_a_server_error_and_match_the_schema(
    stack: Stack, admin_token: str, service: str, tmp_path: Path
) -> None:
    base = stack.url(service)
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{base}/openapi.json",
            "--checks",
            CHECKS,
            # Per operation in the fuzzing phase; the coverage phase (every boundary and
            # missing field, about 2,000 cases per service) does not depend on it.
            "--max-examples",
            "10",
            "--seed",
            "1",
            "--generation-deterministic",
            "--header",
            f"Authorization: Bearer {admin_token}",
            "--exclude-path-regex",
            "^/metrics$",
            "--no-color",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "schemathesis_signing",
            "PYTHONPATH": str(HOOKS_DIR),
        },
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
