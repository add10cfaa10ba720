"""Test helpers for the API: a fake scheduler on real NATS, GraphQL over HTTP, the app served by
uvicorn (for websockets)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import AsyncIterator

import httpx
import uvicorn
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from adrstack.shared.messages import (
    CancelEventCommand,
    CommandReply,
    CreateEventCommand,
    DrEvent,
    EventStatus,
    ModifyEventCommand,
    decode,
    derived_id,
    utcnow,
)
from adrstack.api.app import create_app
from adrstack.api.settings import ApiSettings
from adrstack.runtime.ports import free_port
from adrstack.shared.subjects import Subjects

from tests.helpers import eventually


@dataclass
class FakeScheduler:
    """A real NATS responder on the command subjects, standing in for the scheduler service.

    It knows a fixed set of VENs and keeps created events in memory; it records every
    request so tests can assert that nothing was sent.
    """

    nc: NATS
    subjects: Subjects
    known_vens: set[str]
    silent: bool = False  # subscribed but never replies (a hung scheduler)
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    events: dict[str, DrEvent] = field(default_factory=dict)
    _subs: list = field(default_factory=list)

    async def start(self) -> "FakeScheduler":
        for verb in ("create", "modify", "cancel"):
            self._subs.append(await self.nc.subscribe(self.subjects.cmd_event(verb), cb=self._on_request))
        await self.nc.flush()
        return self

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()

    async def _on_request(self, msg: Msg) -> None:
        self.requests.append((msg.subject, msg.data))
        if self.silent:
            return
        verb = msg.subject.rsplit(".", 1)[1]
        reply = getattr(self, f"_{verb}")(msg.data)
        await msg.respond(reply.to_bytes())

    def _create(self, data: bytes) -> CommandReply:
        cmd = decode(CreateEventCommand, data)
        unknown = [v for v in cmd.ven_ids if v not in self.known_vens]
        if unknown:
            return CommandReply.failure("unknown_ven", f"unknown VEN {unknown[0]!r}", "ven_ids")
        event_id = cmd.event_id or f"ev-{derived_id(cmd.id).hex[:12]}"
        if event_id in self.events:
            return CommandReply.failure("conflict", f"event {event_id!r} already exists", "event_id")
        start = cmd.start_at or utcnow()
        event = DrEvent(
            event_id=event_id,
            status=EventStatus.ACTIVE if start <= utcnow() else EventStatus.FAR,
            signal_name=cmd.signal_name,
            signal_type=cmd.signal_type,
            units=cmd.units,
            baseline=cmd.baseline,
            start_at=start,
            intervals=cmd.intervals,
            targets=cmd.targets,
            priority=cmd.priority,
            market_context=cmd.market_context,
            response_required=cmd.response_required,
        )
        self.events[event_id] = event
        return CommandReply.success(event)

    def _modify(self, data: bytes) -> CommandReply:
        cmd = decode(ModifyEventCommand, data)
        event = self.events.get(cmd.event_id)
        if event is None:
            return CommandReply.failure("not_found", f"no event {cmd.event_id!r}", "event_id")
        fields = ("intervals", "start_at", "priority", "signal_name", "signal_type", "vtn_comment")
        changes = {f: getattr(cmd, f) for f in fields if getattr(cmd, f) is not None}
        retarget = {k: getattr(cmd, k) for k in ("ven_ids", "group_ids", "resource_ids") if getattr(cmd, k) is not None}
        if retarget:
            changes["targets"] = event.targets.model_copy(update=retarget)
        updated = event.model_copy(update={**changes, "modification_number": event.modification_number + 1})
        self.events[cmd.event_id] = updated
        return CommandReply.success(updated)

    def _cancel(self, data: bytes) -> CommandReply:
        cmd = decode(CancelEventCommand, data)
        event = self.events.get(cmd.event_id)
        if event is None:
            return CommandReply.failure("not_found", f"no event {cmd.event_id!r}", "event_id")
        updated = event.model_copy(
            update={"status": EventStatus.CANCELLED, "modification_number": event.modification_number + 1}
        )
        self.events[cmd.event_id] = updated
        return CommandReply.success(updated)


async def gql(client: httpx.AsyncClient, query: str, variables: dict | None = None, token: str | None = None) -> dict:
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def served(settings: ApiSettings) -> AsyncIterator[str]:
    """The API on a real port (uvicorn in this process), as ``host:port``."""
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done(), timeout=15)
    assert not task.done(), "uvicorn did not start"
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


RECV_TIMEOUT = 10.0


async def recv(ws, timeout: float = RECV_TIMEOUT) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def transport_ws_subscribe(ws, query: str, sub_id: str = "1", init: bool = True) -> None:
    """Subscribe over graphql-transport-ws (acknowledging the connection first unless ``init`` is off)."""
    if init:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await recv(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"id": sub_id, "type": "subscribe", "payload": {"query": query}}))


async def health(host: str) -> dict:
    async with httpx.AsyncClient() as c:
        return (await c.get(f"http://{host}/health")).json()


async def live_subscriptions(host: str) -> int:
    """GraphQL subscriptions the API's fan-out hub is serving."""
    return (await health(host))["subscriptions"]


ONE_HOUR = timedelta(hours=1)
