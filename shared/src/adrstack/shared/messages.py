"""Wire contracts: every message on NATS is one of these models, serialised as UTF-8 JSON.

Nothing here imports the database layer (see ``tables``): the wire format must stay
importable by any process, and its evolution is tracked by ``schema_version``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .signals import SignalUnits
from .subjects import TOKEN_RULE, is_valid_token

SCHEMA_VERSION = 1

# Namespace for ids derived from content, so a re-sent fact gets the same Nats-Msg-Id.
ADRSTACK_NAMESPACE = uuid.UUID("6f1c7c1e-7d0a-4a55-9a3e-2f3c0b5d9a10")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def derived_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(ADRSTACK_NAMESPACE, "\x1f".join(str(p) for p in parts))


def _token(value: str, what: str) -> str:
    if not is_valid_token(value):
        raise ValueError(f"{what} must be {TOKEN_RULE}")
    return value


class Contract(BaseModel):
    """Base of every nested wire structure."""

    model_config = ConfigDict(extra="ignore", frozen=False, populate_by_name=True)


class Message(Contract):
    """Base of every top-level NATS message."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @property
    def msg_id(self) -> str:
        """The value sent as the Nats-Msg-Id header."""
        return str(self.id)


M = TypeVar("M", bound=Message)


def decode(model: type[M], data: bytes) -> M:
    """Parse a message; raises pydantic.ValidationError on anything malformed."""
    return model.model_validate_json(data)


# --------------------------------------------------------------------------- VENs


class VenRecord(Contract):
    """A registered VEN as kept in the ``openadr-vens`` KV bucket (key: ven_id)."""

    ven_id: str
    ven_name: str
    registration_id: str
    registered_at: AwareDatetime
    profile_name: str = "2.0b"
    transport_name: str = "simpleHttp"
    transport_address: str | None = None
    http_pull_model: bool = True
    report_only: bool = False
    fingerprint: str | None = None
    # A VTN-initiated step the VEN is sent on its next poll (oadrCancelPartyRegistration or
    # oadrRequestReregistration); cleared when the VEN has done it.
    pending_action: Literal["cancel", "reregister"] | None = None


class VenRegistered(Message):
    ven_id: str
    ven_name: str
    registration_id: str
    profile_name: str = "2.0b"
    transport_name: str = "simpleHttp"
    transport_address: str | None = None
    http_pull_model: bool = True
    report_only: bool = False
    # True when an already known ven_name registered again and kept its ven_id.
    reregistration: bool = False

    _ven_id = field_validator("ven_id")(lambda v: _token(v, "ven_id"))


class VenDeregistered(Message):
    ven_id: str
    registration_id: str | None = None
    reason: str | None = None


class VenSeen(Message):
    ven_id: str


class ReportDescription(Contract):
    """One data point a VEN declared in oadrRegisterReport."""

    report_specifier_id: str
    report_name: str
    r_id: str
    resource_id: str | None = None
    report_type: str | None = None
    reading_type: str | None = None
    measurement: str | None = None
    unit: str | None = None
    scale: str | None = None
    min_sampling_period: timedelta | None = None
    max_sampling_period: timedelta | None = None


class ReportsRegistered(Message):
    ven_id: str
    reports: list[ReportDescription]


class Reading(Contract):
    report_specifier_id: str
    r_id: str
    at: AwareDatetime
    value: float
    resource_id: str | None = None
    measurement: str | None = None
    unit: str | None = None


class ReportData(Message):
    ven_id: str
    report_request_id: str | None = None
    report_specifier_id: str
    report_name: str | None = None
    readings: list[Reading]


class LoadControlValue(Contract):
    """One oadrLoadControlState quantity of a resource (oadrCapacity, oadrLevelOffset, ...)."""

    current: float | None = None
    normal: float | None = None
    min: float | None = None
    max: float | None = None


