"""``run_service``: what every HTTP service's ``__main__`` does.

Build the settings once (an invalid setting exits 2 with one line that never echoes
a value), configure logging, run the service's own start-up check (its configuration
beyond the settings: one line saying what is wrong, exit 2), check that the broker and
Redis answer (exit 2 naming which), build the app (a ``StartupRefused`` exits 2 with
its message), then serve with the shared limits until SIGTERM (exit 0; 1 when the
server never started). The app is built last, so nothing it logs while being built
comes before the one line a refused start-up prints.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from afflux.shared.io.http_limits import HttpLimits
from afflux.shared.io.serving import serve, unreachable
from afflux.shared.secret_policy import settings_error
from afflux.shared.settings import CommonSettings

S = TypeVar("S", bound=CommonSettings)
Serve = Callable[[Any, str, int, HttpLimits], bool]


class StartupRefused(Exception):
    """A configuration the service cannot start with; the message is the one line shown."""


def _log_setup(level: str, quiet: Mapping[str, int | None]) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name, floor in quiet.items():
        # None: warnings and worse, or quieter when the service's own level is.
        logging.getLogger(name).setLevel(floor or max(logging.WARNING, logging.root.level))


def run_service(
    name: str,
    settings_cls: type[S],
    create_app: Callable[[S], Any],
    *,
    port: Callable[[S], int],
    limits: Callable[[S], HttpLimits] = HttpLimits.from_settings,
    check: Callable[[S], str | None] | None = None,
    refused: tuple[type[Exception], ...] = (),
    quiet: Mapping[str, int | None] | None = None,
    serve_with: Serve = serve,
) -> int:
    """Start the service ``name``; the process's exit code.

    ``port`` picks the service's port from its settings; ``check`` is the service's own
    start-up check, run before the broker and Redis are (None, or the one line saying
    what is wrong, starting with ``name``); ``refused``
    are exceptions of ``create_app`` that mean a bad configuration (exit 2, their
    message shown); ``quiet`` maps logger names to their level (None: warnings).
    """
    try:
        settings = settings_cls()
    except ValidationError as exc:
        print(f"{name}: invalid settings: {settings_error(exc)}", file=sys.stderr)
        return 2
    _log_setup(settings.log_level, {"aiokafka": None} if quiet is None else quiet)
    problem = check(settings) if check is not None else None
    if problem is None:
        problem = unreachable(name, settings.kafka_bootstrap, settings.redis_url)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    refusals: tuple[type[Exception], ...] = (StartupRefused, *refused)
    try:
        app = create_app(settings)
    except refusals as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    return 0 if serve_with(app, settings.host, port(settings), limits(settings)) else 1
