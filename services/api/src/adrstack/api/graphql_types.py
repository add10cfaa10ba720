"""GraphQL object and input types (the contract names; strawberry camelCases them)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Any

import strawberry
from pydantic import ValidationError

from adrstack.shared.identity import ProvisionedVen as ProvisionedVenRecord
from adrstack.shared.messages import DrEvent, EventBaseline, EventTransition, GroupRecord, ReportData, ReportRequestInfo
from adrstack.shared.messages import OptResponse as OptResponseFact
from adrstack.shared.messages import VenDeregistered, VenRegistered
from adrstack.shared.signals import SignalUnits
from adrstack.shared.tables import ApiToken as ApiTokenRow
from adrstack.shared.tables import (
    DrEventRow,
    EventOptStateRow,
    EventResponseRow,
    OptScheduleRow,
    PushFailureRow,
    ReportRequestRow,
    Ven as VenRow,
    VenStatusRow,
)

from .durations import format_duration, normalize_duration


def utc(value: datetime | None) -> datetime | None:
    """Every time leaves the API as ISO-8601 in UTC with its zone."""
    if value is None:
        return None
    if value.tzinfo is None:  # stored naive would be a bug upstream; read it as UTC
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


@strawberry.type
class Ven:
    ven_id: str
    ven_name: str
    registration_id: str
    registered_at: datetime
    last_seen_at: datetime | None
    deregistered_at: datetime | None
    status: "VenStatus | None" = strawberry.field(
        default=None, description="its newest TELEMETRY_STATUS point, of whichever resource (null: none reported)")
    resource_statuses: list["VenStatus"] = strawberry.field(
        default_factory=list, description="the newest status of each resource its status reports name (and of "
                                          "the VEN as a whole, resourceId null), by resourceId")

    @classmethod
    def from_row(cls, row: VenRow, statuses: list[VenStatusRow] | None = None) -> "Ven":
        latest = [VenStatus.from_row(s) for s in statuses or ()]
        return cls(
            ven_id=row.ven_id,
            ven_name=row.ven_name,
            registration_id=row.registration_id,
            registered_at=utc(row.registered_at),
            last_seen_at=utc(row.last_seen_at),
            deregistered_at=utc(row.deregistered_at),
            status=max(latest, key=lambda s: s.at, default=None),
            resource_statuses=sorted(latest, key=lambda s: s.resource_id or ""),
        )


@strawberry.type(description="One oadrLoadControlState quantity (oadrCapacity, oadrLevelOffset, ...)")
class LoadControlValue:
    current: float | None
    normal: float | None
    min: float | None
    max: float | None


@strawberry.type(description="A resource's oadrLoadControlState: the quantities its VEN reported")
class LoadControl:
    capacity: LoadControlValue | None = None
    level_offset: LoadControlValue | None = None
    percent_offset: LoadControlValue | None = None
    set_point: LoadControlValue | None = None

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> "LoadControl":
        return cls(**{kind: LoadControlValue(**{k: values.get(k) for k in ("current", "normal", "min", "max")})
                      for kind, values in (stored or {}).items()
                      if kind in ("capacity", "level_offset", "percent_offset", "set_point")})


@strawberry.type(description="A VEN's resource status at one time (TELEMETRY_STATUS, oadrPayloadResourceStatus)")
class VenStatus:
    ven_id: str
    resource_id: str | None = strawberry.field(description="the resource its report names; null: the whole VEN")
    r_id: str
    report_specifier_id: str
    at: datetime = strawberry.field(description="the time of the status (its interval's dtstart)")
    online: bool
    manual_override: bool
    load_control: LoadControl
    received_at: datetime

    @classmethod
    def from_row(cls, row) -> "VenStatus":
        return cls(ven_id=row.ven_id, resource_id=row.resource_id, r_id=row.r_id,
                   report_specifier_id=row.report_specifier_id, at=utc(row.at), online=row.online,
                   manual_override=row.manual_override, load_control=LoadControl.of(row.load_control),
                   received_at=utc(row.received_at))


@strawberry.type
class Interval:
    duration: str = strawberry.field(description="ISO-8601 duration, e.g. PT1H")
    payload: float


@strawberry.type(description="A signal's units (its 2.0b itemBase)")
class Units:
    kind: str = strawberry.field(description="currency, currencyPerKWh, currencyPerKW, currencyPerThm, powerReal "
                                             "or energyReal")
    unit: str = strawberry.field(description="an ISO 4217 code for the currency kinds; W for powerReal, Wh for "
                                             "energyReal")
    scale: str = strawberry.field(description="SI scale code: k, M, ... or none")
    hertz: float | None = strawberry.field(default=None, description="powerReal only")
    voltage: float | None = strawberry.field(default=None, description="powerReal only")
    ac: bool | None = strawberry.field(default=None, description="powerReal only")

    @classmethod
    def of(cls, units: SignalUnits | dict | None) -> "Units | None":
        if units is None:
            return None
        try:
            u = units if isinstance(units, SignalUnits) else SignalUnits.model_validate(units)
        except ValidationError:  # a snapshot this version cannot read: show no units rather than fail
            return None
        if u.kind != "powerReal":
            return cls(kind=u.kind, unit=u.unit, scale=u.scale)
        hertz, voltage, ac = u.power_attributes
        return cls(kind=u.kind, unit=u.unit, scale=u.scale, hertz=hertz, voltage=voltage, ac=ac)


@strawberry.type(description="An event's baseline (eiEventBaseline): the load expected without it")
class Baseline:
    baseline_id: str
    baseline_name: str
    start_at: datetime
    intervals: list[Interval]
    resource_ids: list[str]
    units: Units | None = None

    @classmethod
    def of(cls, baseline: EventBaseline | dict | None) -> "Baseline | None":
        if baseline is None:
            return None
        try:
            b = baseline if isinstance(baseline, EventBaseline) else EventBaseline.model_validate(baseline)
        except ValidationError:
            return None
        return cls(baseline_id=b.baseline_id, baseline_name=b.baseline_name, start_at=utc(b.start_at),
                   intervals=[Interval(duration=format_duration(i.duration), payload=i.payload) for i in b.intervals],
                   resource_ids=list(b.resource_ids), units=Units.of(b.units))


@strawberry.type(description="One signal of an event, over the event's whole active period")
class Signal:
    signal_name: str
    signal_type: str
    signal_id: str
    intervals: list[Interval]
    units: Units | None = None


def _signals_of(snapshot: dict, own: "Signal") -> list[Signal]:
    """The event's own signal, then the further ones of a stored snapshot (pydantic's JSON)."""
    return [own] + [
        Signal(signal_name=x["signal_name"], signal_type=x.get("signal_type", "level"),
               signal_id=x.get("signal_id") or "", intervals=[
                   Interval(duration=normalize_duration(i.get("duration")), payload=float(i.get("payload")))
                   for i in x.get("intervals") or []], units=Units.of(x.get("units")))
        for x in snapshot.get("extra_signals") or []]


@strawberry.type
class Targets:
    ven_ids: list[str]
    group_ids: list[str]
    resource_ids: list[str]
    party_ids: list[str]
    market_contexts: list[str]

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Targets":
        data = data or {}
        return cls(
            ven_ids=list(data.get("ven_ids") or []),
            group_ids=list(data.get("group_ids") or []),
            resource_ids=list(data.get("resource_ids") or []),
            party_ids=list(data.get("party_ids") or []),
            market_contexts=list(data.get("market_contexts") or []),
        )


@strawberry.type
class EventResponse:
    ven_id: str
    opt_type: str = strawberry.field(description="optIn or optOut")
    responded_at: datetime
    modification_number: int | None
    source: str

    @classmethod
    def from_row(cls, row: EventResponseRow | EventOptStateRow) -> "EventResponse":
        return cls(
            ven_id=row.ven_id,
            opt_type=row.opt_type,
            responded_at=utc(row.responded_at),
            modification_number=row.modification_number,
            source=row.source,
        )


_DURATION_FIELDS = ("notification", "ramp_up", "recovery", "randomization")
IDEMPOTENCY = ("a key of yours (1-200 characters): a retry with the same key gets the first attempt's result "
               "and changes nothing (for 24 hours); the same key with another request is a CONFLICT")


def _snapshot_duration(value: Any) -> str | None:
    """A duration of a stored event's JSON snapshot (pydantic writes ISO-8601), normalized."""
    return None if value is None else normalize_duration(value)


