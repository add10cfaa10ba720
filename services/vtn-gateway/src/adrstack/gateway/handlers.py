"""What the VTN does with each 2.0b message: typed message in, rendered answer out.

State is read from the in-memory mirrors (``state``, ``events``); every fact is published to
JetStream before the VEN is told it was received, and a failure to store is answered with
469 so the VEN retries. An idle poll touches no network.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import dataclass
from typing import Awaitable, Callable
from datetime import timedelta
from urllib.parse import urlsplit

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from adrstack.shared.messages import (
    Message,
    OptResponse,
    OptSchedule,
    OptWindow,
    ReportsRegistered,
    VenDeregistered,
    VenRecord,
    VenRegistered,
    VenSeen,
    derived_id,
    utcnow,
)
from adrstack.shared.logfields import log_fields
from adrstack.shared.subjects import TOKEN_RULE, Subjects, is_valid_token

from . import report_requests as request_steps
from . import reports as report_logic
from . import status as status_logic
from .codec import model as m
from .codec import render
from .delivery import (
    EMPTY_DELIVERY,
    DeliveryPlan,
    DeliveryRecord,
    awaits_acknowledgement,
    plan_delivery,
    shown_only,
)
from .errors import (
    INVALID_DATA,
    INVALID_ID,
    NOT_ALLOWED,
    NOT_REGISTERED_OR_AUTHORIZED,
    OUT_OF_SEQUENCE,
    REPORT_NOT_SUPPORTED,
    TARGET_MISMATCH,
    OpenAdrError,
    Unavailable,
)
from .events import EventBook, delivery_order
from .observability import GatewayMetrics
from .identity import Provisioning
from .publisher import FactPublisher
from .settings import GatewaySettings
from .state import (
    OptBook,
    ReportRecord,
    ReportRequestState,
    StoreUnavailable,
    Ven,
    VenStore,
    new_registration_id,
    new_ven_id,
)

log = logging.getLogger(__name__)

MAX_VEN_NAME = 256
MAX_OPT_ID = 256
# Readings per ReportData fact: a 1 MiB oadrUpdateReport holds ~7,000 readings, whose JSON would
# pass NATS's default 1 MiB message limit; smaller facts also keep telemetry's batches even.
READINGS_PER_FACT = 1000
# One answer for an unknown venID and for someone else's: a caller learns nothing about other VENs.
UNAUTHORIZED = "not registered or authorized: use the venID registered with this certificate"


def checked_id(value: str | None, what: str) -> str:
    """Ids become NATS subject tokens and KV keys: refuse anything else at the edge (452)."""
    if not is_valid_token(value):
        raise OpenAdrError(INVALID_ID, f"invalid {what}: must be {TOKEN_RULE}")
    return value  # type: ignore[return-value]


MAX_TRANSPORT_ADDRESS = 2048


def push_address(address: str | None, *, tls: bool) -> str:
    """The oadrTransportAddress of a VEN registering for push, checked: an absolute http(s) URL
    with a host, no credentials, at most MAX_TRANSPORT_ADDRESS characters; https when the VTN
    runs TLS (pushes carry the VTN's client certificate and are verified against the TLS CA).
    Anything else is refused with 454, naming the field."""
    what = "oadrTransportAddress"
    if address in (None, "", "None"):
        raise OpenAdrError(INVALID_DATA, f"{what} is required with oadrHttpPullModel=false (push)")
    if len(address) > MAX_TRANSPORT_ADDRESS:
        raise OpenAdrError(INVALID_DATA, f"{what} must be at most {MAX_TRANSPORT_ADDRESS} characters")
    try:
        parts = urlsplit(address)
        port = parts.port  # raises ValueError for a port that is not one
    except ValueError:
        raise OpenAdrError(INVALID_DATA, f"{what} is not a URL") from None
    schemes = ("https",) if tls else ("http", "https")
    if parts.scheme not in schemes:
        raise OpenAdrError(INVALID_DATA, f"{what} must be an absolute {' or '.join(schemes)} URL")
    if not parts.hostname or parts.username is not None or parts.password is not None or port == 0:
        raise OpenAdrError(INVALID_DATA, f"{what} must name a host (and no credentials)")
    if any(c.isspace() or ord(c) < 32 for c in address) or parts.fragment:
        raise OpenAdrError(INVALID_DATA, f"{what} must be a plain URL (no spaces or fragment)")
    return address


def heartbeat_window(ven_id: str, now_ts: float, interval: float) -> int:
    """The heartbeat window ``now_ts`` falls in for this VEN: windows of ``interval`` seconds,
    offset per VEN by a hash of its id (the same on every replica)."""
    if interval <= 0:
        return int(now_ts * 1000)
    return int((now_ts + zlib.crc32(ven_id.encode()) % interval) // interval)


@dataclass(slots=True)
class Outgoing:
    """A message for a VEN, already recorded as sent, and how to take that back."""

    body: bytes
    undo: Callable[[], Awaitable[None]]


# Why the requests made of a VEN's earlier report metadata end when it registers its reports again.
SUPERSEDED = "superseded: the VEN registered its reports again"


class Handlers:
    def __init__(self, settings: GatewaySettings, nc: NATS, js: JetStreamContext, store: VenStore,
                 events: EventBook, provisioning: Provisioning | None = None,
                 publisher: FactPublisher | None = None, metrics: GatewayMetrics | None = None):
        if settings.enrollment == "provisioned" and provisioning is None:
            raise ValueError("provisioned enrollment needs the provisioning records")
        self.settings = settings
        self.metrics = metrics or GatewayMetrics()
        self.provisioning = provisioning
        # Provisioned enrollment: a VEN is its certificate (see identity.py).
        self.bound_to_certificate = settings.enrollment == "provisioned"
        self.nc = nc
        self.js = js
        # Pipelined publishes with an ack per fact; None: one js.publish request per fact.
        self.publisher = publisher
        self.store = store
        self.events = events
        self.subjects: Subjects = settings.subjects
        self.vtn_id = settings.vtn_id
        # 2.0b durations are whole seconds.
        self.poll_freq = timedelta(seconds=max(1, round(settings.poll_interval)))
        self._dispatch = {
            m.Poll: self.poll,
            m.CancelPartyRegistration: self.cancel_party_registration,
            m.CanceledPartyRegistration: self.canceled_party_registration,
            m.RequestEvent: self.request_event,
            m.CreatedEvent: self.created_event,
            m.RegisterReport: self.register_report,
            m.RegisteredReport: self.registered_report,
            m.UpdateReport: self.update_report,
            m.CreatedReport: self.created_report,
            m.CanceledReport: self.canceled_report,
            m.CancelReport: self.cancel_report,
            m.CreateReport: self.create_report,
            m.CreateOpt: self.create_opt,
            m.CancelOpt: self.cancel_opt,
            m.Response: self.response,
        }

    async def handle(self, message: m.Inbound, peer: str | None = None) -> bytes | None:
        """The answer to ``message`` (None: an empty HTTP 200), which came over a connection whose
        client certificate has the fingerprint ``peer`` (None: plain HTTP). Raises OpenAdrError."""
        with log_fields(ven_id=getattr(message, "ven_id", None)):
            return await self._handle(message, peer)

    async def _handle(self, message: m.Inbound, peer: str | None) -> bytes | None:
        try:
            kind = type(message)
            if kind is m.CreatePartyRegistration:
                return await self.create_party_registration(message, peer)
            if kind is m.QueryRegistration:
                return await self.query_registration(message, peer)
            if self.bound_to_certificate:
                refusal = await self.authorize(message, peer)
                if refusal is not None:
                    return refusal
            return await self._dispatch[kind](message)
        except StoreUnavailable as e:
            log.warning("%s: store unavailable: %s", type(message).__name__, e)
            raise Unavailable("state store") from e

    # ------------------------------------------------------------------ plumbing

    async def publish(self, subject: str, message: Message, what: str) -> None:
        await self.publish_bytes(subject, message.to_bytes(), message.msg_id, what)

    async def publish_bytes(self, subject: str, payload: bytes, msg_id: str, what: str) -> None:
        """Store one fact in JetStream (its id as Nats-Msg-Id) or raise Unavailable (469: the VEN
        re-sends, and the duplicate window drops a copy that was stored after all)."""
        try:
            if self.publisher is not None:
                await self.publisher.publish(subject, payload, msg_id)
            else:
                await self.js.publish(subject, payload, timeout=5.0, headers={"Nats-Msg-Id": msg_id})
        except Exception as e:
            log.warning("could not publish %s to %s: %s: %s", what, subject, type(e).__name__, e)
            raise Unavailable(what) from e

    # ------------------------------------------------------------------ identity

    async def authorize(self, message: m.Inbound, peer: str | None) -> bytes | None:
        """Refuse (463) a message about a VEN unless it came over the certificate that VEN
        registered with and that certificate is still provisioned for it. A poll from a
        provisioned certificate whose VEN is not registered (any more) is asked to register."""
        if isinstance(message, m.CancelPartyRegistration) and message.ven_id is None:
            ven = self.store.ven_by_registration(message.registration_id)
        else:
            ven_id = getattr(message, "ven_id", None)
            if ven_id is None and isinstance(message, m.Response):
                return None  # an anonymous oadrResponse changes nothing
            ven_id = checked_id(ven_id, "venID")
            ven = self.store.ven(ven_id) or await self.store.find_ven(ven_id)
        if ven is not None and ven.fingerprint == peer and await self.provisioning.holds(peer, ven.ven_name):
            return None
        if isinstance(message, m.Poll):
            provisioned, registered = await self.certificate_ven(peer)
            if provisioned and registered is None:
                return render.request_reregistration(message.ven_id)
        raise OpenAdrError(NOT_REGISTERED_OR_AUTHORIZED, UNAUTHORIZED)

    async def certificate_ven(self, peer: str | None) -> tuple[bool, Ven | None]:
        """Whether this certificate is provisioned, and the registered VEN it speaks for."""
        record = None if peer is None else await self.provisioning.lookup(peer)
        if record is None:
            return False, None
        ven_id = await self.store.ven_id_for_name(record.ven_name)
        ven = None if ven_id is None else await self.store.find_ven(ven_id)
        return True, (ven if ven is not None and ven.fingerprint == peer else None)

    async def known_ven(self, ven_id: str | None) -> Ven:
        ven = await self.store.find_ven(checked_id(ven_id, "venID"))
        if ven is None:
            raise OpenAdrError(INVALID_ID, "unknown venID: register first")
        return ven

    async def heartbeat(self, ven: Ven, now_ts: float) -> None:
        """VenSeen at most once per seen_interval per VEN. The window is kept per process: after a
        restart, or across replicas, the same window gives the same message id, which JetStream's
        duplicate window drops. Each VEN's windows are offset by a hash of its id, so a fleet's
        heartbeats are spread over the interval rather than all due at the same moment. A core
        publish, not awaited for an ack: a heartbeat is not worth a round trip on a poll."""
        window = heartbeat_window(ven.ven_id, now_ts, self.settings.seen_interval)
        if window == ven.seen_window:
            return
        ven.seen_window = window
        message = VenSeen(id=derived_id("seen", ven.ven_id, window), ven_id=ven.ven_id)
        try:
            await self.nc.publish(self.subjects.seen(ven.ven_id), message.to_bytes(),
                                  headers={"Nats-Msg-Id": message.msg_id})
        except Exception as e:
            log.debug("heartbeat of %s not sent: %s", ven.ven_id, e)

    # ------------------------------------------------------------------ poll

    async def poll(self, msg: m.Poll) -> bytes:
        ven_id = checked_id(msg.ven_id, "venID")
        self.metrics.polls.inc()
        ven = self.store.ven(ven_id) or await self.store.find_ven(ven_id)
        if ven is None:
            # An unknown (e.g. deregistered) VEN is asked to register again rather than refused.
            return render.request_reregistration(ven_id)
        if ven.pending_action == "cancel":
            return render.cancel_party_registration(render.new_request_id(), ven.registration_id, ven_id)
        if ven.pending_action == "reregister":
            return render.request_reregistration(ven_id)
        await self.heartbeat(ven, time.time())
        events = self.events.for_ven(ven_id)
        if events or (sent := self.store.delivery(ven_id)).pending or sent.awaiting:
            now = utcnow()
            plan = await self._plan_and_record(ven_id, events, now)
            if plan.changed:
                return self._distribution(ven_id, plan.items, now)
        outgoing = await self.next_report_message(ven_id)
        return outgoing.body if outgoing is not None else render.poll_ok(ven_id)

    async def next_report_message(self, ven_id: str) -> "Outgoing | None":
        """The next EiReport message the VTN has for the VEN, recorded as sent: report requests,
        then cancellations, then the VTN's own metadata. A poll answers with it; a push POSTs it
        and, if that fails, ``undo`` puts it back for the next poll or push."""
        record = self.store.report_record(ven_id)
        if record.unsent():
            request_id = render.new_request_id()
            requests = await self.store.take_unsent_requests(ven_id, request_id)
            if requests:
                await self.report_request_facts(ven_id, requests)
                return Outgoing(render.create_report([report_logic.as_codec_request(r) for r in requests], ven_id,
                                                     request_id=request_id),
                                lambda: self._unsend(ven_id, lambda r: r.create_request_id == request_id,
                                                     request_steps.unsent))
        if record.cancels_due():
            cancel = await self._take_cancels(ven_id, polled=True)
            if cancel is not None:
                ids, follow, request_id = cancel
                return Outgoing(render.cancel_report(ids, follow, ven_id, request_id=request_id),
                                lambda: self._unsend(ven_id, lambda r: r.cancel_request_id == request_id,
                                                     request_steps.cancel_unsent))
        if record.metadata_to_send():
            # Last: the VTN's own metadata waits for anything about the VEN's events and reports.
            taken = await self.store.take_metadata(ven_id)
            if taken:
                return Outgoing(render.register_report([report_logic.vtn_metadata(taken[0], utcnow())], ven_id,
                                                       report_request_id=taken[0]),
                                lambda: self.store.restore_metadata(ven_id, taken[0]))
        return None

    async def _unsend(self, ven_id: str, which: Callable[[ReportRequestState], bool],
                      step: Callable[[ReportRequestState], ReportRequestState | None]) -> None:
        changed = await self.store.change_requests(ven_id, lambda r: step(r) if which(r) and not r.finished else None)
        await self.report_request_facts(ven_id, changed)

    async def _plan_and_record(self, ven_id: str, events, now, limit: int | None = None,
                               push_stale_after: timedelta | None = None) -> DeliveryPlan:
        """Plan what the VEN should see and record it (compare-and-set: replicas may race).

        ``limit``: only the first ``limit`` events are shown (oadrRequestEvent's replyLimit); the
        record keeps what it said of the others, as the VEN hears nothing of them.
        ``push_stale_after``: planned for a push. What it records is marked as being pushed, and a
        mark older than that (its gateway died mid-POST) sends the whole set again."""
        plans: list[DeliveryPlan] = []

        def change(current: DeliveryRecord | None) -> DeliveryRecord | None:
            record = current or EMPTY_DELIVERY
            plan = plan_delivery(events, record, now)
            if push_stale_after is not None:
                if plan.changed:
                    plan.record = plan.record.with_push(now)
                elif record.pushing is not None and now - record.pushing >= push_stale_after:
                    plan.changed = True  # the whole set again, as delivered now
                    plan.record = DeliveryRecord(record.pending, now, dict(record.awaiting), now)
            plan.previous = current
            if limit is not None and plan.record is not record and len(plan.items) > limit:
                shown = {event.event_id for event, _, _ in self._shown(plan.items, now)[:limit]}
                plan.record = shown_only(plan.record, record, shown)
            plans[:] = [plan]
            return None if plan.record is record else plan.record

        await self.store.deliveries.mutate(ven_id, change)
        return plans[0]

    def _shown(self, items, now) -> list:
        """(event, status, XML) of each event a distribution of ``items`` shows, in rule 15 order."""
        shown = []
        for event, status in delivery_order(items):
            xml = self.events.xml(event, status, now)
            if xml is not None:
                shown.append((event, status, xml))
        return shown

    def _distribution(self, ven_id: str, items, now, limit: int | None = None,
                      answering: m.EiResponse | None = None) -> bytes:
        """``answering``: the eiResponse when this answers a VEN's request (oadrRequestEvent)."""
        shown = self._shown(items, now)
        if limit is not None:
            shown = shown[:limit]
        return render.distribute_event(self.vtn_id, [xml.for_ven(ven_id) for _, _, xml in shown], r=answering)

    # ------------------------------------------------------------------ registration

    async def query_registration(self, msg: m.QueryRegistration, peer: str | None) -> bytes:
        # Only a certificate says who asks (N1_0015); without one, answer as to an unregistered VEN.
        ven = (await self.certificate_ven(peer))[1] if self.bound_to_certificate else None
        return render.created_party_registration(m.EiResponse(200, "OK", msg.request_id), self.vtn_id,
                                                 registration_id=ven.registration_id if ven else None,
                                                 ven_id=ven.ven_id if ven else None, poll_freq=self.poll_freq)

    async def _provisioned_name(self, msg: m.CreatePartyRegistration, peer: str | None) -> str:
        """The venName this certificate was provisioned for; a registration under any other name,
        or from a certificate nobody provisioned, is refused alike."""
        record = None if peer is None else await self.provisioning.lookup(peer)
        if record is None or (msg.ven_name is not None and msg.ven_name != record.ven_name):
            log.info("registration refused: certificate %s is not provisioned for that venName", peer)
            raise OpenAdrError(NOT_REGISTERED_OR_AUTHORIZED,
                               "not authorized: this certificate is not provisioned for that venName")
        return record.ven_name

    async def create_party_registration(self, msg: m.CreatePartyRegistration, peer: str | None = None) -> bytes:
        if msg.transport_name != "simpleHttp":
            raise OpenAdrError(NOT_ALLOWED, "only the simpleHttp transport is offered")
        push = msg.http_pull_model is False
        if push:
            # A push VEN is sent its events at its oadrTransportAddress (see push.py).
            push_address(msg.transport_address, tls=self.settings.tls)
        name = msg.ven_name
        if name is not None and (not name.strip() or len(name) > MAX_VEN_NAME):
            raise OpenAdrError(INVALID_DATA, f"venName must be 1-{MAX_VEN_NAME} characters")
        if self.bound_to_certificate:
            name = await self._provisioned_name(msg, peer)
        claimed = None if msg.ven_id in (None, "") else checked_id(msg.ven_id, "venID")
        fresh = claimed is None and not msg.registration_id  # a VEN that holds no ids (N1_0060)
        if claimed is not None:
            existing = await self.store.find_ven(claimed)
            if existing is not None and name is not None and existing.ven_name != name:
                if self.bound_to_certificate:
                    raise OpenAdrError(NOT_REGISTERED_OR_AUTHORIZED, UNAUTHORIZED)
                raise OpenAdrError(INVALID_ID, "this venID is registered under another venName")
            if existing is not None and msg.registration_id and msg.registration_id != existing.registration_id:
                raise OpenAdrError(INVALID_ID, "registrationID is not this VEN's")
            ven_id = claimed  # a pre-allocated or already registered venID is echoed (N1_0025)
            if name is None:
                name = existing.ven_name if existing is not None else claimed
            elif existing is None and await self.store.claim_name(name, ven_id) != ven_id and self.bound_to_certificate:
                # The certificate's VEN holds another venID: it must use that one.
                raise OpenAdrError(INVALID_ID, "this certificate is registered under another venID")
        elif name is None:
            raise OpenAdrError(INVALID_DATA, "oadrVenName or venID is required to register")
        else:
            ven_id = await self.store.claim_name(name, new_ven_id())
        now = utcnow()
        previous: list[Ven | None] = [None]
        # openleadr VENs send the string "None" for an absent transport address.
        address = None if msg.transport_address in (None, "", "None") else msg.transport_address

        def build(current: Ven | None) -> VenRecord:
            previous[0] = current
            return VenRecord(
                ven_id=ven_id,
                ven_name=name,
                # Re-registering keeps the registration: a VEN that re-registers after a network
                # hiccup must not invalidate what it already holds.
                # With a certificate, the same VEN asking afresh (no ids) gets a new registrationID
                # and keeps its venID (N1_0060).
                registration_id=(current.registration_id if current and not (fresh and peer)
                                 else new_registration_id()),
                registered_at=current.registered_at if current else now,
                profile_name=msg.profile_name,
                transport_name=msg.transport_name,
                transport_address=address,
                http_pull_model=not push,
                report_only=msg.report_only,
                # In open enrollment the certificate is recorded, not enforced.
                fingerprint=peer or (current.fingerprint if current else None),
                pending_action=None,  # a requested re-registration is hereby done
            )

        ven = await self.store.put_ven(ven_id, build)
        await self.publish(self.subjects.ven_registered(ven_id), VenRegistered(
            ven_id=ven.ven_id,
            ven_name=ven.ven_name,
            registration_id=ven.registration_id,
            profile_name=ven.profile_name,
            transport_name=ven.transport_name,
            transport_address=ven.transport_address,
            http_pull_model=ven.http_pull_model,
            report_only=ven.report_only,
            reregistration=previous[0] is not None,
        ), "registration")
        # A first registration carries no venID: the one just given is added here.
        log.info("registered VEN %s%s", ven_id, " again" if previous[0] else "", extra={"ven_id": ven_id})
        self.metrics.registrations.inc(kind="again" if previous[0] else "new")
        return render.created_party_registration(m.EiResponse(200, "OK", msg.request_id), self.vtn_id,
                                                 registration_id=ven.registration_id, ven_id=ven.ven_id,
                                                 poll_freq=self.poll_freq)

    async def _deregister(self, ven: Ven, reason: str) -> None:
        await self.publish(self.subjects.ven_deregistered(ven.ven_id), VenDeregistered(
            id=derived_id("deregistered", ven.ven_id, ven.registration_id),
            ven_id=ven.ven_id,
            registration_id=ven.registration_id,
            reason=reason,
        ), "deregistration")
        await self.store.forget_ven(ven.ven_id)
        log.info("deregistered VEN %s (%s)", ven.ven_id, reason)

    async def cancel_party_registration(self, msg: m.CancelPartyRegistration) -> bytes:
        if msg.ven_id is None:
            ven = self.store.ven_by_registration(msg.registration_id)
            if ven is None:
                raise OpenAdrError(INVALID_ID, "unknown registrationID")
        else:
            ven = await self.known_ven(msg.ven_id)
            if msg.registration_id != ven.registration_id:
                raise OpenAdrError(INVALID_ID, "registrationID is not this VEN's")
        await self._deregister(ven, "oadrCancelPartyRegistration")
        return render.canceled_party_registration(m.EiResponse(200, "OK", msg.request_id),
                                                  registration_id=ven.registration_id, ven_id=ven.ven_id)

    async def canceled_party_registration(self, msg: m.CanceledPartyRegistration) -> bytes:
        ven = await self.known_ven(msg.ven_id)
        if ven.pending_action == "cancel":
            # The VTN decided; the VEN's answer (even an error code) only closes the exchange.
            await self._deregister(ven, "cancelled by the VTN")
        return render.response(m.EiResponse(200, "OK", msg.response.request_id), ven.ven_id)

    async def response(self, msg: m.Response) -> None:
        return None  # a VEN's oadrResponse ends an exchange: nothing to answer

    # ------------------------------------------------------------------ events

    async def request_event(self, msg: m.RequestEvent) -> bytes:
        ven = await self.known_ven(msg.ven_id)
        now = utcnow()
        limit = msg.reply_limit or None
        plan = await self._plan_and_record(ven.ven_id, self.events.for_ven(ven.ven_id), now, limit)
        # The eiResponse echoes the VEN's requestID, as every other answer does (E1_1050).
        return self._distribution(ven.ven_id, plan.items, now, limit=limit,
                                  answering=m.EiResponse(200, "OK", msg.request_id))

    def targeted_event(self, event_id: str | None, ven: Ven):
        """The event a VEN's message names: 452 if unknown, 462 if it does not target the VEN."""
        event = self.events.get(checked_id(event_id, "eventID"))
        if event is None:
            raise OpenAdrError(INVALID_ID, "unknown eventID")
        if not self.events.targets(event, ven.ven_id):
            raise OpenAdrError(TARGET_MISMATCH, f"event {event.event_id} does not target this VEN")
        return event

    async def created_event(self, msg: m.CreatedEvent) -> bytes:
        ven = await self.known_ven(msg.ven_id)
        opts = self.store.opt_book(ven.ven_id)
        messages = []
        acknowledged: list[tuple[str, int]] = []
        for r in msg.event_responses:
            event = self.targeted_event(r.event_id, ven)
            event_id = event.event_id
            if r.modification_number != event.modification_number:
                # Rule 48: an answer to a superseded version of the event.
                raise OpenAdrError(OUT_OF_SEQUENCE, f"event {event_id} is at modificationNumber "
                                                    f"{event.modification_number}")
            if awaits_acknowledgement(event):
                acknowledged.append((event_id, r.modification_number))
            if opts.for_event(event_id) is not None:
                continue  # rule 206 (E1_1065): the VEN's oadrCreateOpt for this event stands
            # A fresh id per answer received: the same answer given again after a different one
            # (optIn, optOut, optIn; rule 17) is news, and telemetry keeps one history row per
            # change whatever the ids, so a re-sent copy adds nothing there.
            messages.append(OptResponse(
                ven_id=ven.ven_id,
                event_id=event_id,
                modification_number=r.modification_number,
                opt_type=r.opt_type,
                response_code=r.response_code,
                request_id=r.request_id or None,
            ))
        subject = self.subjects.opt(ven.ven_id)
        for message in messages:
            await self.publish(subject, message, "opt response")
        if acknowledged:
            await self._acknowledge(ven.ven_id, acknowledged)
        return render.response(m.EiResponse(200, "OK", msg.response.request_id), ven.ven_id)

    async def _acknowledge(self, ven_id: str, acknowledged: list[tuple[str, int]]) -> None:
        """Rule 52: the VEN answered cancellations it was being re-sent; stop re-sending them.
        Recorded with compare-and-set so every replica stops."""
        def change(current: DeliveryRecord | None) -> DeliveryRecord | None:
            record = current
            for event_id, modification_number in acknowledged:
                if record is not None:
                    record = record.acknowledged(event_id, modification_number) or record
            return None if record is current else record

        if not any(event_id in self.store.delivery(ven_id).awaiting for event_id, _ in acknowledged):
            # The poll that sent the cancellation may have been served by another replica whose
            # write this one's mirror has not seen yet: read the record from KV itself.
            await self.store.deliveries.fetch(ven_id)
        await self.store.deliveries.mutate(ven_id, change)

    # ------------------------------------------------------------------ reports

    async def register_report(self, msg: m.RegisterReport) -> bytes:
        """The VEN's metadata: requests for its telemetry (in this answer when piggybacking, R1_3060,
        else on the next poll), and the VTN's own oadrRegisterReport due on a poll (N1_0020)."""
        ven = await self.known_ven(msg.ven_id)
        offered = report_logic.descriptions(msg.reports)
        requests = report_logic.report_requests(offered, timedelta(seconds=self.settings.report_interval))
        inline = self.settings.piggyback_report_requests
        now = utcnow()
        if inline:
            requests = [r.model_copy(update={"sent": True, "sent_at": now, "version": r.version + 1})
                        for r in requests]
        superseded: list[ReportRequestState] = []
        previous: list[ReportRecord] = []

        def replace(old: ReportRecord | None) -> ReportRecord:
            # New metadata supersedes the requests made of the old (their data is refused from now
            # on, rule 304); what the VEN asked of the VTN stays.
            superseded.clear()
            previous.clear()
            if old is not None:
                previous.append(old)
                superseded.extend(f for f in (request_steps.failed(r, SUPERSEDED, now) for r in old.requests)
                                  if f is not None)
            return ReportRecord(reports=offered, requests=requests, metadata_due=True,
                                source_requests=old.source_requests if old else [])

        described = [d for items in offered.values() for d in items]
        if described:
            # The fact first: were it refused (469), the requests the VEN holds would stay valid.
            await self.publish(self.subjects.report_registered(ven.ven_id),
                               ReportsRegistered(ven_id=ven.ven_id, reports=described), "report registration")
        record = await self.store.reports.mutate(ven.ven_id, replace)
        # Postgres hears of the old requests' end, and of the new ones when they went out in this answer
        # (on a poll, take_unsent_requests tells it).
        if superseded:
            await self.report_request_facts(ven.ven_id, superseded, previous[0])
        if inline:
            await self.report_request_facts(ven.ven_id, requests, record)
        return render.registered_report(m.EiResponse(200, "OK", msg.request_id),
                                        [report_logic.as_codec_request(r) for r in requests] if inline else (),
                                        ven_id=ven.ven_id)

    async def update_report(self, msg: m.UpdateReport) -> bytes:
        """Readings to JetStream, answered oadrUpdatedReport only once the stream has every fact.
        The VEN and its report metadata come from the mirrors (no KV read); the facts' bytes are
        made without a model per reading, and their publishes are pipelined (FactPublisher)."""
        ven = self.store.ven(msg.ven_id) if msg.ven_id else None
        if ven is None:
            ven = await self.known_ven(msg.ven_id)
        ven_id = ven.ven_id
        known = self.store.report_record(ven_id)
        now = utcnow()
        facts: list[tuple[str, bytes]] = []
        statuses = []
        finals: set[str] = set()
        readings = 0
        for report in msg.reports:
            if not known.accepts_data(report.report_request_id):
                # Issued through another replica a moment ago? Only then is KV read.
                known = (await self.store.reports.fetch(ven_id))[0] or known
                if not known.accepts_data(report.report_request_id):
                    raise OpenAdrError(INVALID_ID, f"unknown reportRequestID {report.report_request_id[:60]!r}: "
                                                   "not a report the VTN requested of this VEN (rule 304)")
            if known.requests:
                self._check_not_cancelled(known, report.report_request_id, finals)
            found: list = []
            try:
                items = report_logic.points(report, known, now, found)
            except report_logic.UnregisteredDataPoint as e:
                raise OpenAdrError(INVALID_ID, str(e)) from e
            except report_logic.UnsupportedPayload as e:
                raise OpenAdrError(REPORT_NOT_SUPPORTED, str(e)) from e
            facts += report_logic.report_data_facts(ven_id, report, items, READINGS_PER_FACT, now)
            readings += len(items)
            if found:
                statuses.append(status_logic.report_status(ven_id, report, found, now))
        subject = self.subjects.report_data(ven_id)
        if len(facts) == 1:
            await self.publish_bytes(subject, facts[0][1], facts[0][0], "report data")
        elif facts:
            await asyncio.gather(*(self.publish_bytes(subject, payload, msg_id, "report data")
                                   for msg_id, payload in facts))
        for fact in statuses:
            await self.publish(self.subjects.report_status(ven_id), fact, "report status")
        self.metrics.reports.inc(len(msg.reports))
        self.metrics.readings.inc(readings)
        if finals:
            changed = await self.store.change_requests(
                ven_id, lambda r: request_steps.final_update(r, now) if r.report_request_id in finals else None)
            await self.report_request_facts(ven_id, changed)
        cancel = None
        if known.requests and known.cancels_unsent():
            taken = await self._take_cancels(ven_id, polled=False)
            cancel = taken[:2] if taken is not None else None
        return render.updated_report(m.EiResponse(200, "OK", msg.request_id), ven_id, cancel=cancel)

    @staticmethod
    def _check_not_cancelled(known: ReportRecord, report_request_id: str | None, finals: set[str]) -> None:
        """Data for a request the VEN has cancelled is refused (452), but for the one final update
        a cancel with reportToFollow=true allows (R1_3045), which is noted in ``finals``."""
        verdict = request_steps.update_verdict(known, report_request_id)
        if verdict == "final" and report_request_id not in finals:
            finals.add(report_request_id)
        elif verdict != "accept" and report_request_id not in finals:
            raise OpenAdrError(INVALID_ID, f"report request {report_request_id[:60]!r} was cancelled")

    async def created_report(self, msg: m.CreatedReport) -> bytes:
        ven = await self.known_ven(msg.ven_id)
        answer = msg.response
        if not answer.ok and answer.request_id:
            # The VEN refused the oadrCreateReport (its requestID is echoed): its requests failed.
            reason = f"the VEN answered {answer.response_code} {answer.response_description or ''}".strip()
            now = utcnow()
            changed = await self.store.change_requests(
                ven.ven_id, lambda r: request_steps.failed(r, reason, now)
                if r.create_request_id == answer.request_id and r.acknowledged_at is None else None)
            await self.report_request_facts(ven.ven_id, changed)
        elif msg.pending_reports:
            changed = await self.store.acknowledge_requests(ven.ven_id, set(msg.pending_reports))
            await self.report_request_facts(ven.ven_id, changed)
        return render.response(m.EiResponse(200, "OK", msg.response.request_id), ven.ven_id)

    async def canceled_report(self, msg: m.CanceledReport) -> bytes:
        """The VEN's answer to our oadrCancelReport (by its requestID; a VEN that echoes none
        answers every cancellation it was sent)."""
        ven = await self.known_ven(msg.ven_id)
        record = self.store.report_record(ven.ven_id)
        if not any(r.cancel_sent_at is not None and not r.finished for r in record.requests):
            # The cancel may have gone out through another replica a moment ago.
            record = (await self.store.reports.fetch(ven.ven_id))[0] or record
        awaiting = [r for r in record.requests if r.cancel_sent_at is not None and not r.finished]
        answer = msg.response
        named = {r.report_request_id for r in awaiting if answer.request_id and r.cancel_request_id == answer.request_id}
        ids = named or {r.report_request_id for r in awaiting}
        if ids:
            now = utcnow()
            reason = f"the VEN answered the cancellation {answer.response_code} {answer.response_description or ''}"

            def step(r: ReportRequestState) -> ReportRequestState | None:
                if r.report_request_id not in ids:
                    return None
                return request_steps.cancelled(r, now) if answer.ok else request_steps.failed(r, reason.strip(), now)

            await self.report_request_facts(ven.ven_id, await self.store.change_requests(ven.ven_id, step))
        return render.response(m.EiResponse(200, "OK", answer.request_id), ven.ven_id)

    async def _take_cancels(self, ven_id: str, polled: bool) -> tuple[list[str], bool, str] | None:
        """Mark the next oadrCancelReport's requests as sent in it (on a poll, or piggybacked):
        (reportRequestIDs, reportToFollow, its requestID), or None when another request of the
        VEN's took them."""
        plan = request_steps.cancels_to_send(self.store.report_record(ven_id), polled)
        if plan is None:
            return None
        wanted, follow = set(plan[0]), plan[1]
        request_id, now = render.new_request_id(), utcnow()
        changed = await self.store.change_requests(
            ven_id, lambda r: request_steps.cancel_sent(r, request_id, now, polled)
            if r.report_request_id in wanted and (r.cancel_due if polled else r.cancel_unsent) else None)
        if not changed:
            return None
        await self.report_request_facts(ven_id, changed)
        return [r.report_request_id for r in changed], follow, request_id

    async def report_request_facts(self, ven_id: str, changed: list[ReportRequestState],
                                   record: ReportRecord | None = None) -> None:
        """One ReportRequestChanged per changed request, after its step is stored. A fact that
        cannot be published is logged, not failed: the step stands, and the next fact about the
        request carries its whole state (and every time) again."""
        if not changed:
            return
        record = record or self.store.report_record(ven_id)
        subject = self.subjects.report_request(ven_id)
        for r in changed:
            try:
                await self.publish(subject, request_steps.fact(ven_id, r, record), "report request")
            except Unavailable:
                pass  # publish_bytes logged it

    # ------------------------------------------------------------------ the VTN as report source

    def _source_request_ids(self, requests: list[m.ReportRequest]) -> list[str]:
        try:
            return report_logic.source_request_ids(requests)
        except report_logic.UnknownReport as e:
            raise OpenAdrError(INVALID_ID, str(e)) from e

    async def registered_report(self, msg: m.RegisteredReport) -> bytes:
        """The VEN's answer to the VTN's oadrRegisterReport; requests for the VTN's METADATA may
        ride in it (R1_3060), answered like an oadrCreateReport's, minus the oadrCreatedReport."""
        ven = await self.known_ven(msg.ven_id)
        if not msg.response.ok:
            log.info("VEN %s refused the VTN's report registration: %s", ven.ven_id, msg.response.response_code)
        if msg.report_requests:
            await self.store.accept_source_requests(ven.ven_id, self._source_request_ids(msg.report_requests))
        return render.response(m.EiResponse(200, "OK", msg.response.request_id), ven.ven_id)

    async def create_report(self, msg: m.CreateReport) -> bytes:
        """A VEN asks for the VTN's METADATA (rule 306, R1_3070-3100): acknowledged with what is
        pending, and the VTN's oadrRegisterReport follows on the next poll. Anything else: 452."""
        ven = await self.known_ven(msg.ven_id)
        record = await self.store.accept_source_requests(ven.ven_id, self._source_request_ids(msg.report_requests))
        return render.created_report(m.EiResponse(200, "OK", msg.request_id), record.pending_source(), ven.ven_id)

    async def cancel_report(self, msg: m.CancelReport) -> bytes:
        """A VEN cancels its request for the VTN's METADATA; an id it never asked with is 452."""
        ven = await self.known_ven(msg.ven_id)
        ids = set(msg.report_request_ids)
        record = self.store.report_record(ven.ven_id)
        if not all(record.knows_source(i) for i in ids):
            record = (await self.store.reports.fetch(ven.ven_id))[0] or record
            unknown = sorted(i for i in ids if not record.knows_source(i))
            if unknown:
                raise OpenAdrError(INVALID_ID, f"unknown reportRequestID {unknown[0][:60]!r}: "
                                               "not a request of this VEN for the VTN's reports")
        record = await self.store.cancel_source_requests(ven.ven_id, ids)
        return render.canceled_report(m.EiResponse(200, "OK", msg.request_id), record.pending_source(), ven.ven_id)

    # ------------------------------------------------------------------ opt

    async def create_opt(self, msg: m.CreateOpt) -> bytes:
        """An opt schedule (P1_2010/2015/2030) or an opt qualifying an event (P1_2020, E1_1060);
        the same optID again replaces it (P1_2040)."""
        ven = await self.known_ven(msg.ven_id)
        if not msg.opt_id or len(msg.opt_id) > MAX_OPT_ID:
            raise OpenAdrError(INVALID_DATA, f"optID must be 1-{MAX_OPT_ID} characters")
        event_id = modification = None
        if msg.event_id:
            event = self.targeted_event(msg.event_id, ven)
            event_id, modification = event.event_id, event.modification_number
        elif not msg.availability:
            raise OpenAdrError(INVALID_DATA, "an opt names an event (qualifiedEventID) or gives its schedule "
                                             "(vavailability)")
        schedule = OptSchedule(
            id=derived_id("opt-schedule", ven.ven_id, msg.opt_id, msg.request_id, msg.created_at.isoformat()),
            ven_id=ven.ven_id, opt_id=msg.opt_id, opt_type=msg.opt_type, opt_reason=msg.opt_reason or None,
            market_context=msg.market_context, event_id=event_id, modification_number=modification,
            resource_ids=list(msg.targets.resource_ids) if msg.targets else [],
            device_classes=list(msg.device_class.end_device_assets) if msg.device_class else [],
            windows=[OptWindow(start=a.dtstart, duration_seconds=a.duration.total_seconds())
                     for a in msg.availability or ()],
            request_id=msg.request_id or None,
        )
        await self.publish(self.subjects.opt_schedule(ven.ven_id), schedule, "opt schedule")
        if event_id is not None:
            await self.publish(self.subjects.opt(ven.ven_id), OptResponse(
                id=derived_id("opt", ven.ven_id, event_id, modification, "oadrCreateOpt", schedule.id),
                ven_id=ven.ven_id, event_id=event_id, modification_number=modification, opt_type=msg.opt_type,
                request_id=msg.request_id or None, source="oadrCreateOpt"), "opt response")

        def replace(book: OptBook | None) -> OptBook:
            return OptBook(opts={**(book.opts if book else {}), msg.opt_id: schedule})

        await self.store.opts.mutate(ven.ven_id, replace)
        return render.created_opt(m.EiResponse(200, "OK", msg.request_id), msg.opt_id)

    async def cancel_opt(self, msg: m.CancelOpt) -> bytes:
        """Withdraw an opt schedule (P1_2050); an unknown optID is 452."""
        ven = await self.known_ven(msg.ven_id)
        current = self.store.opt_book(ven.ven_id).opts.get(msg.opt_id)
        if current is None:
            book, _ = await self.store.opts.fetch(ven.ven_id)  # written through another replica a moment ago?
            current = book.opts.get(msg.opt_id) if book else None
        if current is None:
            raise OpenAdrError(INVALID_ID, "unknown optID")
        withdrawn = current.model_copy(update={
            "id": derived_id("opt-cancel", ven.ven_id, msg.opt_id, current.id), "cancelled": True,
            "request_id": msg.request_id or None, "occurred_at": utcnow()})
        await self.publish(self.subjects.opt_schedule(ven.ven_id), withdrawn, "opt cancellation")

        def remove(book: OptBook | None) -> OptBook | None:
            if book is None or msg.opt_id not in book.opts:
                return None
            return OptBook(opts={k: v for k, v in book.opts.items() if k != msg.opt_id})

        await self.store.opts.mutate(ven.ven_id, remove)
        return render.canceled_opt(m.EiResponse(200, "OK", msg.request_id), msg.opt_id)
