"""Push delivery: oadrDistributeEvent POSTed to VENs that registered with oadrHttpPullModel=false.

When the events mirror changes (an event created, modified, moved to another status, cancelled
or retargeted) or a push VEN registers, every affected push VEN is planned for exactly as a
poll would be (``Handlers._plan_and_record``: the same plan, recorded with the same
compare-and-set of the VEN's delivery record). Only the process whose write wins pushes, so two
replicas (or a push and the VEN's own poll) never send the same change twice.

The plan is recorded as delivered before the POST, marked as being pushed (``pushing``), and the
mark is cleared once the VEN answered. A gateway killed mid-POST leaves the mark; once it is older
than any POST can last, the next gateway to look (at start-up, or when it comes due) pushes the
VEN's whole set again. A push that does not get through (no
connection, timeout, TLS, a non-2xx status, an answer we cannot read) puts the record back as
it was, unless something newer was recorded meanwhile, so the VEN's next poll, or the next push,
sends the events again: a failed push never loses a delivery. It is retried with exponential
backoff and jitter (``backoff_delay``), re-planned each time so the newest state is what goes
out, at most ``push_attempts`` failures in a row; each failure is published as a
``PushFailed`` fact (event ids, attempt, error kind; no internal detail).

Where: ``<oadrTransportAddress>/EiEvent`` (the address is the root of the VEN's own 2.0b
services, as the VTN's is), ``application/xml``, signed when a signer is configured, over
HTTPS with the VTN's certificate as client certificate when TLS is configured (the VEN's
server certificate is verified against ADRSTACK_TLS_CA). The VEN's answer, an oadrResponse or
an inline oadrCreatedEvent, goes through the same Handlers as if it had been sent to EiEvent,
as that VEN.

EiReport messages go the same way once the VEN has no event news: report requests, their
cancellations and the VTN's own metadata (what a poll would get, ``Handlers.next_report_message``)
are POSTed one at a time to ``<oadrTransportAddress>/EiReport``, and the VEN's answer
(oadrCreatedReport, oadrCanceledReport, oadrRegisteredReport) is handled as if sent to EiReport.
One that does not get through is put back (``Outgoing.undo``) for the next poll or push and
retried with the same backoff, ``push_attempts`` times in a row until the VEN has new work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

import aiohttp

from adrstack.shared import jetstream
from adrstack.shared.messages import PushErrorKind, PushFailed, utcnow

from .codec import HostileXml, InvalidContent, MalformedXml, parse
from .codec import model as m
from .delivery import EMPTY_DELIVERY, DeliveryPlan, DeliveryRecord
from .errors import OpenAdrError
from .events import EventBook
from .handlers import Handlers
from .message_auth import MessageAuth
from .settings import GatewaySettings
from .state import StoreUnavailable, VenStore

log = logging.getLogger(__name__)

# What a VEN may answer a push with: what its EiEvent or EiReport service could send the VTN.
ANSWERS = (m.CreatedEvent, m.Response)
REPORT_ANSWERS = (m.CreatedReport, m.CanceledReport, m.RegisteredReport, m.Response)
MAX_EXPONENT = 62


def backoff_delay(failures: int, initial: float, maximum: float,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` failed pushes in a row (1, 2, ...): ``initial``
    doubling per failure, capped at ``maximum``, with "equal jitter" (a uniform draw in the upper
    half), so VENs that failed together do not all come back at the same moment."""
    base = min(maximum, initial * 2.0 ** min(max(failures - 1, 0), MAX_EXPONENT))
    return base / 2 + rand() * base / 2


def push_url(transport_address: str) -> str:
    """The VEN's EiEvent endpoint under its transport address (a trailing slash or none: N0_5050)."""
    return transport_address.rstrip("/") + "/EiEvent"


def report_url(transport_address: str) -> str:
    """The VEN's EiReport endpoint: report requests, cancellations and the VTN's metadata."""
    return transport_address.rstrip("/") + "/EiReport"


class PushError(Exception):
    def __init__(self, kind: PushErrorKind, detail: str, http_status: int | None = None):
        super().__init__(detail)
        self.kind = kind
        self.http_status = http_status