class LoadControl(Contract):
    capacity: LoadControlValue | None = None
    level_offset: LoadControlValue | None = None
    percent_offset: LoadControlValue | None = None
    set_point: LoadControlValue | None = None


class ResourceStatus(Contract):
    """One oadrPayloadResourceStatus of a TELEMETRY_STATUS report, at one interval's time."""

    r_id: str
    at: AwareDatetime
    online: bool
    manual_override: bool
    load_control: LoadControl = Field(default_factory=LoadControl)
    resource_id: str | None = None


class ReportStatus(Message):
    """``<prefix>.ven.<ven_id>.report.status``: the resource statuses of one oadrReport (its
    id derives from the content, so a re-sent report is dropped by the stream)."""

    ven_id: str
    report_request_id: str | None = None
    report_specifier_id: str
    report_name: str | None = None
    statuses: list[ResourceStatus] = Field(min_length=1)

    _ven_id = field_validator("ven_id")(lambda v: _token(v, "ven_id"))


OptType = Literal["optIn", "optOut"]


class OptResponse(Message):
    """A VEN's answer to an event (oadrCreatedEvent) or, later, an opt schedule (EiOpt)."""

    ven_id: str
    event_id: str
    modification_number: int | None = None
    opt_type: OptType
    response_code: int | None = None
    request_id: str | None = None
    source: Literal["oadrCreatedEvent", "oadrCreateOpt"] = "oadrCreatedEvent"


class OptWindow(BaseModel):
    """One window of an opt schedule (an xcal:available of the VEN's vavailability)."""

    start: AwareDatetime
    duration_seconds: float = Field(ge=0)


class OptSchedule(Message):
    """A VEN's opt schedule (oadrCreateOpt; re-sent with the same optID it replaces the earlier
    one), or its withdrawal (oadrCancelOpt, ``cancelled``). Qualifying an event, it also sets the
    VEN's answer to that event (published as an OptResponse with source oadrCreateOpt)."""

    ven_id: str
    opt_id: str
    opt_type: OptType
    opt_reason: str | None = None
    market_context: str | None = None
    event_id: str | None = None
    modification_number: int | None = None
    resource_ids: list[str] = Field(default_factory=list)
    # The oadrDeviceClass it is for (P1_2030: its endDeviceAsset mrids); none: the whole VEN.
    device_classes: list[str] = Field(default_factory=list)
    windows: list[OptWindow] = Field(default_factory=list)
    request_id: str | None = None
    cancelled: bool = False


# --------------------------------------------------------------------------- DR events


class EventStatus(str, Enum):
    FAR = "far"
    NEAR = "near"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Transition(str, Enum):
    CREATED = "created"
    MODIFIED = "modified"
    FAR = "far"
    NEAR = "near"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class EventInterval(Contract):
    # Zero is an open-ended interval (rule 47): the event runs until it is cancelled or modified.
    duration: timedelta
    payload: float

    @field_validator("duration")
    @classmethod
    def _not_negative(cls, v: timedelta) -> timedelta:
        if v < timedelta(0):
            raise ValueError("duration must not be negative")
        return v


def _open_ended_alone(intervals: list[EventInterval]) -> list[EventInterval]:
    """An open-ended interval (duration 0) is its signal's only one: after it nothing could start."""
    if len(intervals) > 1 and any(i.duration == timedelta(0) for i in intervals):
        raise ValueError("a zero duration (open-ended, until cancelled) is allowed only as a signal's single "
                         "interval")
    return intervals


class EventTargets(Contract):
    ven_ids: list[str] = Field(default_factory=list)
    group_ids: list[str] = Field(default_factory=list)
    resource_ids: list[str] = Field(default_factory=list)
    party_ids: list[str] = Field(default_factory=list)
    # Market context URIs: the VENs and groups enrolled in the programs with that market context.
    market_contexts: list[str] = Field(default_factory=list)


ResponseRequired = Literal["always", "never"]