@strawberry.type(description="How the VENs answered an event: each VEN's latest answer counts, whichever "
                             "modification it answered")
class ResponseSummary:
    opted_in: int
    opted_out: int
    no_response: int | None = strawberry.field(
        description="targeted VENs without an answer; null when the event also targets groups, resources "
                    "or parties (their VENs are not known here)")

    @classmethod
    def of(cls, current: list[EventResponse], targets: "Targets") -> "ResponseSummary":
        answered = {r.ven_id for r in current}
        by_ven_only = not (targets.group_ids or targets.resource_ids or targets.party_ids or targets.market_contexts)
        return cls(
            opted_in=sum(r.opt_type == "optIn" for r in current),
            opted_out=sum(r.opt_type == "optOut" for r in current),
            no_response=len(set(targets.ven_ids) - answered) if by_ven_only else None,
        )


@strawberry.type
class Event:
    event_id: str
    status: str = strawberry.field(description="far, near, active, completed or cancelled")
    modification_number: int
    signal_name: str
    signal_type: str
    start_at: datetime
    end_at: datetime | None = strawberry.field(description="null for an open-ended event (duration PT0S), "
                                               "active from startAt until cancelled")
    intervals: list[Interval]
    targets: Targets
    priority: int
    market_context: str
    response_required: str
    vtn_comment: str | None
    created_at: datetime
    modified_at: datetime
    test_event: bool = False
    units: Units | None = strawberry.field(default=None, description="the event's own signal's units")
    baseline: Baseline | None = strawberry.field(default=None, description="its eiEventBaseline, if any")
    signals: list[Signal] = strawberry.field(default_factory=list, description="every signal, the event's own "
                                             "first (signalName, signalType and intervals above)")
    notification: str | None = strawberry.field(default=None, description="ISO-8601 duration; null: none")
    ramp_up: str | None = strawberry.field(default=None, description="ISO-8601 duration; null: none")
    recovery: str | None = strawberry.field(default=None, description="ISO-8601 duration; null: none")
    randomization: str | None = strawberry.field(default=None, description="ISO-8601 duration (the event's "
                                                                        "startafter); null: none")
    # Prefilled when the list query loads responses for many events in one go.
    preloaded_responses: strawberry.Private[list[EventResponse] | None] = None
    preloaded_current: strawberry.Private[list[EventResponse] | None] = None

    @strawberry.field(description="History of the VENs' opt answers, oldest first: one per change of a VEN's "
                                  "answer or answer to a new modification (re-sent copies are not kept)")
    async def responses(self, info: strawberry.Info) -> list[EventResponse]:
        if self.preloaded_responses is not None:
            return self.preloaded_responses
        found = await info.context["state"].store.responses([self.event_id])
        return [EventResponse.from_row(r) for r in found.get(self.event_id, [])]

    @strawberry.field(description="Each VEN's current answer (its latest, to whichever modification; "
                                  "respondedAt is when it was first given), by VEN id")
    async def current_responses(self, info: strawberry.Info) -> list[EventResponse]:
        if self.preloaded_current is not None:
            return self.preloaded_current
        found = await info.context["state"].store.opt_states([self.event_id])
        return [EventResponse.from_row(r) for r in found.get(self.event_id, [])]

    @strawberry.field(description="Counts of the current answers and of the targeted VENs that gave none")
    async def response_summary(self, info: strawberry.Info) -> ResponseSummary:
        return ResponseSummary.of(await self.current_responses(info), self.targets)

    @classmethod
    def from_row(cls, row: DrEventRow, responses: list[EventResponseRow] | None = None,
                 current: list[EventOptStateRow] | None = None) -> "Event":
        snapshot = row.snapshot or {}
        intervals = [Interval(duration=normalize_duration(i.get("duration")), payload=float(i.get("payload")))
                     for i in row.intervals or []]
        units = Units.of(snapshot.get("units"))
        own = Signal(signal_name=row.signal_name, signal_type=row.signal_type,
                     signal_id=snapshot.get("signal_id") or "signal-1", intervals=intervals, units=units)
        return cls(
            event_id=row.event_id,
            status=row.status,
            modification_number=row.modification_number,
            signal_name=row.signal_name,
            signal_type=row.signal_type,
            start_at=utc(row.start_at),
            end_at=utc(row.end_at),
            intervals=intervals,
            signals=_signals_of(snapshot, own),
            units=units,
            baseline=Baseline.of(snapshot.get("baseline")),
            targets=Targets.from_dict(row.targets),
            priority=row.priority,
            market_context=row.market_context,
            response_required=row.response_required,
            vtn_comment=snapshot.get("vtn_comment"),
            created_at=utc(row.created_at),
            modified_at=utc(row.modified_at),
            test_event=bool(snapshot.get("test_event", False)),
            **{field: _snapshot_duration(snapshot.get(field)) for field in _DURATION_FIELDS},
            preloaded_responses=None
            if responses is None
            else [EventResponse.from_row(r) for r in responses],
            preloaded_current=None if current is None else [EventResponse.from_row(r) for r in current],
        )

    @classmethod
    def from_model(cls, event: DrEvent) -> "Event":
        return cls(
            event_id=event.event_id,
            status=event.status.value,
            modification_number=event.modification_number,
            signal_name=event.signal_name,
            signal_type=event.signal_type,
            start_at=utc(event.start_at),
            end_at=utc(event.end_at),
            intervals=[Interval(duration=format_duration(i.duration), payload=i.payload) for i in event.intervals],
            signals=[Signal(signal_name=x.signal_name, signal_type=x.signal_type, signal_id=x.signal_id or "",
                            intervals=[Interval(duration=format_duration(i.duration), payload=i.payload)
                                       for i in x.intervals], units=Units.of(x.units))
                     for x in event.signals()],
            units=Units.of(event.units),
            baseline=Baseline.of(event.baseline),
            targets=Targets.from_dict(event.targets.model_dump()),
            priority=event.priority,
            market_context=event.market_context,
            response_required=event.response_required,
            vtn_comment=event.vtn_comment,
            created_at=utc(event.created_at),
            modified_at=utc(event.modified_at),
            test_event=event.test_event,
            **{field: None if getattr(event, field) is None else format_duration(getattr(event, field))
               for field in _DURATION_FIELDS},
        )


