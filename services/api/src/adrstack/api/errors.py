"""The API's error vocabulary, shared by GraphQL and the REST shortcut.

GraphQL errors carry ``extensions {code, field}`` with the code in upper case
(``INVALID``, ``UNAUTHENTICATED``, ``FORBIDDEN``, ``UNKNOWN_VEN``, ``CONFLICT``, ``NOT_FOUND``,
``TOO_COMPLEX``, ``UNAVAILABLE``, ``INTERNAL``, ``SLOW_SUBSCRIBER`` (a subscription dropped for
falling behind; fanout); and for requests refused before GraphQL reads them
``BAD_REQUEST``, ``TOO_LARGE``, ``METHOD_NOT_ALLOWED``); ``POST /send_event`` uses the same codes in
lower case (the scheduler's ``CommandError`` spelling) and maps them to HTTP statuses.

Anything else that goes wrong reaches the caller as :func:`public_error` says: a generic message
with ``UNAVAILABLE`` (a database or NATS outage) or ``INTERNAL``, never the exception's own text
(driver messages name hosts, ports and databases); the details go to the log.
"""

from __future__ import annotations

import asyncio

import nats.errors
import psycopg
import sqlalchemy.exc
from graphql import GraphQLError

HTTP_STATUS = {
    "bad_request": 400,
    "invalid": 422,
    "unauthenticated": 401,
    "forbidden": 403,
    "unknown_ven": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "too_large": 413,
    "unavailable": 503,
    "internal": 500,
}

UNAVAILABLE_MESSAGE = "a service the API depends on is unavailable; try again later"
INTERNAL_MESSAGE = "internal error"


class ApiError(Exception):
    """An error meant for the caller: a code, a message and the input field it is about."""

    def __init__(self, code: str, detail: str, field: str | None = None):
        self.code = code.lower()
        self.detail = detail
        self.field = field
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The detail, prefixed with the field it is about (unless it already says so)."""
        if self.field and not self.detail.startswith(f"{self.field}:"):
            return f"{self.field}: {self.detail}"
        return self.detail

    def renamed(self, field: str | None) -> "ApiError":
        """The same error about ``field`` (how the caller spelled it)."""
        detail = self.detail
        if self.field and detail.startswith(f"{self.field}:"):
            detail = detail[len(self.field) + 1 :].lstrip()
        return ApiError(self.code, detail, field)

    @property
    def extensions(self) -> dict:
        # graphql-core copies this onto the GraphQLError it wraps a resolver's exception in.
        return {"code": self.code.upper(), "field": self.field}

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def to_graphql(self) -> GraphQLError:
        return GraphQLError(self.message, extensions=self.extensions)

    def to_json(self) -> dict:
        return {"error": self.code, "message": self.message, "field": self.field}


class InvalidInput(ApiError):
    def __init__(self, field: str | None, message: str):
        super().__init__("invalid", message, field)


class Unauthenticated(ApiError):
    """No API token, or one that is malformed, unknown or revoked (HTTP 401)."""

    def __init__(self, detail: str = "an API token is required: send the header Authorization: Bearer <token>"):
        super().__init__("unauthenticated", detail)


class Forbidden(ApiError):
    """A valid token whose role may not do this (HTTP 403)."""

    def __init__(self, detail: str):
        super().__init__("forbidden", detail)


# Failures of what the API stands on (Postgres, NATS, the network), as opposed to its own bugs.
_OUTAGES = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    nats.errors.Error,
    OSError,
    asyncio.TimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _OUTAGES)


def public_error(exc: BaseException) -> ApiError:
    """What a caller may be told about ``exc``: an ApiError as it is, anything else generically."""
    if isinstance(exc, ApiError):
        return exc
    if is_outage(exc):
        return ApiError("unavailable", UNAVAILABLE_MESSAGE)
    return ApiError("internal", INTERNAL_MESSAGE)
