"""Typed 2.0b messages: what the codec reads from VENs and what it writes to them.

Plain slotted dataclasses: the request path builds one or more of these per message, and
pydantic's validation would cost more than the XML work (the XSD has validated the shape).
Field names follow the 2.0b element names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

# --------------------------------------------------------------------------- shared parts


@dataclass(slots=True)
class EiResponse:
    response_code: int
    response_description: str | None = None
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.response_code < 300


@dataclass(slots=True)
class Targets:
    """ei:eiTarget (also reportSubject, reportDataSource, oadrDeviceClass)."""

    group_ids: list[str] = field(default_factory=list)
    group_names: list[str] = field(default_factory=list)
    resource_ids: list[str] = field(default_factory=list)
    ven_ids: list[str] = field(default_factory=list)
    party_ids: list[str] = field(default_factory=list)
    end_device_assets: list[str] = field(default_factory=list)  # power:endDeviceAsset/power:mrid

    def __bool__(self) -> bool:
        return bool(self.group_ids or self.group_names or self.resource_ids or self.ven_ids
                    or self.party_ids or self.end_device_assets)


@dataclass(slots=True)
class ItemBase:
    """emix:itemBase, the unit of a data point (powerReal, energyReal, voltage, customUnit...)."""

    kind: str  # the element's local name
    description: str | None = None  # itemDescription
    units: str | None = None  # itemUnits
    si_scale_code: str | None = None


@dataclass(slots=True)
class SamplingRate:
    min_period: timedelta
    max_period: timedelta
    on_change: bool


@dataclass(slots=True)
class ReportDescription:
    r_id: str
    report_type: str
    reading_type: str
    report_subject: Targets | None = None
    report_data_source: Targets | None = None
    item_base: ItemBase | None = None
    market_context: str | None = None
    sampling_rate: SamplingRate | None = None


@dataclass(slots=True)
class ResourceStatus:
    """oadrPayloadResourceStatus (TELEMETRY_STATUS)."""

    online: bool
    manual_override: bool
    # oadrCapacity/oadrLevelOffset/oadrPercentOffset/oadrSetPoint -> {min,max,current,normal}
    load_control_state: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(slots=True)
class ReportPayload:
    r_id: str
    value: float | ResourceStatus
    confidence: int | None = None
    accuracy: float | None = None
    data_quality: str | None = None


@dataclass(slots=True)
class ReportInterval:
    payloads: list[ReportPayload]
    dtstart: datetime | None = None
    duration: timedelta | None = None
    uid: str | None = None


@dataclass(slots=True)
class Report:
    """oadrReport: metadata (with descriptions) in oadrRegisterReport, data in oadrUpdateReport."""

    report_request_id: str
    report_specifier_id: str
    created_at: datetime
    report_name: str | None = None
    report_id: str | None = None
    dtstart: datetime | None = None
    duration: timedelta | None = None
    descriptions: list[ReportDescription] = field(default_factory=list)
    intervals: list[ReportInterval] = field(default_factory=list)


@dataclass(slots=True)
class SpecifierPayload:
    r_id: str
    reading_type: str
    item_base: ItemBase | None = None


@dataclass(slots=True)
class ReportRequest:
    """oadrReportRequest: what the VTN asks a VEN to report (or a VEN asks of the VTN)."""

    report_request_id: str
    report_specifier_id: str
    granularity: timedelta
    report_back_duration: timedelta
    specifier_payloads: list[SpecifierPayload]
    # reportInterval: when to report (dtstart, duration); absent for "from now on".
    interval_start: datetime | None = None
    interval_duration: timedelta | None = None


@dataclass(slots=True)
class Availability:
    """One xcal:available of an opt schedule."""

    dtstart: datetime
    duration: timedelta


# --------------------------------------------------------------------------- VEN -> VTN


@dataclass(slots=True)
class QueryRegistration:
    request_id: str


@dataclass(slots=True)
class CreatePartyRegistration:
    request_id: str
    profile_name: str
    transport_name: str
    report_only: bool
    xml_signature: bool
    registration_id: str | None = None
    ven_id: str | None = None
    transport_address: str | None = None
    ven_name: str | None = None
    http_pull_model: bool | None = None


@dataclass(slots=True)
class CancelPartyRegistration:
    request_id: str
    registration_id: str
    ven_id: str | None = None


@dataclass(slots=True)
class CanceledPartyRegistration:
    response: EiResponse
    registration_id: str | None = None
    ven_id: str | None = None


@dataclass(slots=True)
class RequestEvent:
    request_id: str
    ven_id: str
    reply_limit: int | None = None


@dataclass(slots=True)
class EventResponse:
    response_code: int
    response_description: str | None
    request_id: str
    event_id: str
    modification_number: int
    opt_type: str


@dataclass(slots=True)
class CreatedEvent:
    response: EiResponse
    ven_id: str
    event_responses: list[EventResponse] = field(default_factory=list)


@dataclass(slots=True)
class RegisterReport:
    request_id: str
    reports: list[Report]
    ven_id: str | None = None
    report_request_id: str | None = None


@dataclass(slots=True)
class RegisteredReport:
    response: EiResponse
    report_requests: list[ReportRequest] = field(default_factory=list)
    ven_id: str | None = None


@dataclass(slots=True)
class UpdateReport:
    request_id: str
    reports: list[Report]
    ven_id: str | None = None


@dataclass(slots=True)
class CreatedReport:
    response: EiResponse
    pending_reports: list[str]
    ven_id: str | None = None


@dataclass(slots=True)
class CanceledReport:
    response: EiResponse
    pending_reports: list[str]
    ven_id: str | None = None


@dataclass(slots=True)
class CancelReport:
    request_id: str
    report_request_ids: list[str]
    report_to_follow: bool
    ven_id: str | None = None


@dataclass(slots=True)
class CreateReport:
    """A VEN asking for the VTN's own reports (the VTN has none to offer yet)."""

    request_id: str
    report_requests: list[ReportRequest]
    ven_id: str | None = None


@dataclass(slots=True)
class CreateOpt:
    opt_id: str
    opt_type: str
    opt_reason: str
    ven_id: str
    created_at: datetime
    request_id: str
    targets: Targets
    market_context: str | None = None
    availability: list[Availability] | None = None  # None: no vavailability element
    event_id: str | None = None
    modification_number: int | None = None
    device_class: Targets | None = None


@dataclass(slots=True)
class CancelOpt:
    request_id: str
    opt_id: str
    ven_id: str


@dataclass(slots=True)
class Poll:
    ven_id: str


@dataclass(slots=True)
class Response:
    response: EiResponse
    ven_id: str | None = None


Inbound = (QueryRegistration | CreatePartyRegistration | CancelPartyRegistration | CanceledPartyRegistration
           | RequestEvent | CreatedEvent | RegisterReport | RegisteredReport | UpdateReport | CreatedReport
           | CanceledReport | CancelReport | CreateReport | CreateOpt | CancelOpt | Poll | Response)


@dataclass(slots=True)
class Envelope:
    """A parsed oadrPayload: the message, and its ds:Signature (kept for verification) if any."""

    message: Inbound
    message_type: str  # the element name, e.g. "oadrPoll"
    signature: object | None = None  # lxml element of ds:Signature
    tree: object | None = None  # the whole document, for signature verification
