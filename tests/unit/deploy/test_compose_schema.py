"""compose.yaml is valid Compose: it passes the Compose Specification's JSON Schema
(vendored under compose_spec/, see its README for source and licence)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((Path(__file__).parent / "compose_spec/compose-spec.json").read_text("utf-8"))


def _problems(document: dict[str, Any]) -> list[str]:
    validator = jsonschema_rs.validator_for(SCHEMA)
    return [
        f"{'/'.join(str(p) for p in error.instance_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_compose_yaml_follows_the_compose_specification() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))
    assert _problems(compose) == []


@pytest.mark.parametrize(
    ("where", "value"),
    [
        # a typo in a service key
        ("services/redis/healthchek", {"test": ["CMD", "true"]}),
        # a limit of the wrong type
        ("services/redis/deploy/resources/limits/cpus", [1]),
        # a logging option that is not a string map
        ("services/clicks/logging/options", "max-size=20m"),
        # a secret with neither file, environment nor external
        ("secrets/admin_token", {"path": "x"}),
    ],
)
def test_the_schema_check_finds_a_broken_file(where: str, value: Any) -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))
    *parents, last = where.split("/")
    node = compose
    for key in parents:
        node = node[key]
    node[last] = value
    assert _problems(compose) != []
