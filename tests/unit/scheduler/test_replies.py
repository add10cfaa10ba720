"""Every outcome of a command handler becomes a CommandReply (I/O faked: no NATS here)."""

from __future__ import annotations

from adrstack.scheduler.commands import CommandRejected
from adrstack.scheduler.handlers import CommandHandlers, Unavailable
from adrstack.shared.subjects import InvalidIdError, Subjects


def handlers() -> CommandHandlers:
    return CommandHandlers(js=None, events=None, vens_bucket="v", subjects=Subjects("t"))


async def reply_for(exc: Exception):
    async def handler(data: bytes):
        raise exc

    return await handlers().answer(handler, b"{}")


async def test_rejection_keeps_code_message_and_field():
    reply = await reply_for(CommandRejected("unknown_ven", "unknown VEN x", "ven_ids"))
    assert not reply.ok and reply.error.code == "unknown_ven" and reply.error.field == "ven_ids"


async def test_invalid_id_is_invalid_on_that_field():
    reply = await reply_for(InvalidIdError("event_id", "a.b"))
    assert reply.error.code == "invalid" and reply.error.field == "event_id"


async def test_unavailable_and_unexpected_errors_still_get_a_reply():
    assert (await reply_for(Unavailable("stream down"))).error.code == "unavailable"
    assert (await reply_for(RuntimeError("bug"))).error.code == "internal"
