"""API settings: the common ones plus where to listen and how long to wait for the scheduler."""

from __future__ import annotations

from pydantic import Field

from adrstack.shared.settings import CommonSettings


class ApiSettings(CommonSettings):
    # 0.0.0.0 so the service is reachable inside a container (env ADRSTACK_API_HOST).
    api_host: str = "0.0.0.0"
    api_port: int = Field(8000, ge=0, le=65535)
    # How long a mutation waits for the scheduler's reply before saying it did not answer.
    command_timeout: float = Field(5.0, gt=0)
    # Largest request body accepted (GraphQL and /send_event); larger ones get 413.
    max_body_bytes: int = Field(1024 * 1024, gt=0)