@dataclass(eq=False)
class _Work:
    """One VEN's push loop; ``changed`` wakes it (a newer state to push)."""

    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class Pusher:
    def __init__(self, settings: GatewaySettings, store: VenStore, events: EventBook, handlers: Handlers,
                 auth: MessageAuth, ssl_context: ssl.SSLContext | None = None,
                 rand: Callable[[], float] = random.random):
        self.settings = settings
        self.store = store
        self.events = events
        self.handlers = handlers
        self.auth = auth
        self.ssl_context = ssl_context
        self.rand = rand
        self._push_vens: set[str] = set()
        self._work: dict[str, _Work] = {}
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(settings.push_concurrency)
        self._running = False
        self.pushed = 0  # successful pushes since start (for tests and /health)
        self.failed = 0
        # A push mark older than this: its gateway died mid-POST (a POST lasts push_timeout at
        # most; the rest allows for clocks of replicas that differ a little).
        self.stale_after = timedelta(seconds=2 * settings.push_timeout + 2)
        self._rechecks: dict[str, asyncio.TimerHandle] = {}
        # VENs whose last report push failed, and how many times in a row: their record's changes
        # (the failed message put back) do not wake them; the backoff, or new work, does.
        self._report_failures: dict[str, int] = {}

    @property
    def idle(self) -> bool:
        """No push planned, in flight or waiting to be retried."""
        return not self._work

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context is not None else True,
                                         limit=self.settings.push_concurrency)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.settings.push_timeout),
            headers={"Content-Type": "application/xml"})
        self._running = True
        self.store.vens.mirror.add_listener(self._ven_changed)
        self.events.mirror.add_listener(self._event_changed)
        self.store.reports.mirror.add_listener(self._reports_changed)
        self._ven_changed(None, None, None)  # and push what changed while no gateway was running

    async def stop(self) -> None:
        self._running = False
        for handle in self._rechecks.values():
            handle.cancel()
        self._rechecks.clear()
        tasks = [w.task for w in self._work.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._work.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ what to push, when

    def _ven_changed(self, key: str | None, old, new) -> None:
        if key is None:  # (re)loaded: every push VEN may have something to hear
            self._push_vens = {ven_id for ven_id, ven in self.store.vens.mirror.items() if _pushes_to(ven)}
            for ven_id in list(self._push_vens):
                self.wake(ven_id)
            return
        if new is not None and _pushes_to(new):
            self._push_vens.add(key)
            if old is None or not _pushes_to(old) or old.transport_address != new.transport_address \
                    or old.registration_id != new.registration_id:
                self.wake(key)  # a push VEN registered (again): it hears about its events now
        else:
            self._push_vens.discard(key)

    def _event_changed(self, key: str | None, old, new) -> None:
        if not self._push_vens:
            return
        if key is None:
            affected = self._push_vens
        else:
            named: set[str] = set()
            for event in (old, new):
                if event is None:
                    continue
                t = event.targets
                if t.group_ids or t.resource_ids or t.party_ids:
                    # Targeted by more than venIDs: let the plan decide for every push VEN.
                    named = self._push_vens
                    break
                named.update(t.ven_ids)
            affected = named & self._push_vens if named is not self._push_vens else named
        for ven_id in list(affected):
            self.wake(ven_id)

    def _reports_changed(self, key: str | None, old, new) -> None:
        if key is None:
            for ven_id in list(self._push_vens):
                self.wake(ven_id)
            return
        if key not in self._push_vens or new is None or not _report_work(new):
            return
        if key in self._report_failures and not _report_news(old, new):
            return
        self._report_failures.pop(key, None)  # new work: a fresh series of attempts
        self.wake(key)

    def wake(self, ven_id: str) -> None:
        """Plan (and push, if there is something new) for this VEN soon."""
        if not self._running:
            return
        work = self._work.get(ven_id)
        if work is not None:
            work.changed.set()
            return
        work = _Work()
        work.changed.set()
        self._work[ven_id] = work
        work.task = asyncio.get_running_loop().create_task(self._push_loop(ven_id, work), name=f"push {ven_id}")

    # ------------------------------------------------------------------ one VEN's loop

    async def _push_loop(self, ven_id: str, work: _Work) -> None:
        failures = 0
        failed_content = None
        in_flight: DeliveryPlan | None = None  # recorded as delivered, not confirmed yet
        try:
            while work.changed.is_set():
                work.changed.clear()
                ven = self.store.ven(ven_id)
                if ven is None or not _pushes_to(ven):
                    return
                now = utcnow()
                plan = await self.handlers._plan_and_record(ven_id, self.events.for_ven(ven_id), now,
                                                            push_stale_after=self.stale_after)
                if not plan.changed:
                    if plan.record.pushing is not None:  # another gateway's push, or a dead one's
                        self._recheck(ven_id, plan.record.pushing + self.stale_after - now)
                    # No event news (or a poll or another replica has sent it): report messages.
                    if await self._push_report(ven):
                        work.changed.set()  # one message per POST: look for the next
                    continue
                content = _content(plan)
                if failed_content is not None and content != failed_content:
                    failures = 0  # a newer state: a fresh series of attempts
                body = self.auth.sign(self.handlers._distribution(ven_id, plan.items, now))
                in_flight = plan
                try:
                    async with self._slots:
                        answer = await self._post(push_url(ven.transport_address), body)
                except PushError as e:
                    failures += 1
                    self.failed += 1
                    failed_content = content
                    await self._unrecord(ven_id, plan)
                    in_flight = None
                    gave_up = failures >= self.settings.push_attempts
                    log.info("push to VEN %s failed (%s, attempt %d%s): %s", ven_id, e.kind, failures,
                             ", giving up until its events change" if gave_up else "", e)
                    await self._report(ven_id, plan, failures, e, gave_up)
                    if gave_up:
                        if not work.changed.is_set():
                            return
                        continue  # something changed meanwhile: one more try, a fresh series if it is new
                    delay = backoff_delay(failures, self.settings.push_backoff_initial,
                                          self.settings.push_backoff_max, self.rand)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(work.changed.wait(), delay)  # a newer state cuts it short
                    work.changed.set()
                    continue
                in_flight = None
                self.pushed += 1
                failures, failed_content = 0, None
                await self._confirm(ven_id, plan.record)
                await self._answered(ven, answer)
                work.changed.set()  # and then what else it has: report messages
        except asyncio.CancelledError:
            if in_flight is not None:  # stopped mid-push: the VEN's next poll must still get it
                await self._unrecord(ven_id, in_flight)
            raise
        except StoreUnavailable as e:
            log.warning("push to VEN %s not planned: %s (its next poll gets the events)", ven_id, e)
        except Exception:
            log.exception("push to VEN %s failed unexpectedly", ven_id)
            if in_flight is not None:
                await self._unrecord(ven_id, in_flight)
        finally:
            if self._work.get(ven_id) is work:
                del self._work[ven_id]

    async def _push_report(self, ven) -> bool:
        """POST the VEN's next EiReport message, if any; True when one got through. One that does
        not is put back (the next poll or push sends it) and retried with backoff."""
        outgoing = await self.handlers.next_report_message(ven.ven_id)
        if outgoing is None:
            return False
        try:
            async with self._slots:
                answer = await self._post(report_url(ven.transport_address), self.auth.sign(outgoing.body))
        except PushError as e:
            await outgoing.undo()
            self.failed += 1
            failures = self._report_failures.get(ven.ven_id, 0) + 1
            self._report_failures[ven.ven_id] = failures
            gave_up = failures >= self.settings.push_attempts
            log.info("report push to VEN %s failed (%s, attempt %d%s): %s", ven.ven_id, e.kind, failures,
                     ", giving up until there is new work for it" if gave_up else "", e)
            if not gave_up:
                self._recheck(ven.ven_id, timedelta(seconds=backoff_delay(
                    failures, self.settings.push_backoff_initial, self.settings.push_backoff_max, self.rand)))
            return False
        self._report_failures.pop(ven.ven_id, None)
        self.pushed += 1
        await self._answered(ven, answer, REPORT_ANSWERS)
        return True

    async def _post(self, url: str, body: bytes) -> m.Envelope | None:
        """POST one oadrDistributeEvent; the VEN's answer parsed (None: an empty body)."""
        limit = self.settings.max_body_bytes
        try:
            async with self._session.post(url, data=body) as response:
                if not 200 <= response.status < 300:
                    raise PushError("http_status", f"HTTP {response.status}", http_status=response.status)
                answer = await response.content.read(limit + 1)
        except PushError:
            raise
        except asyncio.TimeoutError as e:
            raise PushError("timeout", f"no answer within {self.settings.push_timeout:g}s") from e
        except (aiohttp.ClientSSLError, ssl.SSLError) as e:
            raise PushError("tls", f"{type(e).__name__}: {e}") from e
        except (aiohttp.ClientError, OSError) as e:
            raise PushError("connection", f"{type(e).__name__}: {e}") from e
        if len(answer) > limit:
            raise PushError("unreadable_answer", f"answer larger than {limit} bytes")
        if not answer.strip():
            return None
        try:
            return parse(answer)
        except (HostileXml, MalformedXml, InvalidContent) as e:
            raise PushError("unreadable_answer", f"{type(e).__name__}: {e}") from e

    async def _answered(self, ven, envelope: m.Envelope | None, answers: tuple[type, ...] = ANSWERS) -> None:
        """The VEN's answer, handled as if it had sent it to the service we pushed from."""
        if envelope is None:
            return
        message = envelope.message
        if not isinstance(message, answers):
            log.info("VEN %s answered a push with %s; ignored", ven.ven_id, envelope.message_type)
            return
        named = getattr(message, "ven_id", None)
        if named not in (None, ven.ven_id):
            log.warning("VEN %s answered a push in the name of %r; ignored", ven.ven_id, named)
            return
        try:
            # No client certificate here (we are the client): a signature is still verified and
            # its nonce spent; with require_signatures an unsigned answer is refused.
            await self.auth.check(envelope, None)
            await self.handlers.handle(message, ven.fingerprint)
        except OpenAdrError as e:
            log.info("VEN %s's answer to a push refused (%s): %s", ven.ven_id, e.code, e.description)

    def _recheck(self, ven_id: str, after: timedelta) -> None:
        """Look at the VEN again once a push marked in its record would be stale."""
        if ven_id in self._rechecks or not self._running:
            return

        def due() -> None:
            self._rechecks.pop(ven_id, None)
            self.wake(ven_id)

        delay = max(after.total_seconds(), 0.0) + 0.05
        self._rechecks[ven_id] = asyncio.get_running_loop().call_later(delay, due)

    async def _confirm(self, ven_id: str, written: DeliveryRecord) -> None:
        """The VEN took the push: clear the mark (unless the record moved on meanwhile)."""

        def change(current: DeliveryRecord | None) -> DeliveryRecord | None:
            if current is None or current.pushing is None or (current is not written and current != written):
                return None
            return current.with_push(None)

        try:
            await self.store.deliveries.mutate(ven_id, change)
        except StoreUnavailable as e:
            # The mark stays: once stale, the VEN is sent the whole set once more (harmless).
            log.warning("push to VEN %s got through but could not be confirmed: %s", ven_id, e)

    async def _unrecord(self, ven_id: str, plan: DeliveryPlan) -> None:
        """The push did not get through: the VEN was not told, so the record goes back to what it
        was, unless something newer (a poll, another push) was recorded meanwhile."""
        written = plan.record
        previous = plan.previous if plan.previous is not None else EMPTY_DELIVERY

        def change(current: DeliveryRecord | None) -> DeliveryRecord | None:
            if current is None or (current is not written and current != written):
                return None
            return DeliveryRecord(previous.pending, previous.delivered_at, dict(previous.awaiting), previous.pushing)

        try:
            await self.store.deliveries.mutate(ven_id, change)
        except StoreUnavailable as e:
            log.error("push to VEN %s failed and its delivery record could not be put back: %s", ven_id, e)

    async def _report(self, ven_id: str, plan: DeliveryPlan, attempt: int, error: PushError, gave_up: bool) -> None:
        fact = PushFailed(ven_id=ven_id, event_ids=sorted({e.event_id for e, _ in plan.items}), attempt=attempt,
                          error=error.kind, http_status=error.http_status, gave_up=gave_up)
        try:
            await jetstream.publish(self.handlers.js, self.settings.subjects.push_failed(ven_id), fact)
        except Exception as e:
            log.warning("could not publish push.failed for %s: %s: %s", ven_id, type(e).__name__, e)


def _pushes_to(ven) -> bool:
    return not ven.http_pull_model and bool(ven.transport_address)


def _report_work(record) -> bool:
    return bool(record.unsent() or record.cancels_due() or record.metadata_to_send())


def _report_news(old, new) -> bool:
    """Work the VEN's record did not hold before: a new request, a new cancellation, a new request
    for the VTN's metadata, or reports registered again (not a failed message put back)."""
    if old is None or old.reports != new.reports:
        return True
    before = {r.report_request_id: r for r in old.requests}
    for r in new.requests:
        was = before.get(r.report_request_id)
        if was is None or (r.cancel_requested_at is not None and was.cancel_requested_at is None):
            return True
    return {r.report_request_id for r in new.source_requests} - {r.report_request_id for r in old.source_requests} != set()


def _content(plan: DeliveryPlan) -> frozenset:
    return frozenset((e.event_id, e.modification_number, status) for e, status in plan.items)

