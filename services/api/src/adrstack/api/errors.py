"""The API's error vocabulary, shared by GraphQL and the REST shortcut.

GraphQL errors carry ``extensions {code, field}`` with the code in upper case
(``INVALID``, ``UNKNOWN_VEN``, ``CONFLICT``, ``NOT_FOUND``, ``UNAVAILABLE``, ``INTERNAL``);
``POST /send_event`` uses the same codes in lower case (the scheduler's ``CommandError``
spelling) and maps them to HTTP statuses.
"""

from __future__ import annotations

from graphql import GraphQLError

HTTP_STATUS = {
    "invalid": 422,
    "unknown_ven": 404,
    "not_found": 404,
    "conflict": 409,
    "unavailable": 503,
    "internal": 500,
}


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
