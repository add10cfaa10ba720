"""VTN-initiated registration steps, as NATS request/reply commands (``<prefix>.cmd.ven.<action>``).

An operator asks for a VEN's registration to be cancelled, or for the VEN to register again;
the gateway records the step on the VEN's record and the VEN is sent it on its next poll
(2.0b N1_0040/N1_0050). One replica answers each command (queue group).
"""

from __future__ import annotations

import logging

from nats.aio.msg import Msg
from pydantic import ValidationError

from adrstack.shared.messages import CommandError, VenActionCommand, VenActionReply, VenRecord

from .state import StoreUnavailable, Ven, VenStore

log = logging.getLogger(__name__)

QUEUE_GROUP = "adrstack-gateway"


class VenCommands:
    def __init__(self, store: VenStore):
        self.store = store

    def callback(self, action: str):
        async def on_request(msg: Msg) -> None:
            reply = await self.answer(action, msg.data)
            if msg.reply:
                await msg.respond(reply.to_bytes())

        return on_request

    async def answer(self, action: str, data: bytes) -> VenActionReply:
        try:
            command = VenActionCommand.model_validate_json(data)
        except ValidationError as e:
            return VenActionReply(ok=False, error=CommandError(code="invalid", message=_first_error(e), field="ven_id"))
        try:
            ven = await self.store.find_ven(command.ven_id)
            if ven is None:
                return VenActionReply(ok=False, ven_id=command.ven_id, error=CommandError(
                    code="unknown_ven", message=f"no registered VEN {command.ven_id}", field="ven_id"))

            def mark(current: Ven | None) -> VenRecord | None:
                if current is None or current.pending_action == action:
                    return None
                return current.record().model_copy(update={"pending_action": action})

            updated = await self.store.put_ven(command.ven_id, mark)
        except StoreUnavailable as e:
            log.warning("VEN command %s for %s: %s", action, command.ven_id, e)
            return VenActionReply(ok=False, ven_id=command.ven_id,
                                  error=CommandError(code="unavailable", message="the VEN store is unavailable"))
        if updated is None:  # deregistered meanwhile
            return VenActionReply(ok=False, ven_id=command.ven_id, error=CommandError(
                code="unknown_ven", message=f"no registered VEN {command.ven_id}", field="ven_id"))
        log.info("VEN %s will be sent %s on its next poll", command.ven_id, action)
        return VenActionReply(ok=True, ven_id=command.ven_id, pending_action=updated.pending_action)


def _first_error(e: ValidationError) -> str:
    errors = e.errors()
    return str(errors[0].get("msg", "invalid command")) if errors else "invalid command"