@strawberry.type
class Reading:
    at: datetime = strawberry.field(description="the reading's time, or its bucket's start")
    value: float = strawberry.field(description="the reading, or the mean of the bucket's readings")
    ven_id: str | None = strawberry.field(default=None, description="null on a row over several VENs")
    resource_id: str | None = None
    r_id: str | None = strawberry.field(default=None, description="null on a row over several VENs")
    report_specifier_id: str | None = strawberry.field(default=None, description="raw readings only")
    measurement: str | None = None
    unit: str | None = None
    bucket: str | None = strawberry.field(default=None, description="the bucket's length; null on raw readings")
    min: float | None = None
    max: float | None = None
    sum: float | None = None
    count: int | None = strawberry.field(default=None, description="readings in the bucket")
    total: float | None = strawberry.field(default=None, description="the sum over the series (VEN and rID) of "
                                           "each one's mean in the bucket: for power, the aggregate load")
    series: int | None = strawberry.field(default=None, description="series (VEN and rID) in the bucket")
    cursor: str = strawberry.field(default="", description="give it as after to get the rows after this one")

    @classmethod
    def from_row(cls, row) -> "Reading":
        return cls(at=utc(row.at), value=row.value, ven_id=row.ven_id, resource_id=row.resource_id, r_id=row.r_id,
                   report_specifier_id=row.report_specifier_id, measurement=row.measurement, unit=row.unit,
                   bucket=row.bucket, min=row.min, max=row.max, sum=row.sum, count=row.count, total=row.total,
                   series=row.series, cursor=row.cursor)