class SignalSpec(Contract):
    """A further signal of an event, beside its own (``signal_name``, ``intervals``): a 2.0b event
    may carry several (e.g. a SIMPLE level and a price), each over the event's whole active period."""

    signal_name: str
    signal_type: str = "level"
    signal_id: str | None = None  # assigned (signal-2, signal-3, ...) when the event is built
    intervals: list[EventInterval] = Field(min_length=1)
    units: SignalUnits | None = None

    _intervals = field_validator("intervals")(_open_ended_alone)

    @property
    def duration(self) -> timedelta:
        return sum((i.duration for i in self.intervals), timedelta(0))


MAX_SIGNALS = 10


class EventBaseline(Contract):
    """An event's baseline (eiEventBaseline, E1_1027): the load expected without the event, as
    intervals from ``start_at`` (each of a positive duration), for resources or the whole VEN."""

    baseline_id: str = "baseline-1"
    baseline_name: str = "baseline"
    start_at: AwareDatetime
    intervals: list[EventInterval] = Field(min_length=1, max_length=1000)
    resource_ids: list[str] = Field(default_factory=list, max_length=100)
    units: SignalUnits | None = None

    @field_validator("intervals")
    @classmethod
    def _positive(cls, v: list[EventInterval]) -> list[EventInterval]:
        if any(i.duration <= timedelta(0) for i in v):
            raise ValueError("a baseline's intervals each last more than zero")
        return v

    @property
    def duration(self) -> timedelta:
        return sum((i.duration for i in self.intervals), timedelta(0))


class DrEvent(Contract):
    """The current state of one DR event, as kept in the ``openadr-events`` KV bucket."""

    event_id: str
    modification_number: int = 0
    status: EventStatus
    signal_name: str = "SIMPLE"
    signal_type: str = "level"
    signal_id: str = "signal-1"
    units: SignalUnits | None = None  # the own signal's itemBase
    start_at: AwareDatetime
    intervals: list[EventInterval] = Field(min_length=1)
    targets: EventTargets
    priority: int = 0
    market_context: str = "http://MarketContext1"
    response_required: ResponseRequired = "always"
    vtn_comment: str | None = None
    test_event: bool = False
    # Carried for VENs and for the scheduler's far/near boundary.
    notification: timedelta | None = None
    ramp_up: timedelta | None = None
    recovery: timedelta | None = None
    randomization: timedelta | None = None
    extra_signals: list[SignalSpec] = Field(default_factory=list, max_length=MAX_SIGNALS - 1)
    created_at: AwareDatetime = Field(default_factory=utcnow)
    modified_at: AwareDatetime = Field(default_factory=utcnow)
    baseline: EventBaseline | None = None
    # Set when the scheduler, not an operator, cancelled it (programs.PROGRAM_CANCEL: its day left
    # its program's schedule, so the day may come back).
    cancel_reason: str | None = None

    _event_id = field_validator("event_id")(lambda v: _token(v, "event_id"))
    _intervals = field_validator("intervals")(_open_ended_alone)

    @model_validator(mode="after")
    def _signals_cover_the_event(self) -> "DrEvent":
        ids = {self.signal_id}
        for i, signal in enumerate(self.extra_signals):
            if signal.duration != self.duration:
                raise ValueError(f"extra_signals[{i}]: its intervals last {signal.duration}, the event's "
                                 f"{self.duration}; every signal covers the whole event")
            if signal.signal_id in ids:
                raise ValueError(f"extra_signals[{i}]: signal_id {signal.signal_id!r} is used twice")
            ids.add(signal.signal_id)
        return self

    def signals(self) -> list[SignalSpec]:
        """Every signal, the event's own first."""
        own = SignalSpec(signal_name=self.signal_name, signal_type=self.signal_type, signal_id=self.signal_id,
                         intervals=self.intervals, units=self.units)
        return [own, *self.extra_signals]

    @property
    def duration(self) -> timedelta:
        return sum((i.duration for i in self.intervals), timedelta(0))

    @property
    def open_ended(self) -> bool:
        """Duration 0: active from its start until cancelled (rule 47)."""
        return self.duration == timedelta(0)

    @property
    def end_at(self) -> datetime | None:
        """None for an open-ended event."""
        return None if self.open_ended else self.start_at + self.duration

    def targets_ven(self, ven_id: str) -> bool:
        return ven_id in self.targets.ven_ids


