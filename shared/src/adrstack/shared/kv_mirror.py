"""An in-memory copy of part of a KV bucket, kept current by a KV watch.

Services read their state from mirrors so that the hot path (a VEN's poll) makes no
network round trip; writes still go to KV, with compare-and-set on the revision the
mirror holds, and are applied to the mirror at once (``noted``) so the writer reads its
own write before the watch echoes it. Every replica converges on the bucket's content
within the watch latency; a restart rebuilds the mirror from the bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable, Generic, Iterator, TypeVar

from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from .jetstream import on_reconnected

log = logging.getLogger(__name__)

T = TypeVar("T")

# (key, old value, new value); key None: the whole content was replaced (after a re-watch).
ChangeHook = Callable[[str | None, object, object], None]


class MirrorNotReady(RuntimeError):
    pass


class KvMirror(Generic[T]):
    """The keys under ``prefix`` of ``kv`` (prefix stripped), decoded by ``decode``.

    ``decode`` returns None for a value it cannot read; such a key reads as absent (logged),
    so one corrupt record cannot wedge its reader."""

    def __init__(self, kv: KeyValue, prefix: str, decode: Callable[[bytes], T | None], *,
                 on_change: ChangeHook | None = None, name: str | None = None):
        self.kv = kv
        self.prefix = prefix
        self._decode = decode
        self._on_change = on_change
        self.name = name or f"{kv._name}/{prefix}"
        # key -> (value, revision); a value of None is a delete we made that the watch has not
        # echoed yet (so an older update still in flight cannot resurrect the key).
        self._entries: dict[str, tuple[T | None, int]] = {}
        self._building: dict[str, tuple[T | None, int]] | None = None
        self._loaded = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._watcher = None
        self._snapshots = 0  # completed (re)loads
        self._snapshot_done = asyncio.Event()
        self._restart = False
        self._listeners: list[ChangeHook] = []
        self._forget_reconnects: Callable[[], None] | None = None
        self._stopping_watcher: asyncio.Task | None = None

    def add_listener(self, hook: ChangeHook) -> None:
        """Also call ``hook`` on every change, after ``on_change`` (so an owner's index built in
        ``on_change`` is current when listeners run). Listeners are synchronous: schedule work,
        do not do it."""
        self._listeners.append(hook)

    def _notify(self, key: str | None, old, new) -> None:
        if self._on_change is not None:
            self._on_change(key, old, new)
        for hook in self._listeners:
            try:
                hook(key, old, new)
            except Exception:
                log.exception("%s: change listener failed", self.name)

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> T | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def entry(self, key: str) -> tuple[T | None, int | None]:
        """(value, revision); (None, None) when the key was never written."""
        return self._entries.get(key, (None, None))

    def __len__(self) -> int:
        return sum(1 for value, _ in self._entries.values() if value is not None)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def items(self) -> Iterator[tuple[str, T]]:
        for key, (value, _) in list(self._entries.items()):
            if value is not None:
                yield key, value

    @property
    def ready(self) -> bool:
        return self._loaded.is_set()

    # ------------------------------------------------------------------ local writes

    def noted(self, key: str, value: T | None, revision: int) -> None:
        """Apply a write we made (revision from KV's answer) before the watch echoes it."""
        self._apply(key, value, revision, local=True)

    # ------------------------------------------------------------------ upkeep

    def _apply(self, key: str, value: T | None, revision: int, *, local: bool = False,
               live: bool = True) -> None:
        """Apply one change to the live entries (``live``) and to a snapshot being built."""
        targets = [self._entries] if live else []
        if self._building is not None and (local or not live):
            targets.append(self._building)
        for entries in targets:
            current = entries.get(key)
            if current is not None and current[1] >= revision:
                continue  # we already hold this revision or a newer one
            old = None if current is None else current[0]
            if value is None and not local:
                # The watch is ordered: nothing older for this key can follow its delete.
                entries.pop(key, None)
            else:
                entries[key] = (value, revision)
            if entries is self._entries and (old is not None or value is not None):
                self._notify(key, old, value)

    def _from_watch(self, entry, *, live: bool) -> None:
        key = entry.key
        if not key.startswith(self.prefix):
            return
        key = key[len(self.prefix):]
        if live:
            current = self._entries.get(key)
            if current is not None and current[1] >= entry.revision:
                return  # the echo of our own write (noted already): not worth decoding
        if entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
            self._apply(key, None, entry.revision, live=live)
            return
        value = self._decode(entry.value)
        if value is None:
            log.error("%s: unreadable value at %s (revision %s); treated as absent", self.name, key, entry.revision)
        self._apply(key, value, entry.revision, live=live)

    async def start(self, timeout: float = 60.0) -> None:
        """Start following the bucket; returns once its current content is loaded."""
        # A NATS server restarted (or killed) loses the watch's ephemeral consumer; nats-py notices
        # only after missed heartbeats (10-20 s of a stale mirror): watch again at once instead.
        nc = getattr(getattr(self.kv, "_js", None), "_nc", None)
        if nc is not None:
            self._forget_reconnects = on_reconnected(nc, self._rewatch_soon)
        self._task = asyncio.create_task(self._run(), name=f"kv-mirror {self.name}")
        waiter = asyncio.create_task(self._loaded.wait())
        done, _ = await asyncio.wait({waiter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self._task.done():
                self._task.result()  # re-raise why the watch died
            raise MirrorNotReady(f"{self.name} did not load within {timeout:.0f}s")

    async def stop(self) -> None:
        if self._forget_reconnects is not None:
            self._forget_reconnects()
            self._forget_reconnects = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def _rewatch_soon(self) -> None:
        """Load the bucket afresh without waiting for it (the reconnect hook)."""
        self._restart = True
        if self._watcher is not None:
            self._stopping_watcher = asyncio.create_task(self._stop_watcher(self._watcher))

    @staticmethod
    async def _stop_watcher(watcher) -> None:
        with contextlib.suppress(Exception):
            await watcher.stop()

    async def rewatch(self, timeout: float = 30.0) -> None:
        """Load the bucket afresh (for readers that want a periodic full resync)."""
        before = self._snapshots
        self._restart = True
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
        async with asyncio.timeout(timeout):
            while self._snapshots == before:
                self._snapshot_done.clear()
                await self._snapshot_done.wait()

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            watcher = None
            try:
                self._restart = False
                watcher = self._watcher = await self.kv.watch(self.prefix + ">")
                # Rebuilt on every (re)watch, so deletes missed while disconnected do not linger.
                self._building = {}
                async for entry in watcher:
                    if entry is None:  # the bucket's current content has been delivered
                        if self._building is not None:
                            self._entries, self._building = self._building, None
                            self._notify(None, None, None)
                            self._snapshots += 1
                            self._snapshot_done.set()
                        self._loaded.set()
                        backoff = 0.5
                        continue
                    # While a snapshot is being built, the live entries keep serving reads as they are.
                    self._from_watch(entry, live=self._building is None)
                if self._restart:
                    continue
                raise ConnectionError("the watch ended")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._building = None
                log.warning("%s: watch failed (%s: %s); watching again in %.1fs", self.name, type(e).__name__, e,
                            backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                self._watcher = None
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()
