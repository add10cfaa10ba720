"""Event commands to the scheduler over core NATS request/reply."""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import ValidationError

from adrstack.shared.messages import (
    CancelEventCommand,
    CommandReply,
    CreateEventCommand,
    DrEvent,
    Message,
    ModifyEventCommand,
    decode,
)
from adrstack.shared.subjects import Subjects

from .errors import ApiError, SchedulerUnavailable

log = logging.getLogger(__name__)

# The scheduler's field names are the wire (snake_case) ones; GraphQL callers wrote camelCase.
_GRAPHQL_FIELD = {
    "ven_ids": "venIds",
    "event_id": "eventId",
    "start_at": "startAt",
    "signal_name": "signalName",
    "signal_type": "signalType",
    "market_context": "marketContext",
    "response_required": "responseRequired",
    "vtn_comment": "vtnComment",
    "ramp_up": "rampUp",
}


NO_RESPONDERS_RETRY_DELAYS = (0.1, 0.3)


def graphql_field(field: str | None) -> str | None:
    if field is None:
        return None
    head, sep, rest = field.partition("[")
    return _GRAPHQL_FIELD.get(head, head) + sep + rest


async def send_command(nc: NATS, subject: str, command: Message, timeout: float):
    """A core NATS request; raises NoRespondersError or a timeout when nobody answered, and
    ApiError when the command is larger than NATS carries."""
    if len(command.to_bytes()) > nc.max_payload:
        raise ApiError("invalid", f"the command is larger than NATS carries ({nc.max_payload} bytes); "
                                  "send fewer or shorter ids")
    # "No responders" means nobody received the command, so resending is safe; NATS 2.9
    # occasionally reports it for a responder that subscribed a moment ago.
    for delay in NO_RESPONDERS_RETRY_DELAYS:
        try:
            return await nc.request(subject, command.to_bytes(), timeout=timeout,
                                    headers={"Nats-Msg-Id": command.msg_id})
        except NoRespondersError:
            await asyncio.sleep(delay)
    return await nc.request(subject, command.to_bytes(), timeout=timeout, headers={"Nats-Msg-Id": command.msg_id})


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
        subject = self._subjects.cmd_event(verb)
        try:
            msg = await send_command(self._nc, subject, command, self._timeout)
        except NoRespondersError:
            raise SchedulerUnavailable(f"no scheduler is listening on {subject}") from None
        except (NatsTimeoutError, TimeoutError):
            raise SchedulerUnavailable(f"no reply on {subject} within {self._timeout:g} s") from None
        try:
            reply = decode(CommandReply, msg.data)
        except ValidationError as e:
            log.error("unreadable reply from the scheduler on %s: %s", subject, e)
            raise ApiError("internal", "the scheduler sent a reply the API could not read") from None
        if reply.ok and reply.event is not None:
            return reply.event
        if reply.error is None:
            raise ApiError("internal", "the scheduler replied without an event or an error")
        raise ApiError(reply.error.code, reply.error.message, reply.error.field)