@strawberry.type
class EventUpdate:
    event_id: str
    transition: str = strawberry.field(
        description="created, modified, far, near, active, completed or cancelled"
    )
    status: str
    modification_number: int
    occurred_at: datetime
    event: Event

    @classmethod
    def from_fact(cls, fact: EventTransition) -> "EventUpdate":
        return cls(
            event_id=fact.event_id,
            transition=fact.transition.value,
            status=fact.event.status.value,
            modification_number=fact.event.modification_number,
            occurred_at=utc(fact.occurred_at),
            event=Event.from_model(fact.event),
        )


@strawberry.type
class VenActivity:
    ven_id: str
    kind: str = strawberry.field(
        description="registered, deregistered, report.registered, report.data, opt or seen"
    )
    occurred_at: datetime


@strawberry.type(description="A VEN registered (or registered again) or deregistered")
class VenRegistration:
    ven_id: str
    kind: str = strawberry.field(description="registered or deregistered")
    occurred_at: datetime
    ven_name: str | None = strawberry.field(default=None, description="null on deregistered")
    registration_id: str | None = None
    reregistration: bool = strawberry.field(default=False, description="a registered VEN registering again")
    reason: str | None = strawberry.field(default=None, description="why it was deregistered, when known")

    @classmethod
    def from_fact(cls, kind: str, fact: VenRegistered | VenDeregistered) -> "VenRegistration":
        if isinstance(fact, VenRegistered):
            return cls(ven_id=fact.ven_id, kind=kind, occurred_at=utc(fact.occurred_at), ven_name=fact.ven_name,
                       registration_id=fact.registration_id, reregistration=fact.reregistration)
        return cls(ven_id=fact.ven_id, kind=kind, occurred_at=utc(fact.occurred_at),
                   registration_id=fact.registration_id, reason=fact.reason)


@strawberry.type(description="A VEN's answer to an event (oadrCreatedEvent or oadrCreateOpt), as it arrives")
class OptResponseUpdate:
    ven_id: str
    event_id: str
    opt_type: str = strawberry.field(description="optIn or optOut")
    modification_number: int | None
    source: str
    responded_at: datetime

    @classmethod
    def from_fact(cls, fact: OptResponseFact) -> "OptResponseUpdate":
        return cls(ven_id=fact.ven_id, event_id=fact.event_id, opt_type=fact.opt_type,
                   modification_number=fact.modification_number, source=fact.source,
                   responded_at=utc(fact.occurred_at))


def readings_of_report(report: ReportData) -> list[Reading]:
    return [Reading(at=utc(r.at), value=r.value, ven_id=report.ven_id, resource_id=r.resource_id, r_id=r.r_id,
                    report_specifier_id=r.report_specifier_id, measurement=r.measurement, unit=r.unit)
            for r in report.readings]


@strawberry.type(description="A registration step the VEN is sent on its next poll")
class VenAction:
    ven_id: str
    pending_action: str = strawberry.field(description="cancel (oadrCancelPartyRegistration) or "
                                                       "reregister (oadrRequestReregistration)")


@strawberry.input
class IntervalInput:
    duration: str = strawberry.field(description="ISO-8601 duration, e.g. PT1H")
    payload: float


@strawberry.input(description="A signal's units, its 2.0b itemBase (rule 7: the kind must be the one "
                              "its signalName and signalType take, e.g. currencyPerKWh for an ELECTRICITY_PRICE "
                              "price, powerReal for a LOAD_DISPATCH setpoint)")
