"""A command NATS could not carry is refused with a clear error before it is sent."""

from __future__ import annotations

import pytest

from adrstack.api.errors import ApiError
from adrstack.api.commands import send_command
from adrstack.shared.messages import CancelEventCommand


class TinyNats:
    max_payload = 64
    sent = 0

    async def request(self, *args, **kwargs):
        self.sent += 1
        raise AssertionError("must not be sent")


async def test_a_command_over_the_payload_limit_is_refused_unsent():
    nc = TinyNats()
    with pytest.raises(ApiError) as e:
        await send_command(nc, "x.cmd.event.cancel", CancelEventCommand(event_id="evt-1"), timeout=1)
    assert e.value.code == "invalid" and "64 bytes" in e.value.message and nc.sent == 0
