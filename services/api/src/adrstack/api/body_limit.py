"""A cap on request bodies, enforced while they stream in (chunked bodies have no length
to check up front), so one client cannot make the API buffer megabytes of JSON. /graphql may
have a cap of its own (ADRSTACK_GRAPHQL_MAX_BODY_BYTES), e.g. a smaller one where no createEvent
names thousands of VENs."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError
from .http_errors import send_error, speaks_graphql


class BodyTooLarge(ApiError):
    """Raised while the body streams in; whoever catches it first answers 413."""

    def __init__(self, limit: int):
        super().__init__("too_large", f"request body larger than {limit} bytes")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, graphql_max_body_bytes: int | None = None):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.graphql_max_body_bytes = graphql_max_body_bytes or max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.graphql_max_body_bytes if speaks_graphql(path) else self.max_body_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._reject(send, limit, path)
                return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._reject(send, limit, path)

    async def _reject(self, send: Send, limit: int, path: str) -> None:
        await send_error(send, BodyTooLarge(limit), path)