class UnitsInput:
    kind: str = strawberry.field(description="currency, currencyPerKWh, currencyPerKW, currencyPerThm, powerReal "
                                             "or energyReal")
    unit: str = strawberry.field(description="an ISO 4217 code (USD, EUR) for the currency kinds; W for "
                                             "powerReal; Wh for energyReal")
    scale: str = strawberry.field(default="none", description="SI scale code: p, n, micro, m, c, d, k, M, G, T "
                                                              "or none")
    hertz: float | None = strawberry.field(default=None, description="powerReal only; default 50")
    voltage: float | None = strawberry.field(default=None, description="powerReal only; default 230")
    ac: bool = True


@strawberry.input(description="An event's baseline (eiEventBaseline, E1_1027)")
class BaselineInput:
    start_at: datetime = strawberry.field(description="with a zone")
    intervals: list[IntervalInput] = strawberry.field(description="each of a positive duration")
    baseline_id: str = "baseline-1"
    baseline_name: str = "baseline"
    resource_ids: list[str] | None = None
    units: UnitsInput | None = None


@strawberry.input
class SignalInput:
    intervals: list[IntervalInput]
    signal_name: str = "SIMPLE"
    signal_type: str = "level"
    units: UnitsInput | None = None


_TARGETS = "targets (their union; at least one of venIds, groupIds, resourceIds)"


@strawberry.input
class CreateEventInput:
    intervals: list[IntervalInput] | None = strawberry.field(default=None, description="the event's signal's "
                                                             "intervals (or give signals)")
    ven_ids: list[str] | None = strawberry.field(default=None, description=f"VEN ids; {_TARGETS}")
    group_ids: list[str] | None = strawberry.field(default=None, description="groups (each must exist and "
                                                   "have VENs): their members at each delivery")
    resource_ids: list[str] | None = strawberry.field(default=None, description="resource ids of the VENs' "
                                                      "registered reports (each must match a VEN)")
    market_contexts: list[str] | None = strawberry.field(default=None, description="program market contexts: "
                                                         "the VENs and groups their programs enroll")
    signal_name: str = "SIMPLE"
    signal_type: str = "level"
    units: UnitsInput | None = strawberry.field(default=None, description="the signal's units (none for SIMPLE)")
    start_at: datetime | None = strawberry.field(default=None, description="with a zone; default now")
    event_id: str | None = strawberry.field(default=None, description="default: assigned by the scheduler")
    priority: int | None = None
    market_context: str | None = None
    response_required: str | None = strawberry.field(default=None, description="always or never")
    vtn_comment: str | None = None
    notification: str | None = strawberry.field(default=None, description="ISO-8601 duration")
    ramp_up: str | None = strawberry.field(default=None, description="ISO-8601 duration")
    recovery: str | None = strawberry.field(default=None, description="ISO-8601 duration")
    randomization: str | None = strawberry.field(default=None, description="ISO-8601 duration")
    test_event: bool = False
    signals: list[SignalInput] | None = strawberry.field(default=None, description="several signals (e.g. a "
                                                         "SIMPLE level and a price), each over the whole event; "
                                                         "instead of signalName, signalType and intervals")
    baseline: BaselineInput | None = None
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


@strawberry.input
class ModifyEventInput:
    event_id: str
    intervals: list[IntervalInput] | None = None
    start_at: datetime | None = None
    ven_ids: list[str] | None = None
    priority: int | None = None
    signal_name: str | None = None
    signal_type: str | None = None
    units: UnitsInput | None = strawberry.field(default=None, description="replaces the signal's units; not "
                                                "given, they are kept while they fit its signalName and signalType")
    vtn_comment: str | None = None
    group_ids: list[str] | None = strawberry.field(default=None, description="replaces the event's groups")
    resource_ids: list[str] | None = strawberry.field(default=None, description="replaces the event's "
                                                      "resource ids")
    market_contexts: list[str] | None = strawberry.field(default=None, description="replaces the event's "
                                                         "market-context targets")
    market_context: str | None = None
    response_required: str | None = strawberry.field(default=None, description="always or never")
    test_event: bool | None = None
    notification: str | None = strawberry.field(default=None, description="ISO-8601 duration; PT0S: none")
    ramp_up: str | None = strawberry.field(default=None, description="ISO-8601 duration; PT0S: none")
    recovery: str | None = strawberry.field(default=None, description="ISO-8601 duration; PT0S: none")
    randomization: str | None = strawberry.field(default=None, description="ISO-8601 duration; PT0S: none")
    signals: list[SignalInput] | None = strawberry.field(default=None, description="replaces every signal")
    baseline: BaselineInput | None = strawberry.field(default=None, description="replaces the baseline")
    remove_baseline: bool = False
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