class EventTransition(Message):
    """``openadr.event.<event_id>.<transition>``: the event as it is after the transition."""

    event_id: str
    transition: Transition
    event: DrEvent

    @model_validator(mode="after")
    def _same_event(self) -> "EventTransition":
        if self.event.event_id != self.event_id:
            raise ValueError("event_id does not match event.event_id")
        return self


# --------------------------------------------------------------------------- groups


class GroupRecord(Contract):
    """A VEN group as kept in the ``openadr-groups`` KV bucket (key: ``group.<group_id>``), written
    by the api. A VEN may belong to any number of groups; an event targeting a group reaches its
    members as they are at each delivery."""

    group_id: str
    name: str | None = None
    ven_ids: list[str] = Field(default_factory=list)
    updated_at: AwareDatetime = Field(default_factory=utcnow)

    _group_id = field_validator("group_id")(lambda v: _token(v, "group_id"))

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


# --------------------------------------------------------------------------- commands


# VENs one event may list: the event is one KV value and one NATS message (1 MiB by default).
# Larger fleets are targeted by group.
MAX_TARGETED_VENS = 20_000


# Groups and resources one event may name (each resolves to any number of VENs).
MAX_TARGET_IDS = 1000


class EventCommand(Message):
    """A command to the scheduler. One carrying ``idempotency_key`` is applied once: the same key
    again gets the first command's reply and changes nothing (for 24 hours)."""

    idempotency_key: str | None = None


