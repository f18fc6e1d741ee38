"""The demo's and the load's clients never send on a connection the server is closing."""

from __future__ import annotations

import pytest

from afflux.cli.demo_client import stack_client_limits
from afflux.shared.io.http_limits import HttpLimits
from afflux.shared.settings import CommonSettings

pytestmark = pytest.mark.unit


def test_an_idle_connection_is_dropped_well_before_the_servers_keep_alive_ends() -> None:
    # Equal timers race: the server closes the connection as the client sends on it,
    # and the request fails with a ReadError though the server is well.
    limits = stack_client_limits(100)
    assert limits.keepalive_expiry is not None
    assert limits.keepalive_expiry <= HttpLimits().keep_alive_seconds / 2
    # and before the shortest a server may be set to
    shortest = CommonSettings.model_fields["http_keep_alive_seconds"].metadata[0].ge
    assert limits.keepalive_expiry < shortest
    assert limits.max_connections == 100
