"""What production accepts as a secret, and start-up errors as one line.

Pure functions: no environment reads. Settings validators call them when
``AFFLUX_ENV=production``; development keeps its generated and documented
secrets so a laptop starts with no configuration.
"""

from __future__ import annotations

from pydantic import ValidationError

MIN_SECRET_BYTES = 32
# Development signs every merchant with ``dev-secret-<merchant_id>`` (orders'
# merchant_secrets.dev_secret); a value of that shape is public knowledge.
DEV_SECRET_PREFIX = "dev-secret-"  # noqa: S105 - the public pattern, refused
ADVICE = "generate one with: afflux secrets new"


def secret_weakness(value: str) -> str | None:
    """Why ``value`` is not acceptable as a production secret, or None when it is."""
    if value.startswith(DEV_SECRET_PREFIX):
        return "is a development secret (dev-secret-<merchant>)"
    size = len(value.encode())
    if size < MIN_SECRET_BYTES:
        return f"is too short: {size} bytes, at least {MIN_SECRET_BYTES} needed"
    return None


def require_strong(variable: str, value: str | None) -> None:
    """Raise ValueError naming ``variable`` when a production secret is missing or weak."""
    if not value:
        raise ValueError(f"{variable} is required when AFFLUX_ENV=production; {ADVICE}")
    reason = secret_weakness(value)
    if reason is not None:
        raise ValueError(f"{variable} {reason} (AFFLUX_ENV=production); {ADVICE}")


def settings_error(exc: ValidationError) -> str:
    """Every problem of a settings ValidationError on one line, never echoing an input.

    pydantic's own text spans lines and shows the raw input, which may hold a secret.
    """
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        location = "".join(str(part) for part in error["loc"][:1])
        if location:
            message = f"AFFLUX_{location.upper()}: {message}"
        problems.append(message)
    return "; ".join(problems) or "invalid settings"