@strawberry.type(description="A certificate fingerprint and the one VEN name it may register as")
class ProvisionedVen:
    ven_name: str
    cert_fingerprint: str = strawberry.field(description="2.0b form: the last 10 bytes of the certificate's "
                                                         "SHA-256, colon-separated hex")
    provisioned_at: datetime
    provisioned_by: str | None = strawberry.field(description="the name (or id) of the API token that "
                                                             "provisioned it")

    @classmethod
    def from_record(cls, record: ProvisionedVenRecord) -> "ProvisionedVen":
        return cls(ven_name=record.ven_name, cert_fingerprint=record.fingerprint,
                   provisioned_at=utc(record.provisioned_at), provisioned_by=record.provisioned_by)


@strawberry.enum(description="What an API token may do; each role may also do all a lesser one may")
class ApiRole(Enum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


@strawberry.type(description="An operator's API token; its secret is shown once, by createApiToken")
class ApiToken:
    id: str
    name: str | None
    role: ApiRole
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiTokenRow) -> "ApiToken":
        return cls(id=row.id, name=row.name, role=ApiRole(row.role), created_at=utc(row.created_at),
                   last_used_at=utc(row.last_used_at), revoked_at=utc(row.revoked_at))


@strawberry.type
class NewApiToken:
    token: str = strawberry.field(description="send it as the header Authorization: Bearer <token>; "
                                              "it is shown only this once")
    api_token: ApiToken


@strawberry.type(description="A window of an opt schedule")
class OptWindow:
    start: datetime
    duration: str = strawberry.field(description="ISO-8601 duration")


@strawberry.type(description="A VEN's opt schedule (EiOpt oadrCreateOpt), as last sent under its optId")
class OptSchedule:
    ven_id: str
    opt_id: str
    opt_type: str = strawberry.field(description="optIn or optOut")
    opt_reason: str | None
    market_context: str | None
    event_id: str | None = strawberry.field(description="the event it answers, if it qualifies one")
    modification_number: int | None
    resource_ids: list[str]
    windows: list[OptWindow]
    sent_at: datetime
    cancelled_at: datetime | None = strawberry.field(description="when the VEN withdrew it (oadrCancelOpt)")
    device_classes: list[str] = strawberry.field(default_factory=list, description="the oadrDeviceClass it is "
                                                 "for (endDeviceAsset mrids); empty: the whole VEN")

    @classmethod
    def from_row(cls, row: OptScheduleRow) -> "OptSchedule":
        return cls(
            ven_id=row.ven_id, opt_id=row.opt_id, opt_type=row.opt_type, opt_reason=row.opt_reason,
            market_context=row.market_context, event_id=row.event_id, modification_number=row.modification_number,
            resource_ids=list(row.resource_ids or ()),
            windows=[OptWindow(start=utc(datetime.fromisoformat(w["start"])),
                               duration=format_duration(timedelta(seconds=w["duration_seconds"])))
                     for w in row.windows or ()],
            sent_at=utc(row.sent_at), cancelled_at=utc(row.cancelled_at),
            device_classes=list(row.device_classes or ()),
        )


@strawberry.type(description="A group of VENs; an event targeting it reaches its members as they are at each "
                             "delivery (a VEN may belong to several groups)")
class Group:
    group_id: str
    name: str | None
    ven_ids: list[str]
    updated_at: datetime

    @classmethod
    def from_record(cls, record: GroupRecord) -> "Group":
        return cls(group_id=record.group_id, name=record.name, ven_ids=list(record.ven_ids),
                   updated_at=utc(record.updated_at))


