"""A whole stack (fresh broker, Redis and the four services as processes) per test module.

A module that asks for ``stack`` says what it runs with in ``TERMS_YAML`` (its
campaigns file) and ``ADMIN_TOKEN``; a package whose conftest holds them overrides
the fixtures ``stack_campaigns`` and ``admin_token`` instead. ``stack_env`` adds
environment to the services (none by default). A package that needs another kind
of stack (a gated broker, a proxy it trusts) defines its own ``stack``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from afflux.cli.processes import free_port
from afflux.cli.stack import SERVICES, Stack, StackOptions


@pytest.fixture(scope="module")
def stack_campaigns(request: pytest.FixtureRequest) -> str:
    campaigns: str = request.module.TERMS_YAML
    return campaigns


@pytest.fixture(scope="module")
def admin_token(request: pytest.FixtureRequest) -> str:
    token: str = request.module.ADMIN_TOKEN
    return token


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    stack_campaigns: str,
    admin_token: str,
    stack_env: dict[str, str],
) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    running = Stack(
        StackOptions(
            work_dir=work,
            ports={name: free_port() for name in SERVICES},
            env={"AFFLUX_ADMIN_TOKEN": admin_token, **stack_env},
        )
    )
    try:
        running.start_infra()
        campaigns = work / "campaigns.yaml"
        campaigns.write_text(stack_campaigns)
        running.apply_campaigns(campaigns)
        running.start_all()
        yield running
    finally:
        running.stop()
