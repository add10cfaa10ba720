"""A read-only mirror of the scheduler's events KV bucket, kept current by a KV watch."""

from __future__ import annotations

import asyncio
import logging

from nats.js.kv import KeyValue
from pydantic import ValidationError

from adrstack.shared import kv_keys
from adrstack.shared.messages import DrEvent

from .event_view import UndeliverableEvent, check_deliverable

log = logging.getLogger(__name__)

_EVENT_PREFIX = kv_keys.EVENT_RECORDS.removesuffix(">")


class EventCache:
    def __init__(self, kv: KeyValue):
        self.kv = kv
        self._events: dict[str, DrEvent] = {}
        self._by_ven: dict[str, set[str]] = {}
        self._loaded = asyncio.Event()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ queries

    def for_ven(self, ven_id: str) -> list[DrEvent]:
        return [self._events[e] for e in self._by_ven.get(ven_id, ()) if e in self._events]

    def get(self, event_id: str) -> DrEvent | None:
        return self._events.get(event_id)

    def __len__(self) -> int:
        return len(self._events)

    # ------------------------------------------------------------------ upkeep

    def _drop(self, event_id: str) -> None:
        old = self._events.pop(event_id, None)
        if old:
            for ven in old.targets.ven_ids:
                self._by_ven.get(ven, set()).discard(event_id)

    def _apply(self, key: str, value: bytes | None, operation: str | None) -> None:
        if not key.startswith(_EVENT_PREFIX):
            return
        event_id = key[len(_EVENT_PREFIX):]
        self._drop(event_id)
        if operation in ("DEL", "PURGE") or not value:
            return
        try:
            event = DrEvent.model_validate_json(value)
        except ValidationError as e:
            log.error("ignoring unreadable event at %s: %s", key, e)
            return
        try:
            # Checked once here, so one bad event cannot make every poll of its VENs fail.
            check_deliverable(event)
        except UndeliverableEvent as e:
            log.error("not delivering event %s: %s", event.event_id, e)
            return
        self._events[event.event_id] = event
        for ven in event.targets.ven_ids:
            self._by_ven.setdefault(ven, set()).add(event.event_id)

    async def start(self, timeout: float = 30.0) -> None:
        """Start watching; returns once the bucket's current content is loaded."""
        self._task = asyncio.create_task(self._run(), name="event-cache-watch")
        waiter = asyncio.create_task(self._loaded.wait())
        done, _ = await asyncio.wait({waiter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self._task.done():
                self._task.result()  # re-raise why the watch died
            raise TimeoutError("events bucket did not load in time")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            watcher = None
            try:
                watcher = await self.kv.watch(kv_keys.EVENT_RECORDS)
                # Rebuilt on every (re)watch, so deletions missed while disconnected are not kept.
                snapshot = EventCache(self.kv)
                target = snapshot
                async for entry in watcher:
                    if entry is None:  # the bucket's current content has been delivered
                        self._events, self._by_ven = snapshot._events, snapshot._by_ven
                        target = self
                        self._loaded.set()
                        backoff = 0.5
                        continue
                    target._apply(entry.key, entry.value, entry.operation)
                raise ConnectionError("event watch ended")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("events watch failed (%s: %s); rewatching in %.1fs", type(e).__name__, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                if watcher is not None:
                    try:
                        await watcher.stop()
                    except Exception:
                        pass
