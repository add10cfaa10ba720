"""Event commands to the scheduler over core NATS request/reply."""

from __future__ import annotations

from nats.aio.client import Client as NATS

from adrstack.shared.messages import (
    CancelEventCommand,
    CommandReply,
    CreateEventCommand,
    DrEvent,
    Message,
    ModifyEventCommand,
)
from adrstack.shared.subjects import Subjects

from .commands import ask
from .errors import ApiError

# The services' field names are the wire (snake_case) ones; GraphQL callers wrote camelCase.
_GRAPHQL_FIELD = {
    "ven_ids": "venIds",
    "group_ids": "groupIds",
    "resource_ids": "resourceIds",
    "event_id": "eventId",
    "start_at": "startAt",
    "signal_name": "signalName",
    "signal_type": "signalType",
    "market_context": "marketContext",
    "response_required": "responseRequired",
    "vtn_comment": "vtnComment",
    "ramp_up": "rampUp",
    "ven_id": "venId",
    "report_specifier_id": "reportSpecifierId",
    "r_ids": "rIds",
    "report_back_duration": "reportBackDuration",
    "report_request_id": "reportRequestId",
    "report_to_follow": "reportToFollow",
}


def graphql_field(field: str | None) -> str | None:
    if field is None:
        return None
    head, sep, rest = field.partition("[")
    return _GRAPHQL_FIELD.get(head, head) + sep + rest


class SchedulerClient:
    def __init__(self, nc: NATS, subjects: Subjects, timeout: float):
        self._nc = nc
        self._subjects = subjects
        self._timeout = timeout

    async def create(self, command: CreateEventCommand) -> DrEvent:
        return await self._request("create", command)

    async def modify(self, command: ModifyEventCommand) -> DrEvent:
        return await self._request("modify", command)

    async def cancel(self, command: CancelEventCommand) -> DrEvent:
        return await self._request("cancel", command)

    async def _request(self, verb: str, command: Message) -> DrEvent:
        """Send a command; return the event from an ok reply, else raise :class:`ApiError`.

        Error fields come back in the scheduler's snake_case spelling.
        """
        reply = await ask(self._nc, self._subjects.cmd_event(verb), command, CommandReply, self._timeout, "scheduler")
        if reply.ok and reply.event is not None:
            return reply.event
        if reply.error is None:
            raise ApiError("internal", "the scheduler replied without an event or an error")
        raise ApiError(reply.error.code, reply.error.message, reply.error.field)
