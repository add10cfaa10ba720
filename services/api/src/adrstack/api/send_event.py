"""``POST /send_event``: the kickstarter's shortcut, kept for its users.

Besides ``ven_id`` (or instead of it) the body may name ``group_ids`` and ``resource_ids``,
checked as ``createEvent`` checks them.

``{"ven_id": "ven123", "event_id": "event002", "signal_level": 2}`` creates a one-hour
SIMPLE level event starting now for that VEN through the same scheduler command as
GraphQL ``createEvent``. Every error, including body validation, is
``{"error": code, "message": ..., "field": ...}``; an unexpected one says only ``internal`` or
``unavailable`` (the details are logged). It takes an operator's token when tokens are on.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Callable, Coroutine

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from pydantic import BaseModel, ConfigDict, Field, field_validator

from adrstack.shared.messages import DrEvent

from .auth import caller_of
from .durations import format_duration
from .errors import ApiError, InvalidInput, public_error
from .http_errors import error_response
from .permissions import check_route
from . import targets
from .targets import check_targets
from .validation import IntervalSpec, check_token, create_command

log = logging.getLogger(__name__)

EVENT_DURATION = timedelta(hours=1)

# Scheduler field names -> this body's names.
_BODY_FIELD = {"ven_ids": "ven_id", "ven_ids[0]": "ven_id", "intervals": "signal_level", "intervals[0].payload": "signal_level"}


def _body_field(field: str | None) -> str | None:
    """A field as this body spells it: venIds -> ven_id, groupIds[0] -> group_ids[0]."""
    if field is None:
        return None
    if field in _BODY_FIELD:
        return _BODY_FIELD[field]
    head, sep, rest = field.partition("[")
    return _CAMEL.get(head, head) + sep + rest


_CAMEL = {"venIds": "ven_id", "groupIds": "group_ids", "resourceIds": "resource_ids", "eventId": "event_id"}


class SendEventBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ven_id: str | None = None
    group_ids: list[str] | None = Field(None, description="groups to target (besides or instead of ven_id)")
    resource_ids: list[str] | None = Field(None, description="resource ids to target (besides or instead of ven_id)")
    event_id: str | None = Field(None, description="default: assigned by the scheduler")
    signal_level: int = Field(ge=0, le=3, description="SIMPLE signal level 0..3")

    @field_validator("signal_level", mode="before")
    @classmethod
    def _a_number(cls, v: Any) -> Any:
        # "2" or true would slip through lax int parsing; the level is a JSON number.
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("must be a number from 0 to 3")
        return v


class JsonErrorRoute(APIRoute):
    """Checks the caller's role before the body is read, and answers every error in this API's
    error shape instead of FastAPI's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            path = request.url.path
            try:
                check_route(caller_of(request), path)
                return await handler(request)
            except RequestValidationError as e:
                return error_response(validation_error(e), path)
            except ApiError as e:
                return error_response(e, path)
            except HTTPException as e:  # FastAPI's own refusals, e.g. JSON nested past the recursion limit
                return error_response(ApiError("bad_request", str(e.detail)), path, status=e.status_code)
            except Exception as e:
                log.exception("%s failed", path)
                return error_response(public_error(e), path)

        return route


def validation_error(exc: RequestValidationError) -> ApiError:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    kind = first.get("type", "")
    if kind in ("json_invalid", "model_attributes_type", "dict_type") or not loc:
        return InvalidInput(None, "the body must be a JSON object like "
                            '{"ven_id": "ven123", "event_id": "event002", "signal_level": 2}')
    field = loc[0]
    if kind == "missing":
        return InvalidInput(field, "is required")
    if field == "signal_level":
        return InvalidInput(field, "must be a number from 0 to 3")
    message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    return InvalidInput(field, message)


def event_json(event: DrEvent) -> dict[str, Any]:
    body = event.model_dump(mode="json")
    body["intervals"] = [
        {"duration": format_duration(i.duration), "payload": i.payload} for i in event.intervals
    ]
    body["end_at"] = event.end_at.isoformat() if event.end_at else None
    return body


def send_event_router() -> APIRouter:
    router = APIRouter(route_class=JsonErrorRoute)

    @router.post("/send_event", summary="Create a one-hour SIMPLE level event for one VEN")
    async def send_event(body: SendEventBody, request: Request) -> JSONResponse:
        if body.event_id is not None:
            check_token(body.event_id, "event_id", "event id")
        if body.ven_id is None and not (body.group_ids or body.resource_ids):
            raise InvalidInput("ven_id", "is required (or group_ids or resource_ids)")
        if body.ven_id is not None:
            check_token(body.ven_id, "ven_id", "VEN id")
        try:
            command = create_command(
                ven_ids=None if body.ven_id is None else [body.ven_id],
                group_ids=body.group_ids,
                resource_ids=body.resource_ids,
                intervals=[IntervalSpec(duration=format_duration(EVENT_DURATION), payload=body.signal_level)],
                event_id=body.event_id,
                # A client may retry safely with the same Idempotency-Key header.
                idempotency_key=request.headers.get("Idempotency-Key"),
            )
        except ApiError as e:
            raise e.renamed(_body_field(e.field)) from None
        await check_targets(request.app.state.api, command.ven_ids, command.group_ids, command.resource_ids,
                            targets.REST)
        try:
            event = await request.app.state.api.scheduler.create(command)
        except ApiError as e:
            field = _body_field(e.field)
            if field is None and e.code == "unknown_ven":
                field = "ven_id"
            if field is None and e.code == "conflict":
                field = "event_id"
            raise e.renamed(field) from None
        return JSONResponse(event_json(event), status_code=200)

    return router
