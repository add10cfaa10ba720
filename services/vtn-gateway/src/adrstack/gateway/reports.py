"""Report metadata, report requests and readings, from the codec's typed reports (pure logic)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

import pydantic_core

from adrstack.shared.messages import (
    ADRSTACK_NAMESPACE,
    SCHEMA_VERSION,
    Reading,
    ReportData,
    ReportDescription,
    derived_id,
    utcnow,
)

from .codec import model as m
from .state import ReportRecord, ReportRequestState

# Reports we ask for as soon as a VEN offers them; history reports need an explicit interval.
REQUESTABLE = ("TELEMETRY_USAGE", "TELEMETRY_STATUS")


def _report_name(raw: str | None) -> str:
    name = raw or ""
    return name[len("METADATA_"):] if name.startswith("METADATA_") else name


def descriptions(reports: list[m.Report]) -> dict[str, list[ReportDescription]]:
    """reportSpecifierID -> one ReportDescription per rID, from oadrRegisterReport."""
    out: dict[str, list[ReportDescription]] = {}
    for report in reports:
        name = _report_name(report.report_name)
        items = out.setdefault(report.report_specifier_id, [])
        for d in report.descriptions:
            source = d.report_data_source
            item = d.item_base
            sampling = d.sampling_rate
            items.append(ReportDescription(
                report_specifier_id=report.report_specifier_id,
                report_name=name,
                r_id=d.r_id,
                resource_id=source.resource_ids[0] if source and source.resource_ids else None,
                report_type=d.report_type or None,
                reading_type=d.reading_type or None,
                measurement=(item.description or item.kind) if item else None,
                unit=item.units if item else None,
                scale=item.si_scale_code if item else None,
                min_sampling_period=sampling.min_period if sampling else None,
                max_sampling_period=sampling.max_period if sampling else None,
            ))
    return out


def _whole_seconds(d: timedelta) -> timedelta:
    return timedelta(seconds=max(1, round(d.total_seconds())))


def report_requests(offered: dict[str, list[ReportDescription]], wanted_interval: timedelta) -> list[ReportRequestState]:
    """Ask for every telemetry report offered: sample at ``wanted_interval`` clamped to what each
    data point supports, and report back every ``wanted_interval`` (or the sampling period if longer)."""
    requests = []
    for spec, items in offered.items():
        items = [d for d in items if d.report_name in REQUESTABLE]
        if not items:
            continue
        granularity = wanted_interval
        lows = [d.min_sampling_period for d in items if d.min_sampling_period]
        highs = [d.max_sampling_period for d in items if d.max_sampling_period]
        if highs:
            granularity = min(granularity, min(highs))
        if lows:
            # Last: never faster than a point can sample (oadrMinPeriod, R1_3010-3027), even where
            # another point of the report cannot sample that slowly.
            granularity = max(granularity, max(lows))
        granularity = _whole_seconds(granularity)
        back = _whole_seconds(max(wanted_interval, granularity))
        if back.total_seconds() % granularity.total_seconds():
            back = granularity  # openleadr VENs batch back/granularity samples: keep it whole
        requests.append(ReportRequestState(
            report_request_id="rr-" + secrets.token_hex(8),
            report_specifier_id=spec,
            granularity=granularity,
            report_back_duration=back,
            r_ids=[(d.r_id, d.reading_type or "Direct Read") for d in items],
        ))
    return requests


def as_codec_request(request: ReportRequestState) -> m.ReportRequest:
    periodic = request.granularity > timedelta(0) and request.report_back_duration > timedelta(0)
    return m.ReportRequest(
        report_request_id=request.report_request_id,
        report_specifier_id=request.report_specifier_id,
        granularity=request.granularity,
        report_back_duration=request.report_back_duration,
        # The certification harness expects x-notApplicable in a request's specifier payloads.
        specifier_payloads=[m.SpecifierPayload(r_id=r_id, reading_type="x-notApplicable") for r_id, _ in request.r_ids],
        # An operator's request carries its own reportInterval; an automatic periodic one is spelled
        # out as the harness wants (R1_3010-3027): from when it was made, a duration of 0 for "until
        # cancelled" (as an event's, rule 47).
        interval_start=request.interval_start or (request.created_at if periodic else None),
        interval_duration=(request.interval_duration if request.interval_start is not None
                           else timedelta(0) if periodic else None),
    )


# --------------------------------------------------------------------------- the VTN as report source

# The one report a VEN may ask of the VTN (rule 306: reportSpecifierID METADATA): the VTN's
# metadata, which offers no data points, so it is all a VEN can ask for.
METADATA = "METADATA"
VTN_REPORT_ID = "vtn-metadata"
MAX_REQUEST_ID = 256


class UnknownReport(LookupError):
    """A VEN asked the VTN for a report it does not offer (452)."""


def source_request_ids(requests: list[m.ReportRequest]) -> list[str]:
    """The reportRequestIDs of a VEN's requests for the VTN's reports, all or none: any request
    for something other than the VTN's METADATA, or without a usable id, refuses them all."""
    ids = []
    for rr in requests:
        if rr.report_specifier_id != METADATA:
            raise UnknownReport(f"unknown reportSpecifierID {rr.report_specifier_id[:60]!r}: "
                                f"the VTN offers only {METADATA}")
        if not rr.report_request_id or len(rr.report_request_id) > MAX_REQUEST_ID or rr.report_request_id == "0":
            raise UnknownReport(f"reportRequestID must be 1-{MAX_REQUEST_ID} characters and not 0")
        ids.append(rr.report_request_id)
    if not ids:
        raise UnknownReport("no oadrReportRequest")
    return ids


