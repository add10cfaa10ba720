"""API settings: the common ones plus where to listen, how long to wait for other services, who
may call (API tokens and roles) and how much a GraphQL operation may ask for."""

from __future__ import annotations

from pydantic import Field

from adrstack.shared.settings import CommonSettings


class ApiSettings(CommonSettings):
    # 0.0.0.0 so the service is reachable inside a container (env ADRSTACK_API_HOST).
    api_host: str = "0.0.0.0"
    api_port: int = Field(8000, ge=0, le=65535)
    # How long a mutation waits for the scheduler's reply before saying it did not answer.
    command_timeout: float = Field(5.0, gt=0)
    # Largest request body accepted (/send_event and anything else); larger ones get 413.
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    # Off: anyone who reaches the port may do anything (the development quickstart). On: GraphQL,
    # its websocket, /send_event and the dashboard's data need an API token with a role.
    api_auth: bool = False
    # Production: no introspection, no GraphiQL, no GET operations, no "did you mean" suggestions.
    api_production: bool = False
    # GraphQL's own limits: the request body (also a websocket message), the document's tokens
    # (parsing stops there), its depth and its aliases. The body cap defaults to max_body_bytes:
    # createEvent's venIds for a fleet travel in the body (20,000 ids are ~400 KB), and the
    # document itself is held by the token limit.
    graphql_max_body_bytes: int | None = Field(None, gt=0)
    graphql_max_tokens: int = Field(2000, gt=0)
    graphql_max_depth: int = Field(10, gt=0)
    graphql_max_aliases: int = Field(20, ge=0)
    # Messages a GraphQL subscriber may fall behind by before it is dropped (fanout): enough for a
    # burst of a fleet's reports, small enough that a stalled client costs little memory.
    subscription_queue: int = Field(1000, gt=0)
    # The dashboard shows a VEN offline when nothing was heard from it for this long (seconds). A
    # polling VEN is heard at least once per the gateway's seen_interval (60 s) plus a poll.
    dashboard_offline_after: float = Field(180.0, gt=0)

    @property
    def graphql_body_limit(self) -> int:
        return self.graphql_max_body_bytes or self.max_body_bytes