class CreateEventCommand(EventCommand):
    """Targets: ``ven_ids``, ``group_ids`` and ``resource_ids`` together (their union); at least one
    must be given. The api resolves groups and resources before it sends the command (a target
    matching no VEN is refused there); the scheduler checks that each listed VEN is registered."""

    event_id: str | None = None
    # Before ven_ids, so that ven_ids' check (which names ven_ids when no target is given) sees them.
    group_ids: list[str] = Field(default_factory=list, max_length=MAX_TARGET_IDS)
    resource_ids: list[str] = Field(default_factory=list, max_length=MAX_TARGET_IDS)
    # The VENs and groups enrolled in the programs with these market contexts.
    market_contexts: list[str] = Field(default_factory=list, max_length=MAX_TARGET_IDS)
    ven_ids: list[str] = Field(default_factory=list, max_length=MAX_TARGETED_VENS, validate_default=True)
    intervals: list[EventInterval] = Field(min_length=1)
    signal_name: str = "SIMPLE"
    signal_type: str = "level"
    units: SignalUnits | None = None
    start_at: AwareDatetime | None = None
    priority: int = 0
    market_context: str = "http://MarketContext1"
    response_required: ResponseRequired = "always"
    vtn_comment: str | None = None
    test_event: bool = False
    notification: timedelta | None = None
    ramp_up: timedelta | None = None
    recovery: timedelta | None = None
    randomization: timedelta | None = None
    extra_signals: list[SignalSpec] = Field(default_factory=list, max_length=MAX_SIGNALS - 1)
    baseline: EventBaseline | None = None

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, v: str | None) -> str | None:
        return None if v is None else _token(v, "event_id")

    _group_ids = field_validator("group_ids")(lambda v: [_token(g, "group_id") for g in v])

    @field_validator("ven_ids")
    @classmethod
    def _some_target(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if not (v or info.data.get("group_ids") or info.data.get("resource_ids") or info.data.get("market_contexts")):
            raise ValueError("at least one target is required: ven_ids, group_ids, resource_ids or market_contexts")
        return v

    @property
    def targets(self) -> EventTargets:
        return EventTargets(ven_ids=list(self.ven_ids), group_ids=list(self.group_ids),
                            resource_ids=list(self.resource_ids), market_contexts=list(self.market_contexts))


class ModifyEventCommand(EventCommand):
    """A target list given replaces the event's list of that kind; when any is given, the event's
    targets after the change must not be empty."""

    event_id: str
    intervals: list[EventInterval] | None = None
    start_at: AwareDatetime | None = None
    ven_ids: list[str] | None = Field(None, max_length=MAX_TARGETED_VENS)
    group_ids: list[str] | None = Field(None, max_length=MAX_TARGET_IDS)
    resource_ids: list[str] | None = Field(None, max_length=MAX_TARGET_IDS)
    market_contexts: list[str] | None = Field(None, max_length=MAX_TARGET_IDS)
    priority: int | None = None
    signal_name: str | None = None
    signal_type: str | None = None
    # Given: replaces the own signal's units. Not given: kept while they fit its name and type.
    units: SignalUnits | None = None
    vtn_comment: str | None = None
    market_context: str | None = None
    response_required: ResponseRequired | None = None
    test_event: bool | None = None
    # Zero means none (as in createEvent).
    notification: timedelta | None = None
    ramp_up: timedelta | None = None
    recovery: timedelta | None = None
    randomization: timedelta | None = None
    # Replaces the event's further signals ([] removes them).
    extra_signals: list[SignalSpec] | None = Field(None, max_length=MAX_SIGNALS - 1)
    baseline: EventBaseline | None = None  # replaces the event's baseline
    remove_baseline: bool = False

    _group_ids = field_validator("group_ids")(
        lambda v: None if v is None else [_token(g, "group_id") for g in v])


class CancelEventCommand(EventCommand):
    event_id: str


ErrorCode = Literal["invalid", "unknown_ven", "conflict", "not_found", "unavailable", "internal"]


class CommandError(Contract):
    code: ErrorCode
    message: str
    field: str | None = None


class CommandReply(Message):
    ok: bool
    event: DrEvent | None = None
    error: CommandError | None = None

    @classmethod
    def success(cls, event: DrEvent) -> "CommandReply":
        return cls(ok=True, event=event)

    @classmethod
    def failure(cls, code: ErrorCode, message: str, field: str | None = None) -> "CommandReply":
        return cls(ok=False, error=CommandError(code=code, message=message, field=field))


VenAction = Literal["cancel", "reregister"]


class VenActionCommand(Message):
    """``<prefix>.cmd.ven.<action>``: ask a VEN, on its next poll, to cancel its registration
    (oadrCancelPartyRegistration) or to register again (oadrRequestReregistration)."""

    ven_id: str

    _ven_id = field_validator("ven_id")(lambda v: _token(v, "ven_id"))


class VenActionReply(Message):
    ok: bool
    ven_id: str | None = None
    pending_action: VenAction | None = None
    error: CommandError | None = None


PushErrorKind = Literal["connection", "timeout", "tls", "http_status", "unreadable_answer"]


class PushFailed(Message):
    """``openadr.ven.<ven_id>.push.failed``: an oadrDistributeEvent pushed to a push VEN (one that
    registered with oadrHttpPullModel=false) did not get through. Nothing is lost: the VEN gets
    its events on the next successful push or its next poll. ``attempt`` counts the failures of
    this push in a row; ``gave_up`` says no more retries follow (until the VEN's events change)."""

    ven_id: str
    event_ids: list[str] = Field(default_factory=list)
    attempt: int = Field(ge=1)
    error: PushErrorKind
    http_status: int | None = None  # with error "http_status"
    gave_up: bool = False

    _ven_id = field_validator("ven_id")(lambda v: _token(v, "ven_id"))


# --------------------------------------------------------------------------- dead letters


class DeadLetter(Message):
    """``<prefix>.deadletter.<consumer>``: a message a consumer gave up on, with why. Its id comes
    from (stream, stream_sequence), so copying the same message twice (a retry after a crash,
    two replicas seeing one advisory) stores it once."""

    subject: str
    reason: str
    stream: str
    stream_sequence: int = Field(ge=1)
    consumer: str
    deliveries: int | None = None
    # The original bytes, base64: they may be anything, including not UTF-8.
    payload_b64: str
    published_at: AwareDatetime | None = None

    @classmethod
    def id_for(cls, stream: str, stream_sequence: int) -> uuid.UUID:
        return derived_id("dead-letter", stream, stream_sequence)


# --------------------------------------------------------------------------- report requests

ReportRequestStatus = Literal["queued", "sent", "acknowledged", "cancelling", "cancelled", "failed"]
REPORT_REQUEST_STATUSES: tuple[str, ...] = ("queued", "sent", "acknowledged", "cancelling", "cancelled", "failed")


class ReportRequestInfo(Contract):
    """A report request the VTN made of a VEN (oadrCreateReport) as it stands, with when each step
    happened. ``version`` goes up with every change, so a consumer keeps the newest it has seen."""

    report_request_id: str
    report_specifier_id: str
    report_name: str | None = None
    r_ids: list[str] = Field(default_factory=list)
    granularity: timedelta
    report_back_duration: timedelta
    interval_start: AwareDatetime | None = None
    interval_end: AwareDatetime | None = None
    status: ReportRequestStatus
    origin: Literal["automatic", "operator"] = "automatic"
    report_to_follow: bool = False
    created_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    cancel_requested_at: AwareDatetime | None = None
    cancel_sent_at: AwareDatetime | None = None
    cancelled_at: AwareDatetime | None = None
    failed_at: AwareDatetime | None = None
    failure: str | None = None
    version: int = 0


class ReportRequestChanged(Message):
    """``openadr.ven.<ven_id>.report.request``: a report request of the VTN changed state (its id
    derives from the request and its version: a re-published change is dropped as a duplicate)."""

    ven_id: str
    request: ReportRequestInfo

    _ven_id = field_validator("ven_id")(lambda v: _token(v, "ven_id"))


MAX_REQUESTED_RIDS = 100


class RequestReportCommand(Message):
    """``<prefix>.cmd.report.request``: ask a VEN for a report (sent as oadrCreateReport on its next
    poll). Durations None: the gateway picks them from what the VEN registered."""

    ven_id: str
    report_specifier_id: str = Field(min_length=1, max_length=256)
    r_ids: list[str] = Field(min_length=1, max_length=MAX_REQUESTED_RIDS)
    granularity: timedelta | None = None
    report_back_duration: timedelta | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    _ven_id = field_validator("ven_id")(lambda v: _token(v, "ven_id"))


class CancelReportCommand(Message):
    """``<prefix>.cmd.report.cancel``: cancel a report request (oadrCancelReport on the VEN's next
    poll, or in the answer to its next oadrUpdateReport)."""

    ven_id: str
    report_request_id: str = Field(min_length=1, max_length=256)
    report_to_follow: bool = False

    _ven_id = field_validator("ven_id")(lambda v: _token(v, "ven_id"))


class ReportRequestReply(Message):
    ok: bool
    ven_id: str | None = None
    request: ReportRequestInfo | None = None
    error: CommandError | None = None


# Subject suffix -> message model, for consumers that decode any fact.
VEN_FACTS: dict[str, type[Message]] = {
    "registered": VenRegistered,
    "deregistered": VenDeregistered,
    "report.registered": ReportsRegistered,
    "report.data": ReportData,
    "report.status": ReportStatus,
    "opt": OptResponse,
    "opt.schedule": OptSchedule,
    "seen": VenSeen,
    "push.failed": PushFailed,
    "report.request": ReportRequestChanged,
}