def vtn_metadata(answering: str | None, now: datetime) -> m.Report:
    """The VTN's METADATA report (its oadrRegisterReport): no data points. ``answering``: the
    VEN's reportRequestID it answers; unsolicited it carries 0, as a VEN's own registration does."""
    return m.Report(report_request_id=answering or "0", report_specifier_id=METADATA, created_at=now,
                    report_id=VTN_REPORT_ID, duration=timedelta(0))


class UnregisteredDataPoint(LookupError):
    """Data for a report or rID the VEN never declared in oadrRegisterReport."""


class UnsupportedPayload(ValueError):
    """A payload this call cannot take (a resource status when no ``statuses`` list is given)."""


# One reading as the hot path keeps it: (report_specifier_id, r_id, at, value, resource_id, measurement, unit),
# the fields of ``Reading`` in its order.
Point = tuple


def points(report: m.Report, known: ReportRecord, now: datetime,
           statuses: list[tuple[str, datetime, m.ResourceStatus, str | None]] | None = None) -> list[Point]:
    """One oadrReport of an oadrUpdateReport as readings, completed from the registered metadata.
    Resource status payloads (TELEMETRY_STATUS) go to ``statuses`` as (rID, at, status, resourceID)."""
    spec = report.report_specifier_id
    # 2.0b rule 314: an interval without dtstart takes the report's.
    fallback_at = report.dtstart or now
    out = []
    last_r_id = last_meta = None
    for interval in report.intervals:
        at = interval.dtstart or fallback_at
        for payload in interval.payloads:
            r_id = payload.r_id
            if r_id == last_r_id:  # the usual report: the same data point in every interval
                meta = last_meta
            else:
                meta = known.description(spec, r_id)
                last_r_id, last_meta = r_id, meta
            if meta is None:
                # Accepting undeclared points would let a VEN create unbounded series with no unit.
                raise UnregisteredDataPoint(
                    f"report {spec[:60]!r} rID {r_id[:60]!r} was not registered with oadrRegisterReport")
            value = payload.value
            if type(value) is not float:
                if isinstance(value, m.ResourceStatus):
                    if statuses is None:
                        raise UnsupportedPayload("resource status payloads are not accepted here")
                    statuses.append((r_id, at, value, meta.resource_id))
                    continue
                value = float(value)
            out.append((spec, r_id, at, value, meta.resource_id, meta.measurement, meta.unit))
    return out


_READING_FIELDS = tuple(Reading.model_fields)


def readings(report: m.Report, known: ReportRecord, now: datetime) -> list[Reading]:
    """``points`` as Reading models."""
    return [Reading(**dict(zip(_READING_FIELDS, p))) for p in points(report, known, now)]


def report_data_id(ven_id: str, spec: str, items: list[Reading]):
    """Same readings re-sent by a VEN give the same message id (JetStream drops the duplicate)."""
    return derived_id("report.data", ven_id, spec, *sorted(f"{r.r_id}@{r.at.isoformat()}={r.value}" for r in items))


def points_id(ven_id: str, spec: str, items: list[Point]) -> uuid.UUID:
    """``report_data_id`` of these points (the same id, without building Reading models)."""
    keys = sorted([f"{p[1]}@{p[2].isoformat()}={p[3]}" for p in items])
    return uuid.uuid5(ADRSTACK_NAMESPACE, "\x1f".join(["report.data", ven_id, spec, *keys]))


def report_data_facts(ven_id: str, report: m.Report, items: list[Point], per_fact: int,
                      occurred_at: datetime | None = None) -> list[tuple[str, bytes]]:
    """(Nats-Msg-Id, payload) of the ReportData facts carrying ``items``, at most ``per_fact``
    readings each: the bytes ``ReportData(...).to_bytes()`` makes (same serializer, same field
    order; tests hold them equal), without validating a model per reading on the hot path."""
    occurred_at = occurred_at or utcnow()
    spec = report.report_specifier_id
    out = []
    for start in range(0, len(items), per_fact):
        chunk = items[start:start + per_fact]
        fact_id = points_id(ven_id, spec, chunk)
        payload = pydantic_core.to_json({
            "id": fact_id,
            "occurred_at": occurred_at,
            "schema_version": SCHEMA_VERSION,
            "ven_id": ven_id,
            "report_request_id": report.report_request_id or None,
            "report_specifier_id": spec,
            "report_name": report.report_name,
            "readings": [dict(zip(_READING_FIELDS, p)) for p in chunk],
        }, inf_nan_mode="null")
        out.append((str(fact_id), payload))
    return out


assert tuple(ReportData.model_fields)[:3] == ("id", "occurred_at", "schema_version"), "ReportData field order"
assert tuple(ReportData.model_fields)[3:] == ("ven_id", "report_request_id", "report_specifier_id", "report_name",
                                              "readings"), "ReportData field order"
