"""Request/reply command handlers: every request gets a CommandReply, whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from adrstack.shared import kv_keys
from adrstack.shared.kv_mirror import KvMirror
from adrstack.shared.logfields import log_fields
from adrstack.shared.messages import (
    CancelEventCommand,
    CommandReply,
    CreateEventCommand,
    DrEvent,
    EventStatus,
    ModifyEventCommand,
    Transition,
    utcnow,
)
from adrstack.shared.subjects import InvalidIdError, Subjects

from .commands import (
    CommandRejected,
    apply_cancel,
    apply_modify,
    build_event,
    check_ven_ids,
    new_event_id,
    parse_command,
)
from .facts import FactPublisher, decode_record, record_bytes
from .idempotency import IdempotentCommands, idempotency_key, request_digest
from .overlaps import OverlapGuard

log = logging.getLogger(__name__)

# How long a command waits for the replica that committed an event's last state to publish its
# facts before publishing them itself (that replica may have died).
OWNER_PUBLISH_WAIT = 0.5
VEN_LOOKUPS_AT_ONCE = 500  # VENs not in the mirror yet, looked up concurrently in slices

# A clock status reached as the direct result of a command is announced like a timer transition.
CLOCK_TRANSITIONS = {
    EventStatus.FAR: Transition.FAR,
    EventStatus.NEAR: Transition.NEAR,
    EventStatus.ACTIVE: Transition.ACTIVE,
    EventStatus.COMPLETED: Transition.COMPLETED,
}


@contextlib.asynccontextmanager
async def _unguarded():
    yield


class Unavailable(Exception):
    """NATS could not store what the command needs; nothing was left half-done."""


class CommandHandlers:
    def __init__(
        self,
        js: JetStreamContext,
        events: KeyValue,
        vens_bucket: str,
        subjects: Subjects,
        stream: str = "OPENADR",
        publish_timeout: float = 5.0,
        retries: int = 5,
        idempotent: IdempotentCommands | None = None,
    ):
        self._js = js
        self.idempotent = idempotent
        self._events = events
        self._vens_bucket = vens_bucket
        self._vens: KvMirror[bool] | None = None
        self._retries = retries
        self.facts = FactPublisher(js, events, subjects, stream, publish_timeout)
        # Rule 18 (A_E3_0530), once the mirrors it reads are loaded (see service.py); None: not checked.
        self.overlaps: OverlapGuard | None = None

    # ------------------------------------------------------------------ NATS entry point

    def callback(self, verb: str) -> Callable[[Msg], Awaitable[None]]:
        handler = {"create": self.create, "modify": self.modify, "cancel": self.cancel}[verb]

        async def on_request(msg: Msg) -> None:
            # Callbacks of one subscription share a task: the fields are bound per message.
            with log_fields(event_id=_event_id(msg.data)):
                reply = await self.answer_once(verb, handler, msg.data)
            if not msg.reply:
                log.warning("%s request without a reply subject; dropped", verb)
                return
            try:
                await msg.respond(reply.to_bytes())
            except Exception:
                log.exception("could not send the %s reply", verb)

        return on_request

    async def answer_once(self, verb: str, handler: Callable[[bytes], Awaitable[DrEvent]],
                          data: bytes) -> CommandReply:
        """``answer``, once per idempotency key (see idempotency.py)."""
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        try:
            key = idempotency_key(body) if isinstance(body, dict) and self.idempotent else None
        except CommandRejected as e:
            return e.reply()
        if key is None:
            return await self.answer(handler, data)
        digest = request_digest(verb, body)
        try:
            return await self.idempotent.answer(key, verb, digest, lambda: self.answer(handler, data))
        except CommandRejected as e:
            return e.reply()
        except Exception as e:
            log.warning("idempotency store unavailable: %s", e)
            return CommandReply.failure("unavailable", "could not check the idempotency_key; retry")

    async def answer(self, handler: Callable[[bytes], Awaitable[DrEvent]], data: bytes) -> CommandReply:
        try:
            return CommandReply.success(await handler(data))
        except CommandRejected as e:
            return e.reply()
        except InvalidIdError as e:
            return CommandReply.failure("invalid", str(e), e.what)
        except Unavailable as e:
            return CommandReply.failure("unavailable", str(e))
        except Exception as e:
            log.exception("command failed")
            return CommandReply.failure("internal", f"{type(e).__name__}: {e}")

    # ------------------------------------------------------------------ commands

    async def create(self, data: bytes) -> DrEvent:
        command = parse_command(CreateEventCommand, data)
        if command.ven_ids:  # groups and resources were resolved by the api
            await self._check_vens(command.ven_ids)
        return await self.create_event(command)

    async def create_event(self, command: CreateEventCommand) -> DrEvent:
        """Store a new event and publish its facts (VENs already checked, or not to be: a program's
        enrolled VENs were checked when they enrolled). CONFLICT when its id exists already."""
        now = utcnow()
        event = build_event(command, command.event_id or new_event_id(), now)
        key = kv_keys.event_key(event.event_id)
        # The timer loop sees the stored status already equals the clock's, so an event active
        # from the start is announced here.
        transitions = [Transition.CREATED] + ([Transition.ACTIVE] if event.status == EventStatus.ACTIVE else [])
        async with self._guarded(event):
            try:
                revision = await self._events.create(key, record_bytes(event, transitions))
            except KeyWrongLastSequenceError:
                raise CommandRejected("conflict", f"event {event.event_id} already exists", "event_id") from None
            except Exception as e:
                raise Unavailable(f"could not store event {event.event_id}: {e!r}") from e
            self._committed(event, revision, transitions)
        committed_at = time.monotonic()
        try:
            await self.facts.publish_committed(event, revision, transitions[:1], now, committed_at, settle=False)
        except Exception as e:
            # The created fact is what everyone else learns from; without it, take the event back.
            await self._take_back(key, revision, event.event_id)
            raise Unavailable(f"could not publish the created fact of {event.event_id}: {e!r}") from e
        await self._publish_rest(event, revision, transitions[1:], now, committed_at)
        log.info("created event %s (%s)", event.event_id, event.status.value)
        return event

    async def modify(self, data: bytes) -> DrEvent:
        command = parse_command(ModifyEventCommand, data)
        if command.ven_ids:
            await self._check_vens(command.ven_ids)
        return await self._change(command.event_id, Transition.MODIFIED, lambda ev, now: apply_modify(ev, command, now))

    async def cancel(self, data: bytes) -> DrEvent:
        command = parse_command(CancelEventCommand, data)
        return await self._change(command.event_id, Transition.CANCELLED, apply_cancel)

    async def change_event(self, event_id: str, transition: Transition, change) -> DrEvent:
        """Apply ``change(current, now)`` (None: leave the event as it is) with the command path's
        compare-and-set and facts; for the scheduler's own changes (programs)."""
        return await self._change(event_id, transition, change)

    # ------------------------------------------------------------------ helpers

    async def _change(self, event_id: str, transition: Transition, change) -> DrEvent:
        """Read, change, CAS the KV, then publish the facts of the committed state; a lost CAS
        race starts over. Facts an earlier commit still owes are published before anything else."""
        key = kv_keys.event_key(event_id)
        waited = False
        for _ in range(self._retries):
            try:
                entry = await self._events.get(key)
            except KeyNotFoundError:
                raise CommandRejected("not_found", f"no event {event_id}", "event_id") from None
            except Exception as e:
                raise Unavailable(f"could not read event {event_id}: {e!r}") from e
            record = decode_record(entry.value)
            current = record.event
            if record.pending and not waited:
                # Most likely another replica committed it a moment ago and is publishing its facts:
                # let it (publishing them here too shows core NATS subscribers a copy), once.
                waited = True
                if await self._settled_elsewhere(key, entry.revision):
                    continue
            if record.pending:
                try:
                    await self.facts.repair(current, entry.revision, record.pending)
                except Exception as e:
                    raise Unavailable(f"could not publish the pending facts of {event_id}: {e!r}") from e
            if transition == Transition.CANCELLED and current.status == EventStatus.CANCELLED:
                return current  # cancelling twice is answered like the first time
            now = utcnow()
            changed = change(current, now)
            if changed is None:
                return current  # nothing to change (e.g. another replica made the change already)
            transitions = [transition]
            if (
                transition == Transition.MODIFIED
                and changed.status != current.status
                and changed.status in CLOCK_TRANSITIONS
            ):
                transitions.append(CLOCK_TRANSITIONS[changed.status])
            # A cancellation cannot create an overlap; any other change may (rule 18).
            async with self._guarded(changed, current) if transition != Transition.CANCELLED else _unguarded():
                try:
                    revision = await self._events.update(key, record_bytes(changed, transitions), last=entry.revision)
                except KeyWrongLastSequenceError:
                    log.info("event %s changed under a %s command; retrying", event_id, transition.value)
                    continue
                except Exception as e:
                    raise Unavailable(f"could not store event {event_id}: {e!r}") from e
                self._committed(changed, revision, transitions, current)
            await self._publish_rest(changed, revision, transitions, now, time.monotonic())
            log.info("%s event %s (#%d)", transition.value, event_id, changed.modification_number)
            return changed
        raise CommandRejected("conflict", f"event {event_id} kept changing; try again", "event_id")

    async def _settled_elsewhere(self, key: str, revision: int) -> bool:
        """Whether the record at ``revision`` moved on within OWNER_PUBLISH_WAIT (its owner published)."""
        deadline = time.monotonic() + OWNER_PUBLISH_WAIT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            try:
                entry = await self._events.get(key)
            except Exception:
                return False
            if entry.revision != revision:
                return True
        return False

    @contextlib.asynccontextmanager
    async def _guarded(self, event: DrEvent, before: DrEvent | None = None):
        """Rule 18: raise overlaps.Overlap (a CommandRejected naming start_at) when ``event`` would
        overlap another event of a market context whose program refuses overlaps; else run the
        commit in the body under the guard's lock (see overlaps.py on what that closes)."""
        guard = self.overlaps
        if guard is None or not guard.applies(event, before):
            yield
            return
        async with guard.lock:
            guard.check(event, before)
            yield

    def _committed(self, event: DrEvent, revision: int, transitions, before: DrEvent | None = None) -> None:
        """A commit the next rule-18 check must see at once (the mirror's watch lags it)."""
        if self.overlaps is not None and self.overlaps.applies(event, before):
            self.overlaps.committed(event, revision, transitions)

    async def _publish_rest(self, event: DrEvent, revision: int, transitions, now, committed_at: float) -> None:
        """The change is committed: its facts are owed. One that cannot be published now stays
        pending in the record and is published by the next writer of the event, the timer's
        resync or the next start-up."""
        try:
            await self.facts.publish_committed(event, revision, transitions, now, committed_at)
        except Exception:
            log.exception("event %s: could not publish %s yet; left pending",
                          event.event_id, ", ".join(t.value for t in transitions))

    async def _check_vens(self, ven_ids: list[str]) -> None:
        check_ven_ids(ven_ids)
        registered = await self._registered()
        if registered is None:
            raise CommandRejected("unknown_ven", f"unknown VEN {ven_ids[0]}", "ven_ids")
        # From memory; only what the mirror does not know yet (registered a moment ago) is asked of KV.
        missing: list[str] = []

        async def look_up(ven_id: str) -> None:
            try:
                await registered.kv.get(kv_keys.ven_key(ven_id))
            except KeyNotFoundError:
                missing.append(ven_id)

        unknown = [v for v in ven_ids if v not in registered]
        try:
            for start in range(0, len(unknown), VEN_LOOKUPS_AT_ONCE):
                await asyncio.gather(*(look_up(v) for v in unknown[start:start + VEN_LOOKUPS_AT_ONCE]))
        except Exception as e:
            raise Unavailable(f"could not look up the VENs: {e!r}") from e
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise CommandRejected("unknown_ven", f"unknown VEN {sorted(missing)[0]}{more}", "ven_ids")

    async def _registered(self) -> KvMirror[bool] | None:
        """Which VENs are registered: the gateway's VEN records (keys only), mirrored once its
        bucket exists (the gateway owns and creates it)."""
        if self._vens is None:
            try:
                kv = await self._js.key_value(self._vens_bucket)
            except BucketNotFoundError:
                return None
            except Exception as e:
                raise Unavailable(f"could not open the VEN registry: {e!r}") from e
            mirror: KvMirror[bool] = KvMirror(kv, kv_keys.VEN_PREFIX, lambda raw: True, name=f"{kv._name} vens")
            try:
                await mirror.start()
            except Exception as e:
                await mirror.stop()
                raise Unavailable(f"could not read the VEN registry: {e!r}") from e
            self._vens = mirror
        return self._vens

    async def stop(self) -> None:
        if self._vens is not None:
            await self._vens.stop()

    async def _take_back(self, key: str, revision: int, event_id: str) -> None:
        try:
            await self._events.delete(key, last=revision)
        except Exception:
            log.exception("could not remove half-created event %s", event_id)


def _event_id(data: bytes) -> str | None:
    """The command's event_id for the log lines about it; the command itself is checked later."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    return body.get("event_id") if isinstance(body, dict) and isinstance(body.get("event_id"), str) else None
