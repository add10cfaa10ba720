"""The VTN's OpenADR handlers, installed into openleadr's services.

Every handler reads and writes VEN state in KV and publishes what it learned to
JetStream before answering; a VEN is never told "OK" for something we did not store.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import nats.js.errors
from nats.js import JetStreamContext
from openleadr import OpenADRServer, errors

from adrstack.shared import jetstream
from adrstack.shared.messages import (
    Message,
    OptResponse,
    ReportData,
    ReportsRegistered,
    VenDeregistered,
    VenRecord,
    VenRegistered,
    VenSeen,
    derived_id,
    utcnow,
)
from adrstack.shared.subjects import Subjects

from . import reports as report_logic
from .delivery import plan_delivery, seen_due
from .event_cache import EventCache
from .event_view import delivery_order, event_dict
from .openadr_errors import Unavailable, error_response, openadr_errors, token
from .registry import CAS_ATTEMPTS, Registry, StoreUnavailable, new_registration_id, new_ven_id
from .settings import GatewaySettings

log = logging.getLogger(__name__)

MAX_VEN_NAME = 256


class VtnHandlers:
    def __init__(self, settings: GatewaySettings, js: JetStreamContext, registry: Registry, events: EventCache):
        self.settings = settings
        self.js = js
        self.registry = registry
        self.events = events
        self.subjects: Subjects = settings.subjects

    # ------------------------------------------------------------------ plumbing

    def install(self, server: OpenADRServer) -> None:
        # Documented hooks where openleadr's own flow is what we want...
        server.add_handler("on_create_party_registration", self.on_create_party_registration)
        server.add_handler("on_cancel_party_registration", self.on_cancel_party_registration)
        # ...with an own on_poll openleadr switches to 'external' polling: it keeps no event
        # queues and delivers exactly what on_poll returns (events and report requests alike).
        server.add_handler("on_poll", self.on_poll)
        # These replace openleadr's message handlers outright: in external mode its
        # oadrRequestEvent re-derives statuses with its own rules and oadrCreatedEvent drops
        # the modificationNumber; its report handlers keep callbacks in memory only.
        own = {
            "event_service": {"oadrRequestEvent": self.request_event, "oadrCreatedEvent": self.created_event},
            "report_service": {
                "oadrRegisterReport": self.register_report,
                "oadrUpdateReport": self.update_report,
                "oadrCreatedReport": self.created_report,
                "oadrRegisteredReport": self.registered_report,
            },
        }
        for service_name, handlers in own.items():
            server.services[service_name].handlers.update(handlers)
        for service in server.services.values():
            service.error_response = error_response

    async def publish(self, subject: str, message: Message, what: str) -> None:
        try:
            await jetstream.publish(self.js, subject, message)
        except Exception as e:
            log.warning("could not publish %s to %s: %s: %s", what, subject, type(e).__name__, e)
            raise Unavailable(f"could not store the {what}") from e

    async def known_ven(self, payload: dict) -> VenRecord:
        ven_id = token(payload, "ven_id", "venID")
        record = await self.registry.get_ven(ven_id)
        if record is None:
            raise errors.InvalidIdError(f"unknown venID {ven_id!r}: register first")
        return record

    # ------------------------------------------------------------------ registration

    @openadr_errors
    async def on_create_party_registration(self, payload: dict):
        name = payload.get("ven_name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_VEN_NAME:
            raise errors.InvalidDataError(f"venName must be 1-{MAX_VEN_NAME} characters")
        if payload.get("ven_id") is not None:
            token(payload, "ven_id", "venID")  # a claimed venID must at least be well-formed
        ven_id = await self.registry.claim_name(name, new_ven_id())
        now = utcnow()
        previous: list[VenRecord | None] = [None]

        def build(current: VenRecord | None) -> VenRecord:
            previous[0] = current
            transport_address = payload.get("transport_address")
            return VenRecord(
                ven_id=ven_id,
                ven_name=name,
                # Re-registering keeps the registration: a VEN that re-registers after a
                # network hiccup must not invalidate what it already holds.
                registration_id=current.registration_id if current else new_registration_id(),
                registered_at=current.registered_at if current else now,
                profile_name=payload.get("profile_name") or "2.0b",
                transport_name=payload.get("transport_name") or "simpleHttp",
                transport_address=None if transport_address in (None, "", "None") else str(transport_address),
                http_pull_model=bool(payload.get("http_pull_model", True)),
                report_only=bool(payload.get("report_only", False)),
                fingerprint=payload.get("fingerprint") or (current.fingerprint if current else None),
            )

        record = await self.registry.upsert_ven(ven_id, build)
        await self.publish(self.subjects.ven_registered(ven_id), VenRegistered(
            ven_id=record.ven_id,
            ven_name=record.ven_name,
            registration_id=record.registration_id,
            profile_name=record.profile_name,
            transport_name=record.transport_name,
            transport_address=record.transport_address,
            http_pull_model=record.http_pull_model,
            report_only=record.report_only,
            reregistration=previous[0] is not None,
        ), "registration")
        log.info("registered VEN %s (%s)%s", ven_id, name, " again" if previous[0] else "")
        return record.ven_id, record.registration_id

    @openadr_errors
    async def on_cancel_party_registration(self, payload: dict):
        record = await self.known_ven(payload)
        registration_id = payload.get("registration_id")
        if registration_id and registration_id != record.registration_id:
            raise errors.InvalidIdError(f"registrationID {str(registration_id)[:80]!r} is not this VEN's")
        await self.publish(self.subjects.ven_deregistered(record.ven_id), VenDeregistered(
            id=derived_id("deregistered", record.ven_id, record.registration_id),
            ven_id=record.ven_id,
            registration_id=record.registration_id,
            reason="oadrCancelPartyRegistration",
        ), "deregistration")
        await self.registry.forget_ven(record.ven_id)
        log.info("deregistered VEN %s", record.ven_id)
        return "oadrCanceledPartyRegistration", {"registration_id": record.registration_id, "ven_id": record.ven_id}

    # ------------------------------------------------------------------ events

    async def _plan_and_record(self, ven_id: str, *, heartbeat: bool):
        """Plan what the VEN should see and record it (compare-and-set, replicas may race)."""
        interval = timedelta(seconds=self.settings.seen_interval)
        for _ in range(CAS_ATTEMPTS):
            now = utcnow()
            record, revision = await self.registry.get_delivery(ven_id)
            plan = plan_delivery(self.events.for_ven(ven_id), record, now)
            due = heartbeat and seen_due(record, now, interval)
            if not plan.changed and not due:
                return plan, False
            new = plan.record.model_copy(update={"seen_at": now}) if due else plan.record
            try:
                await self.registry.put_delivery(ven_id, new, revision)
                return plan, due
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
        raise StoreUnavailable(f"too much contention on the delivery record of {ven_id}")

    def _distribution(self, ven_id: str, plan) -> dict:
        items = delivery_order(plan.items)
        return {"events": [event_dict(event, status, ven_id) for event, status in items]}

    @openadr_errors
    async def on_poll(self, ven_id):
        if not isinstance(ven_id, str) or not ven_id:
            raise errors.InvalidIdError("oadrPoll without a venID")
        token({"ven_id": ven_id}, "ven_id", "venID")
        if await self.registry.get_ven(ven_id) is None:
            # An unknown (e.g. deregistered) VEN is asked to register again rather than refused.
            return "oadrRequestReregistration", {"ven_id": ven_id}
        plan, seen = await self._plan_and_record(ven_id, heartbeat=True)
        if seen:
            try:
                await jetstream.publish(self.js, self.subjects.seen(ven_id), VenSeen(ven_id=ven_id))
            except Exception as e:  # a heartbeat is not worth failing the poll for
                log.warning("could not publish VenSeen for %s: %s", ven_id, e)
        if plan.changed and plan.items:
            return "oadrDistributeEvent", self._distribution(ven_id, plan)
        requests = await self.registry.take_unsent_requests(ven_id)
        if requests:
            return "oadrCreateReport", {"report_requests": [r.as_openadr() for r in requests]}
        return None

    @openadr_errors
    async def request_event(self, payload: dict):
        record = await self.known_ven(payload)
        plan, _ = await self._plan_and_record(record.ven_id, heartbeat=False)
        if not plan.items:
            return "oadrResponse", {}
        return "oadrDistributeEvent", self._distribution(record.ven_id, plan)

    @openadr_errors
    async def created_event(self, payload: dict):
        record = await self.known_ven(payload)
        messages = []
        for response in report_logic.as_list(payload.get("event_responses")):
            event_id = token(response, "event_id", "eventID")
            event = self.events.get(event_id)
            if event is None:
                raise errors.InvalidIdError(f"unknown eventID {event_id!r}")
            if not event.targets_ven(record.ven_id):
                raise errors.TargetMismatchError(f"event {event_id!r} does not target venID {record.ven_id!r}")
            opt_type = response.get("opt_type")
            if opt_type not in ("optIn", "optOut"):
                raise errors.InvalidDataError(f"optType must be optIn or optOut, not {str(opt_type)[:40]!r}")
            mod = response.get("modification_number")
            mod = int(mod) if isinstance(mod, (int, str)) and str(mod).lstrip("-").isdigit() else None
            request_id = response.get("request_id")
            messages.append(OptResponse(
                id=derived_id("opt", record.ven_id, event_id, mod, opt_type, request_id),
                ven_id=record.ven_id,
                event_id=event_id,
                modification_number=mod,
                opt_type=opt_type,
                response_code=response.get("response_code") if isinstance(response.get("response_code"), int) else None,
                request_id=str(request_id) if request_id is not None else None,
            ))
        for message in messages:
            await self.publish(self.subjects.opt(record.ven_id), message, "opt response")
        return "oadrResponse", {}

    # ------------------------------------------------------------------ reports

    @openadr_errors
    async def register_report(self, payload: dict):
        record = await self.known_ven(payload)
        try:
            offered = report_logic.descriptions(payload)
        except (ValueError, TypeError, AttributeError) as e:
            raise errors.InvalidDataError(f"unreadable report metadata: {e}") from e
        wanted = timedelta(seconds=self.settings.report_interval)
        requests = report_logic.report_requests(offered, wanted)
        await self.registry.set_reports(record.ven_id, offered, requests)
        described = [d for items in offered.values() for d in items]
        if described:
            await self.publish(self.subjects.report_registered(record.ven_id),
                               ReportsRegistered(ven_id=record.ven_id, reports=described), "report registration")
        # The requests themselves go out as oadrCreateReport on the VEN's next poll.
        return "oadrRegisteredReport", {"report_requests": []}

    @openadr_errors
    async def update_report(self, payload: dict):
        record = await self.known_ven(payload)
        known = await self.registry.get_reports(record.ven_id)
        now = utcnow()
        batches = []
        for report in report_logic.as_list(payload.get("reports")):
            try:
                readings = report_logic.readings(report, known, now)
            except report_logic.UnregisteredDataPoint as e:
                raise errors.InvalidIdError(str(e)) from e
            except (ValueError, TypeError, AttributeError) as e:
                raise errors.InvalidDataError(f"unreadable report: {e}") from e
            if not readings:
                continue
            spec = str(report.get("report_specifier_id"))
            batches.append(ReportData(
                id=report_logic.report_data_id(record.ven_id, spec, readings),
                ven_id=record.ven_id,
                report_request_id=report.get("report_request_id") and str(report.get("report_request_id")),
                report_specifier_id=spec,
                report_name=report.get("report_name"),
                readings=readings,
            ))
        for batch in batches:
            await self.publish(self.subjects.report_data(record.ven_id), batch, "report data")
        return "oadrUpdatedReport", {}

    @openadr_errors
    async def created_report(self, payload: dict):
        record = await self.known_ven(payload)
        ids = {str(p.get("report_request_id")) for p in report_logic.as_list(payload.get("pending_reports"))
               if isinstance(p, dict)}
        if ids:
            await self.registry.acknowledge_requests(record.ven_id, ids)
        return "oadrResponse", {}

    @openadr_errors
    async def registered_report(self, payload: dict):
        await self.known_ven(payload)  # we never offer reports to VENs; nothing to record
        return "oadrResponse", {}

