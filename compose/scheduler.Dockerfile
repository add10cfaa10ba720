# syntax=docker/dockerfile:1
# The scheduler service.
# Build from the repository root:  docker build -f compose/scheduler.Dockerfile -t adrstack-scheduler:dev .
# Every image in compose/ shares this builder pattern: locked dependencies from the manifests
# first (a code change does not reinstall them), then the workspace member itself, non-editable,
# into /app/.venv, which alone is copied into the slim runtime stage.
FROM python:3.11.13-slim-bookworm AS builder

# The same uv that wrote uv.lock; --locked refuses to build if the lock is out of date.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /src
# uv --locked checks the lock against every workspace manifest, so all of them come in.
COPY pyproject.toml uv.lock README.md ./
COPY shared/pyproject.toml shared/
COPY services/vtn-gateway/pyproject.toml services/vtn-gateway/
COPY services/scheduler/pyproject.toml services/scheduler/
COPY services/telemetry/pyproject.toml services/telemetry/
COPY services/api/pyproject.toml services/api/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable --no-install-workspace --package adrstack-scheduler

COPY shared shared
COPY services/scheduler services/scheduler
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable --package adrstack-scheduler \
    && /app/.venv/bin/python -c "import adrstack.scheduler"

FROM python:3.11.13-slim-bookworm

RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent adrstack
COPY --from=builder /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001
# Its probes (/healthz, /readyz, /metrics) are off unless ADRSTACK_SCHEDULER_HEALTH_PORT is set: compose
# sets it and checks /readyz there (compose/docker-compose.yml).
CMD ["python", "-m", "adrstack.scheduler"]
