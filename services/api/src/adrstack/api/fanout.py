"""One core NATS subscription per subject family per api process, fanned out to every GraphQL
subscriber in it.

A family's NATS subscription is opened by its first subscriber and kept until the app stops, so
a thousand dashboards cost the services and NATS what one does. Each fact is decoded once and a
fact re-sent with the same id (Nats-Msg-Id) passed on once, here, for all subscribers.

Slow subscribers are dropped: delivering is ``put_nowait`` into a subscriber's bounded queue, so
NATS delivery never waits for a websocket. A subscriber whose queue is full is taken out of the
family at once; its operation ends with a ``SLOW_SUBSCRIBER`` error and its websocket is closed
(:data:`SLOW_CLOSE_CODE`). Skipping would keep a client that never reads again holding a full
queue for ever and would hand a dashboard a view with holes it cannot see; a dropped client
knows, and subscribes again (then queries what it missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError

from adrstack.shared.messages import (
    EventTransition,
    Message,
    OptResponse,
    ReportData,
    VenDeregistered,
    VenRegistered,
    decode,
)
from adrstack.shared.subjects import Subjects

from .errors import ApiError

log = logging.getLogger(__name__)

# How many fact ids a family remembers to pass a re-sent fact on once.
RECENT_IDS = 4096
# Messages the api's NATS client may buffer per family before NATS drops for it: delivery to the
# subscribers' queues never waits, so this only fills when the process itself cannot keep up.
PENDING_LIMIT = 65_536
# Application close code (4000-4999) for a websocket whose subscriber fell a full queue behind.
SLOW_CLOSE_CODE = 4008

# The model of each VEN fact kind a subscription reads fields of; the others are read as Message.
VEN_FACT_MODELS: dict[str, type[Message]] = {
    "registered": VenRegistered,
    "deregistered": VenDeregistered,
    "opt": OptResponse,
    "report.data": ReportData,
}


class RecentIds:
    """The last ``size`` ids seen. A fact may be published again with the same id (a scheduler
    replica repairing another's just-committed state, a retried publish): JetStream stores it
    once (Nats-Msg-Id), but core subscribers like this one get every copy."""

    def __init__(self, size: int = RECENT_IDS):
        self.size = size
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def first_time(self, fact_id: str) -> bool:
        if fact_id in self._ids:
            return False
        self._ids.add(fact_id)
        self._order.append(fact_id)
        if len(self._order) > self.size:
            self._ids.discard(self._order.popleft())
        return True


@dataclass(frozen=True)
class Fact:
    """A decoded fact: ``ident`` is the VEN or event id of its subject, ``kind`` what follows it
    (``report.data``, ``opt``, ``created``, ...)."""

    ident: str
    kind: str
    message: Message


def family_subjects(subjects: Subjects) -> dict[str, str]:
    """The families by name, each one NATS subject."""
    p = subjects.prefix
    return {
        "events": subjects.all_event_facts,
        "ven": subjects.all_ven_facts,
        # One token after the VEN id: registrations, opt responses, heartbeats; never a report.
        "lifecycle": f"{p}.ven.*.*",
        "readings": f"{p}.ven.*.report.data",
    }


class _Ended:
    """Put in a queue to end its subscriber: ``dropped`` says whether it was too slow."""

    def __init__(self, dropped: bool):
        self.dropped = dropped


def everything(fact: Fact) -> bool:
    return True


class Subscriber:
    def __init__(self, ident: str | None, wants: Callable[[Fact], bool], limit: int, client: object):
        self.ident = ident  # the one VEN or event it follows, or None for all
        self.wants = wants
        self.client = client  # the websocket it streams to, to count clients and close it when dropped
        self.queue: asyncio.Queue[Fact | _Ended] = asyncio.Queue(limit)

    async def facts(self) -> AsyncIterator[Fact]:
        while True:
            item = await self.queue.get()
            if isinstance(item, _Ended):
                if item.dropped:
                    raise ApiError("slow_subscriber", f"dropped: more than {self.queue.maxsize} messages "
                                   "not read in time; subscribe again")
                return
            yield item

    def end(self, dropped: bool) -> None:
        while not self.queue.empty():  # room for the end, and nothing more to keep for a dropped reader
            self.queue.get_nowait()
        self.queue.put_nowait(_Ended(dropped))


@dataclass
class Family:
    name: str
    subject: str
    subscribers: set[Subscriber] = field(default_factory=set)
    # The subscribers by the id they follow (None: all), so a fact is offered only to its own.
    by_ident: dict[str | None, set[Subscriber]] = field(default_factory=dict)
    nats_subscription: object | None = None
    delivered: int = 0  # facts put into subscribers' queues
    dropped: int = 0  # subscribers dropped for being slow
    recent: RecentIds = field(default_factory=RecentIds)

    def add(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)
        self.by_ident.setdefault(subscriber.ident, set()).add(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        followers = self.by_ident.get(subscriber.ident)
        if followers is not None:
            followers.discard(subscriber)
            if not followers:
                del self.by_ident[subscriber.ident]

    def stats(self) -> dict:
        return {"subject": self.subject, "subscribed": self.nats_subscription is not None,
                "subscribers": len(self.subscribers), "delivered": self.delivered, "dropped": self.dropped}


class Hub:
    def __init__(self, nc: NATS, subjects: Subjects, queue_limit: int):
        self.nc = nc
        self.subjects = subjects
        self.queue_limit = queue_limit
        self.families = {name: Family(name, subject) for name, subject in family_subjects(subjects).items()}
        self._opening = asyncio.Lock()
        self._closed = False

    @contextlib.asynccontextmanager
    async def subscribe(self, family: str, ident: str | None = None, wants: Callable[[Fact], bool] = everything,
                        client: object = None) -> AsyncIterator[Subscriber]:
        """A subscriber to the facts of ``family`` about ``ident`` (None: about any) that ``wants`` keeps."""
        fam = self.families[family]
        await self._open(fam)
        subscriber = Subscriber(ident, wants, self.queue_limit, client)
        fam.add(subscriber)
        try:
            yield subscriber
        finally:
            fam.remove(subscriber)

    async def _open(self, fam: Family) -> None:
        async with self._opening:  # two first subscribers at once still open one NATS subscription
            if self._closed:
                raise ApiError("unavailable", "the API is stopping")
            if fam.nats_subscription is None:
                async def on_message(msg: Msg) -> None:
                    self._deliver(fam, msg)

                fam.nats_subscription = await self.nc.subscribe(fam.subject, cb=on_message,
                                                                pending_msgs_limit=PENDING_LIMIT)

    def _deliver(self, fam: Family, msg: Msg) -> None:
        if not fam.subscribers:
            return
        fact_id = (msg.headers or {}).get("Nats-Msg-Id")
        if fact_id is not None and not fam.recent.first_time(fact_id):
            return
        fact = self._decode(msg)
        if fact is None:
            return
        followers = [*fam.by_ident.get(None, ()), *fam.by_ident.get(fact.ident, ())]
        for subscriber in followers:
            if not subscriber.wants(fact):
                continue
            try:
                subscriber.queue.put_nowait(fact)
                fam.delivered += 1
            except asyncio.QueueFull:
                fam.remove(subscriber)
                fam.dropped += 1
                subscriber.end(dropped=True)
                log.warning("dropped a slow %s subscriber: %d messages behind", fam.name, self.queue_limit)

    def _decode(self, msg: Msg) -> Fact | None:
        try:
            kind, ident, what = self.subjects.parse(msg.subject)
            if kind == "event":
                return Fact(ident, what, decode(EventTransition, msg.data))
            return Fact(ident, what, decode(VEN_FACT_MODELS.get(what, Message), msg.data))
        except (ValueError, ValidationError) as e:
            log.warning("skipping malformed fact on %s: %s", msg.subject, e)
            return None

    def stats(self) -> dict:
        subscribers = [s for fam in self.families.values() for s in fam.subscribers]
        return {
            "subscribers": len(subscribers),
            "websocketClients": len({id(s.client) for s in subscribers if s.client is not None}),
            "natsSubscriptions": sum(f.nats_subscription is not None for f in self.families.values()),
            "families": {name: fam.stats() for name, fam in self.families.items()},
        }

    @property
    def subscriber_count(self) -> int:
        return sum(len(fam.subscribers) for fam in self.families.values())

    async def close(self) -> None:
        """End every subscription (they complete) and unsubscribe from NATS."""
        async with self._opening:
            self._closed = True
        for fam in self.families.values():
            for subscriber in list(fam.subscribers):
                fam.remove(subscriber)
                subscriber.end(dropped=False)
            if fam.nats_subscription is not None:
                with contextlib.suppress(Exception):  # the connection may already be closing
                    await fam.nats_subscription.unsubscribe()
                fam.nats_subscription = None
