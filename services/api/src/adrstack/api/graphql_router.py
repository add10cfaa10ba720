"""strawberry's FastAPI router, adapted:

- every refusal is JSON in GraphQL's error shape (http_errors), with its HTTP status: 400 for a
  body that is not an operation (strawberry itself calls ``.get`` on whatever the JSON was and
  fails with a 500, and lets an invalid UTF-8 body or JSON nested past the recursion limit
  escape as one too), 401/403 for an operation
  the caller may not run (permissions), 405 for GET in production;
- websockets authenticate in ``connection_init`` (auth): a missing or bad token closes the
  connection with 4401, as graphql-transport-ws does for an unauthorised client;
- in production GraphiQL and GET operations are off;
- a subscription posted without a streaming ``Accept`` header is a 400 (strawberry would run it
  as a query, which fails inside graphql-core).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from cross_web import HTTPException
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.fastapi import GraphQLRouter
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from .auth import authenticate_websocket
from .errors import ApiError, public_error
from .http_errors import GRAPHQL_PATH, error_headers, error_response, graphql_error
from .static_assets import graphiql_page

log = logging.getLogger(__name__)

_CODE_OF_STATUS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
_STATUS_OF_REFUSAL = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403}
_WS_CLOSE_CODE = {"unauthenticated": 4401, "forbidden": 4403}
WS_CLOSE_UNAVAILABLE = 1011


async def _websocket_refusal(context: dict, payload: Mapping) -> ApiError | None:
    """None when the websocket's caller is authenticated (and remembered), else why not."""
    try:
        await authenticate_websocket(context["state"], context["request"], payload)
    except Exception as e:
        if not isinstance(e, ApiError):
            log.error("could not check a websocket's API token: %s: %s", type(e).__name__, e)
        return public_error(e)
    return None


def _close_reason(error: ApiError) -> str:
    return error.message.encode()[:123].decode(errors="ignore")  # a close frame's reason is <= 123 bytes


class _TransportWsHandler(BaseGraphQLTransportWSHandler):
    async def handle_connection_init(self, message) -> None:
        payload = message.get("payload", {})
        # A second init or a payload that is not an object: strawberry's own refusals.
        if not self.connection_init_received and isinstance(payload, dict):
            refusal = await _websocket_refusal(self.context, payload)
            if refusal is not None:
                await self.websocket.close(_WS_CLOSE_CODE.get(refusal.code, WS_CLOSE_UNAVAILABLE),
                                           _close_reason(refusal))
                return
        await super().handle_connection_init(message)


class _GraphQLWsHandler(BaseGraphQLWSHandler):
    async def handle_connection_init(self, message) -> None:
        payload = message.get("payload")
        if payload is None or isinstance(payload, dict):
            refusal = await _websocket_refusal(self.context, payload or {})
            if refusal is not None:
                await self.send_message({"type": "connection_error", "payload": graphql_error(refusal)})
                await self.websocket.close(_WS_CLOSE_CODE.get(refusal.code, WS_CLOSE_UNAVAILABLE),
                                           _close_reason(refusal))
                return
        await super().handle_connection_init(message)


def refusal_status(response_data: Any) -> int | None:
    """401/403 when the whole operation was refused for who the caller is (nothing ran)."""
    if not isinstance(response_data, dict) or response_data.get("data") is not None:
        return None
    codes = {(e.get("extensions") or {}).get("code") for e in response_data.get("errors") or ()}
    return _STATUS_OF_REFUSAL.get(codes.pop()) if len(codes) == 1 else None


class ApiGraphQLRouter(GraphQLRouter):
    graphql_transport_ws_handler_class = _TransportWsHandler
    graphql_ws_handler_class = _GraphQLWsHandler

    def __init__(self, schema, *, production: bool, **kwargs):
        super().__init__(schema, graphql_ide=None if production else "graphiql",
                         allow_queries_via_get=not production, **kwargs)

    @property
    def graphql_ide_html(self) -> str:
        return graphiql_page()

    def parse_json(self, data: str | bytes) -> Any:
        try:
            parsed = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HTTPException(400, "Unable to parse request body as UTF-8 JSON") from e
        except RecursionError as e:
            raise HTTPException(400, "The request body nests JSON too deeply") from e
        if not isinstance(parsed, (dict, list)):  # a list is a batch, which strawberry refuses itself
            raise HTTPException(400, 'The request body must be a JSON object like {"query": "..."}')
        return parsed

    async def run(self, request, context=UNSET, root_value=UNSET):
        if self.is_websocket_request(request):
            return await super().run(request, context=context, root_value=root_value)
        if request.method == "GET" and not self.allow_queries_via_get:
            response = error_response(ApiError("method_not_allowed", "send GraphQL operations with POST"),
                                      GRAPHQL_PATH)
            response.headers["Allow"] = "POST"
            return response
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as e:
            return error_response(ApiError(_CODE_OF_STATUS.get(e.status_code, "bad_request"), e.reason),
                                  GRAPHQL_PATH, status=e.status_code)

    async def execute_single(self, request, request_adapter, sub_response, context, root_value,
                             request_data) -> ExecutionResult:
        # strawberry's own, less subscriptions (this api streams them over websockets only).
        method = request_adapter.method
        allowed = OperationType.from_http(method) - {OperationType.SUBSCRIPTION}
        if not self.allow_queries_via_get and method == "GET":
            allowed -= {OperationType.QUERY}
        try:
            return await self.schema.execute(
                request_data.query, root_value=root_value, variable_values=request_data.variables,
                context_value=context, operation_name=request_data.operation_name,
                allowed_operation_types=allowed, operation_extensions=request_data.extensions)
        except CannotGetOperationTypeError as e:
            raise HTTPException(400, e.as_http_error_reason()) from e
        except InvalidOperationTypeError as e:
            if e.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(400, "subscriptions run over a websocket at this path "
                                         "(graphql-transport-ws or graphql-ws)") from e
            raise HTTPException(400, e.as_http_error_reason(method)) from e
        except MissingQueryError as e:
            raise HTTPException(400, "No GraphQL query found in the request") from e

    def create_response(self, response_data, sub_response: Response) -> Response:
        response = super().create_response(response_data, sub_response)
        status = refusal_status(response_data)
        if status is not None:
            response.status_code = status
            response.headers.update(error_headers(ApiError("unauthenticated" if status == 401 else "forbidden", "")))
        return response