@strawberry.type(description="A report the VTN asked a VEN for (oadrCreateReport), with when each step happened")
class ReportRequest:
    ven_id: str
    report_request_id: str
    report_specifier_id: str
    report_name: str | None = strawberry.field(description="e.g. TELEMETRY_USAGE, HISTORY_USAGE")
    r_ids: list[str]
    granularity: str = strawberry.field(description="ISO-8601 duration between samples (PT0S: one report)")
    report_back_duration: str = strawberry.field(description="ISO-8601 duration between reports (PT0S: one report)")
    start: datetime | None = strawberry.field(description="the reportInterval's start")
    end: datetime | None = strawberry.field(description="the reportInterval's end; null: until cancelled")
    status: str = strawberry.field(description="queued, sent, acknowledged, cancelling, cancelled or failed")
    origin: str = strawberry.field(description="operator (requestReport) or automatic (asked for on registration)")
    report_to_follow: bool = strawberry.field(description="the cancellation allows one final report")
    created_at: datetime
    sent_at: datetime | None = strawberry.field(description="oadrCreateReport sent to the VEN")
    acknowledged_at: datetime | None = strawberry.field(description="the VEN listed it in its pendingReports")
    cancel_requested_at: datetime | None
    cancel_sent_at: datetime | None = strawberry.field(description="oadrCancelReport sent to the VEN")
    cancelled_at: datetime | None = strawberry.field(description="the VEN's oadrCanceledReport (or cancelled "
                                                                  "before it was ever sent)")
    failed_at: datetime | None
    failure: str | None

    @classmethod
    def from_info(cls, ven_id: str, r: ReportRequestInfo) -> "ReportRequest":
        return cls(ven_id=ven_id, report_request_id=r.report_request_id, report_specifier_id=r.report_specifier_id,
                   report_name=r.report_name, r_ids=list(r.r_ids), granularity=format_duration(r.granularity),
                   report_back_duration=format_duration(r.report_back_duration), start=utc(r.interval_start),
                   end=utc(r.interval_end), status=r.status, origin=r.origin, report_to_follow=r.report_to_follow,
                   created_at=utc(r.created_at), sent_at=utc(r.sent_at), acknowledged_at=utc(r.acknowledged_at),
                   cancel_requested_at=utc(r.cancel_requested_at), cancel_sent_at=utc(r.cancel_sent_at),
                   cancelled_at=utc(r.cancelled_at), failed_at=utc(r.failed_at), failure=r.failure)

    @classmethod
    def from_row(cls, row: ReportRequestRow) -> "ReportRequest":
        return cls(ven_id=row.ven_id, report_request_id=row.report_request_id,
                   report_specifier_id=row.report_specifier_id, report_name=row.report_name,
                   r_ids=list(row.r_ids or ()), granularity=normalize_duration(row.granularity_seconds),
                   report_back_duration=normalize_duration(row.report_back_duration_seconds),
                   start=utc(row.interval_start), end=utc(row.interval_end), status=row.status, origin=row.origin,
                   report_to_follow=row.report_to_follow, created_at=utc(row.created_at), sent_at=utc(row.sent_at),
                   acknowledged_at=utc(row.acknowledged_at), cancel_requested_at=utc(row.cancel_requested_at),
                   cancel_sent_at=utc(row.cancel_sent_at), cancelled_at=utc(row.cancelled_at),
                   failed_at=utc(row.failed_at), failure=row.failure)


@strawberry.type(description="A push of events to a push VEN that did not get through; the VEN gets them on "
                             "the next successful push or its next poll")
class PushFailure:
    ven_id: str
    event_ids: list[str]
    attempt: int = strawberry.field(description="failures of this push in a row")
    error: str = strawberry.field(description="connection, timeout, tls, http_status or unreadable_answer")
    http_status: int | None
    gave_up: bool = strawberry.field(description="no more retries follow until the VEN's events change")
    occurred_at: datetime

    @classmethod
    def from_row(cls, row: PushFailureRow) -> "PushFailure":
        return cls(ven_id=row.ven_id, event_ids=list(row.event_ids or ()), attempt=row.attempt, error=row.error,
                   http_status=row.http_status, gave_up=row.gave_up, occurred_at=utc(row.occurred_at))


# --------------------------------------------------------------------------- programs

UPCOMING_MAX = 366
REFUSE_OVERLAPS = ("2.0b rule 18 (A_E3_0530): events of this market context may not overlap — a createEvent or "
                   "modifyEvent whose active window (start to end plus randomization) overlaps another event of "
                   "the market context not cancelled or completed is refused (CONFLICT on startAt), and the "
                   "program's own windows that would overlap are skipped")


@strawberry.type(description="A weekly window of a program's schedule, in the schedule's time zone")
class ScheduleRule:
    days: list[str] = strawberry.field(description="mon, tue, wed, thu, fri, sat, sun")
    start: str = strawberry.field(description="local time of day, HH:MM:SS")
    end: str


@strawberry.type
class ProgramSchedule:
    time_zone: str = strawberry.field(description="IANA time zone name, e.g. Europe/Paris")
    rules: list[ScheduleRule]
    exclusion_dates: list[date]


@strawberry.type(description="One window of a program: the event prg-<programId>-<yyyymmdd>")
class ProgramOccurrence:
    event_id: str
    date: date = strawberry.field(description="the local date")
    start_at: datetime
    end_at: datetime


@strawberry.type(description="A program: its market context, enrolled VENs and groups, default signal and "
                             "recurring schedule; the scheduler creates its events ahead of time")
