"""Commands to other services over core NATS request/reply, and their replies as ApiErrors."""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import ValidationError

from adrstack.shared.messages import Message, decode

from .errors import ApiError

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Message)

NO_RESPONDERS_RETRY_DELAYS = (0.1, 0.3)


class ServiceUnavailable(ApiError):
    def __init__(self, service: str, detail: str):
        super().__init__("unavailable", f"the {service} did not answer: {detail}")


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


async def ask(nc: NATS, subject: str, command: Message, reply_model: type[R], timeout: float, service: str) -> R:
    """Send ``command`` to ``service`` and return its reply; ApiError when nobody answers in time
    or the reply cannot be read (what the reply says is the caller's to judge)."""
    try:
        msg = await send_command(nc, subject, command, timeout)
    except NoRespondersError:
        raise ServiceUnavailable(service, f"no {service} is listening on {subject}") from None
    except (NatsTimeoutError, TimeoutError):
        raise ServiceUnavailable(service, f"no reply on {subject} within {timeout:g} s") from None
    try:
        return decode(reply_model, msg.data)
    except ValidationError as e:
        log.error("unreadable reply from the %s on %s: %s", service, subject, e)
        raise ApiError("internal", f"the {service} sent a reply the API could not read") from None
