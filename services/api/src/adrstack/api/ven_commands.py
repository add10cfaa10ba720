"""VTN-initiated registration steps, sent to the gateway over core NATS request/reply."""

from __future__ import annotations

import logging

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import ValidationError

from adrstack.shared.messages import VenActionCommand, VenActionReply, decode
from adrstack.shared.subjects import Subjects

from .errors import ApiError
from .scheduler_client import send_command

log = logging.getLogger(__name__)


class GatewayUnavailable(ApiError):
    def __init__(self, detail: str):
        super().__init__("unavailable", f"the gateway did not answer: {detail}")


class GatewayClient:
    def __init__(self, nc: NATS, subjects: Subjects, timeout: float):
        self._nc = nc
        self._subjects = subjects
        self._timeout = timeout

    async def request(self, action: str, ven_id: str) -> VenActionReply:
        """Ask the gateway to send ``action`` to the VEN on its next poll; raise ApiError if refused."""
        subject = self._subjects.cmd_ven(action)
        try:
            msg = await send_command(self._nc, subject, VenActionCommand(ven_id=ven_id), self._timeout)
        except NoRespondersError:
            raise GatewayUnavailable(f"no gateway is listening on {subject}") from None
        except (NatsTimeoutError, TimeoutError):
            raise GatewayUnavailable(f"no reply on {subject} within {self._timeout:g} s") from None
        try:
            reply = decode(VenActionReply, msg.data)
        except ValidationError as e:
            log.error("unreadable reply from the gateway on %s: %s", subject, e)
            raise ApiError("internal", "the gateway sent a reply the API could not read") from None
        if reply.ok:
            return reply
        if reply.error is None:
            raise ApiError("internal", "the gateway replied without a result or an error")
        raise ApiError(reply.error.code, reply.error.message, "venId" if reply.error.field == "ven_id" else None)