class Program:
    program_id: str
    name: str | None
    market_context: str
    ven_ids: list[str]
    group_ids: list[str]
    signal_name: str
    signal_type: str
    level: float
    priority: int
    response_required: str
    notification: str = strawberry.field(description="ISO-8601 duration: how long before a window its event "
                                                     "reaches VENs")
    schedule: ProgramSchedule
    refuse_overlaps: bool = strawberry.field(description=REFUSE_OVERLAPS)
    updated_at: datetime
    record: strawberry.Private[Any]

    @strawberry.field(description=f"The next windows (ending after now), at most limit (default 10, at most "
                                  f"{UPCOMING_MAX})")
    async def upcoming(self, info: strawberry.Info, limit: int = 10) -> list[ProgramOccurrence]:
        from adrstack.shared.programs import occurrence_event_id, parse_occurrence_event_id

        from .errors import InvalidInput

        if not 1 <= limit <= UPCOMING_MAX:
            raise InvalidInput("limit", f"{limit} is not between 1 and {UPCOMING_MAX}")
        state = info.context["state"]
        found = state.programs.upcoming(self.record, limit)
        if not found:
            return []
        # A day excluded and back again has a revived event (prg-<id>-<day>r<n>): name the latest.
        revival: dict[date, int] = {}
        for row in await state.store.events(4 * UPCOMING_MAX, program_id=self.program_id,
                                            since=min(o.start for o in found)):
            parsed = parse_occurrence_event_id(row.event_id)
            if parsed is not None:
                revival[parsed[1]] = max(revival.get(parsed[1], 0), parsed[2])
        return [ProgramOccurrence(event_id=occurrence_event_id(self.program_id, o.day, revival.get(o.day, 0)),
                                  date=o.day, start_at=utc(o.start), end_at=utc(o.end)) for o in found]

    @classmethod
    def from_record(cls, record) -> "Program":
        s = record.schedule
        return cls(
            program_id=record.program_id, name=record.name, market_context=record.market_context,
            ven_ids=list(record.ven_ids), group_ids=list(record.group_ids), signal_name=record.signal_name,
            signal_type=record.signal_type, level=record.level, priority=record.priority,
            response_required=record.response_required, notification=format_duration(record.notification),
            schedule=ProgramSchedule(
                time_zone=s.time_zone, exclusion_dates=list(s.exclusion_dates),
                rules=[ScheduleRule(days=list(r.days), start=r.start.isoformat(), end=r.end.isoformat())
                       for r in s.rules]),
            refuse_overlaps=record.refuse_overlaps, updated_at=utc(record.updated_at), record=record,
        )


@strawberry.input
class ScheduleRuleInput:
    days: list[str] = strawberry.field(description="mon, tue, wed, thu, fri, sat, sun (one window per day)")
    start: str = strawberry.field(description="local time of day, HH:MM or HH:MM:SS")
    end: str = strawberry.field(description="local time of day after start (same day)")


@strawberry.input
class ProgramScheduleInput:
    time_zone: str = strawberry.field(description="IANA time zone name, e.g. Europe/Paris")
    rules: list[ScheduleRuleInput]
    exclusion_dates: list[date] | None = strawberry.field(default=None, description="local dates without a window")


@strawberry.input
class CreateProgramInput:
    program_id: str
    market_context: str = strawberry.field(description="the program's market context URI")
    schedule: ProgramScheduleInput
    name: str | None = None
    ven_ids: list[str] | None = strawberry.field(default=None, description="enrolled VENs (registered ones)")
    group_ids: list[str] | None = strawberry.field(default=None, description="enrolled groups (existing ones)")
    signal_name: str = "SIMPLE"
    signal_type: str = "level"
    level: float = 1.0
    priority: int | None = None
    response_required: str | None = strawberry.field(default=None, description="always or never")
    notification: str | None = strawberry.field(default=None, description="ISO-8601 duration, default PT1H")
    refuse_overlaps: bool = strawberry.field(default=False, description=REFUSE_OVERLAPS)
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


@strawberry.input(description="What is given changes; the program's events not started yet follow")
class UpdateProgramInput:
    program_id: str
    name: str | None = None
    market_context: str | None = None
    schedule: ProgramScheduleInput | None = None
    signal_name: str | None = None
    signal_type: str | None = None
    level: float | None = None
    priority: int | None = None
    response_required: str | None = None
    notification: str | None = None
    refuse_overlaps: bool | None = strawberry.field(default=None, description=REFUSE_OVERLAPS)
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY)


@strawberry.type(description="One VEN's load during an event against its baseline, in kW")
class VenPerformance:
    ven_id: str
    baseline_kw: float | None = strawberry.field(description="null: no non-event weekday with readings")
    measured_kw: float | None = strawberry.field(description="null: no readings in the event's window")
    shed_kw: float | None = strawberry.field(description="baselineKw - measuredKw")
    baseline_days: list[date] = strawberry.field(description="the UTC weekdays the baseline averages")


@strawberry.type(description="An event's performance: each targeted VEN's baseline, measured load and shed "
                             "(kW), and their sums over the VENs that have both")
class EventPerformance:
    event_id: str
    method: str
    window_start: datetime | None = strawberry.field(description="null: the event has not run")
    window_end: datetime | None
    baseline_kw: float | None
    measured_kw: float | None
    shed_kw: float | None
    vens: list[VenPerformance]

    @classmethod
    def of(cls, found, method: str) -> "EventPerformance":
        return cls(event_id=found.event_id, method=method, window_start=utc(found.window_start),
                   window_end=utc(found.window_end), baseline_kw=found.total("baseline_kw"),
                   measured_kw=found.total("measured_kw"), shed_kw=found.total("shed_kw"),
                   vens=[VenPerformance(ven_id=v.ven_id, baseline_kw=v.baseline_kw, measured_kw=v.measured_kw,
                                        shed_kw=v.shed_kw, baseline_days=v.baseline_days) for v in found.vens])
