"""Report metadata, report requests and readings, from openleadr's parsed payloads (pure logic)."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta

from adrstack.shared.messages import Reading, ReportDescription, derived_id

from .registry import ReportRecord, ReportRequest

# Reports we ask for as soon as a VEN offers them; history reports need an explicit interval.
REQUESTABLE = ("TELEMETRY_USAGE", "TELEMETRY_STATUS")


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _report_name(raw: str | None) -> str:
    name = raw or ""
    return name[len("METADATA_"):] if name.startswith("METADATA_") else name


def _str_or_none(value) -> str | None:
    return None if value in (None, "", "None") else str(value)


def descriptions(payload: dict) -> dict[str, list[ReportDescription]]:
    """report_specifier_id -> one ReportDescription per r_id, from oadrRegisterReport."""
    out: dict[str, list[ReportDescription]] = {}
    for report in as_list(payload.get("reports")):
        spec = str(report.get("report_specifier_id"))
        name = _report_name(report.get("report_name"))
        items = out.setdefault(spec, [])
        for rd in as_list(report.get("report_descriptions")):
            measurement = rd.get("measurement") or {}
            sampling = rd.get("sampling_rate") or {}
            source = rd.get("report_data_source") or {}
            items.append(ReportDescription(
                report_specifier_id=spec,
                report_name=name,
                r_id=str(rd.get("r_id")),
                resource_id=_str_or_none(source.get("resource_id")),
                report_type=_str_or_none(rd.get("report_type")),
                reading_type=_str_or_none(rd.get("reading_type")),
                measurement=_str_or_none(measurement.get("description") or measurement.get("name")),
                unit=_str_or_none(measurement.get("unit")),
                scale=_str_or_none(measurement.get("scale")),
                min_sampling_period=sampling.get("min_period") if isinstance(sampling.get("min_period"), timedelta) else None,
                max_sampling_period=sampling.get("max_period") if isinstance(sampling.get("max_period"), timedelta) else None,
            ))
    return out


def _whole_seconds(d: timedelta) -> timedelta:
    return timedelta(seconds=max(1, round(d.total_seconds())))


def report_requests(offered: dict[str, list[ReportDescription]], wanted_interval: timedelta) -> list[ReportRequest]:
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
        if lows:
            granularity = max(granularity, max(lows))
        if highs:
            granularity = min(granularity, min(highs))
        granularity = _whole_seconds(granularity)
        back = _whole_seconds(max(wanted_interval, granularity))
        if back.total_seconds() % granularity.total_seconds():
            back = granularity  # openleadr VENs batch back/granularity samples: keep it whole
        requests.append(ReportRequest(
            report_request_id="rr-" + secrets.token_hex(8),
            report_specifier_id=spec,
            granularity=granularity,
            report_back_duration=back,
            r_ids=[(d.r_id, d.reading_type or "Direct Read") for d in items],
        ))
    return requests


def _utc_time(value, where: str) -> datetime | None:
    # openleadr hands back the raw string when a date-time lacks its 'Z' (the 2.0b schema allows
    # that "floating" form); taking the receive time instead would file the reading at the wrong time.
    if value is None or isinstance(value, datetime):
        return value
    raise ValueError(f"{where} {str(value)[:40]!r} is not a UTC date-time (e.g. 2030-01-01T12:00:00Z)")


class UnregisteredDataPoint(LookupError):
    """Data for a report or rID the VEN never declared in oadrRegisterReport."""


def readings(report: dict, known: ReportRecord, now: datetime) -> list[Reading]:
    """One oadrReport of an oadrUpdateReport as readings, completed from the registered metadata."""
    spec = str(report.get("report_specifier_id"))
    fallback_at = _utc_time(report.get("dtstart"), "report dtstart") or now
    out = []
    for interval in as_list(report.get("intervals")):
        payload = interval.get("report_payload") or {}
        r_id = str(payload.get("r_id"))
        value = payload.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"reading for r_id {r_id!r} has no numeric value")
        # JSON has no NaN/Infinity: on the wire they would become null and telemetry would drop
        # the reading after the VEN had been told it was stored.
        if not math.isfinite(value):
            raise ValueError(f"reading for r_id {r_id!r} is {value!r}, not a finite number")
        at = _utc_time(interval.get("dtstart"), "interval dtstart") or fallback_at
        meta = known.description(spec, r_id)
        if meta is None:
            # Accepting undeclared points would let a VEN create unbounded series with no unit.
            raise UnregisteredDataPoint(f"report {spec!r} rID {r_id!r} was not registered with oadrRegisterReport")
        out.append(Reading(
            report_specifier_id=spec,
            r_id=r_id,
            at=at,
            value=float(value),
            resource_id=_str_or_none(payload.get("resource_id")) or (meta.resource_id if meta else None),
            measurement=meta.measurement if meta else None,
            unit=meta.unit if meta else None,
        ))
    return out


def report_data_id(ven_id: str, spec: str, items: list[Reading]):
    """Same readings re-sent by a VEN give the same message id (JetStream drops the duplicate)."""
    return derived_id("report.data", ven_id, spec, *sorted(f"{r.r_id}@{r.at.isoformat()}={r.value}" for r in items))
