"""Who is calling: the API token in ``Authorization: Bearer <token>`` (HTTP, the websocket's upgrade
request) or in the websocket's ``connection_init`` payload ``{"authorization": "Bearer <token>"}``.

With ``api_auth`` off every caller is :data:`OPEN` and may do anything, as in the development
quickstart. With it on, every HTTP path but ``/health``, the dashboard page, the GraphiQL page and
their static files (``/static/``) needs a valid token (so a route added later is closed by default; ``/healthz`` and ``/readyz``
are open too, ``/metrics`` is not); what each role may do is
``permissions``' business.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import parse_qs

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from adrstack.shared import api_tokens
from adrstack.shared.api_tokens import Role

from .errors import ApiError, Unauthenticated, public_error
from .http_errors import GRAPHQL_PATH, send_error
from .state import ApiState

log = logging.getLogger(__name__)

# Pages that hold no data; what they fetch is checked like any other call.
OPEN_PATHS = frozenset({"/health", "/healthz", "/readyz", "/"})
# The dashboard's and GraphiQL's scripts and styles (no data; GET and HEAD only).
OPEN_PREFIX = "/static/"


@dataclass(frozen=True)
class Caller:
    role: Role
    token_id: str | None = None
    token_name: str | None = None

    @property
    def label(self) -> str | None:
        """How the caller is named in records they write (e.g. who provisioned a VEN)."""
        return self.token_name or self.token_id


OPEN = Caller(role=Role.ADMIN)


def bearer_token(credentials: object) -> str | None:
    if not isinstance(credentials, str):
        return None
    scheme, _, token = credentials.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(state: ApiState, credentials: object) -> Caller:
    """The caller these credentials (an ``Authorization`` value) stand for; Unauthenticated if none.
    A database outage propagates: it is not the caller's fault."""
    if not state.settings.api_auth:
        return OPEN
    token = bearer_token(credentials)
    if token is None:
        raise Unauthenticated()
    row = await api_tokens.authenticate(state.store.engine, token)
    if row is None:
        raise Unauthenticated("the API token is not valid: malformed, unknown or revoked")
    return Caller(role=Role(row.role), token_id=row.id, token_name=row.name)


def remember(scope: Scope, caller: Caller) -> None:
    scope.setdefault("state", {})["caller"] = caller


def caller_of(connection: HTTPConnection) -> Caller | None:
    return connection.scope.get("state", {}).get("caller")


async def authenticate_websocket(state: ApiState, websocket: HTTPConnection, payload: Mapping) -> Caller:
    """Credentials from the connection_init payload, else from the upgrade request's header."""
    credentials = payload.get("authorization", payload.get("Authorization"))
    if credentials is None:
        credentials = websocket.headers.get("authorization")
    caller = await authenticate(state, credentials)
    remember(websocket.scope, caller)
    return caller


def _is_open(scope: Scope) -> bool:
    path = scope.get("path", "")
    if path in OPEN_PATHS:
        return True
    if path.startswith(OPEN_PREFIX) and scope.get("method") in ("GET", "HEAD"):
        return True
    # GET /graphql without an operation is the GraphiQL page (development only).
    return (path == GRAPHQL_PATH and scope.get("method") == "GET"
            and "query" not in parse_qs(scope.get("query_string", b"").decode("latin-1")))


class AuthMiddleware:
    """Authenticates every HTTP request (before its body is read) and remembers the caller for the
    endpoint; refuses with 401 in the endpoint's error shape. Websockets authenticate in their
    connection_init (graphql_router)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_open(scope):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        try:
            caller = await authenticate(scope["app"].state.api, connection.headers.get("authorization"))
        except Exception as e:
            if not isinstance(e, ApiError):
                log.error("could not check an API token: %s: %s", type(e).__name__, e)
            await send_error(send, public_error(e), scope.get("path", ""))
            return
        remember(scope, caller)
        await self.app(scope, receive, send)
