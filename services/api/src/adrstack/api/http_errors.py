"""ApiErrors as HTTP responses, in the shape of the endpoint that refuses:

- ``/graphql``: ``{"errors": [{"message": ..., "extensions": {"code": "FORBIDDEN", "field": null}}]}``
  (GraphQL's own shape, so GraphQL clients read every refusal the same way);
- everything else: ``{"error": "forbidden", "message": ..., "field": null}``.

The HTTP status comes from the code either way (errors.HTTP_STATUS); a 401 carries
``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import json

from starlette.responses import JSONResponse
from starlette.types import Send

from .errors import ApiError

GRAPHQL_PATH = "/graphql"


def speaks_graphql(path: str) -> bool:
    return path == GRAPHQL_PATH or path.startswith(GRAPHQL_PATH + "/")


def graphql_error(error: ApiError) -> dict:
    return {"message": error.message, "extensions": error.extensions}


def error_body(error: ApiError, path: str) -> dict:
    return {"errors": [graphql_error(error)]} if speaks_graphql(path) else error.to_json()


def error_headers(error: ApiError) -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="adrstack"'} if error.code == "unauthenticated" else {}


def error_response(error: ApiError, path: str, status: int | None = None) -> JSONResponse:
    return JSONResponse(error_body(error, path), status_code=status or error.http_status,
                        headers=error_headers(error))


async def send_error(send: Send, error: ApiError, path: str) -> None:
    """The same response from an ASGI middleware, before any app has answered."""
    body = json.dumps(error_body(error, path)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error_headers(error).items()]
    await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
