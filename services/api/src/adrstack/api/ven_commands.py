"""VTN-initiated registration steps, sent to the gateway over core NATS request/reply."""

from __future__ import annotations

from nats.aio.client import Client as NATS

from adrstack.shared.messages import VenActionCommand, VenActionReply
from adrstack.shared.subjects import Subjects

from .commands import ask
from .errors import ApiError


class GatewayClient:
    def __init__(self, nc: NATS, subjects: Subjects, timeout: float):
        self._nc = nc
        self._subjects = subjects
        self._timeout = timeout

    async def request(self, action: str, ven_id: str) -> VenActionReply:
        """Ask the gateway to send ``action`` to the VEN on its next poll; raise ApiError if refused."""
        reply = await ask(self._nc, self._subjects.cmd_ven(action), VenActionCommand(ven_id=ven_id), VenActionReply,
                          self._timeout, "gateway")
        if reply.ok:
            return reply
        if reply.error is None:
            raise ApiError("internal", "the gateway replied without a result or an error")
        raise ApiError(reply.error.code, reply.error.message, "venId" if reply.error.field == "ven_id" else None)
