"""oadrUpdateReport bodies openleadr cannot write: its template only ever renders ei:payloadFloat,
so a TELEMETRY_STATUS payload (oadr:oadrPayloadResourceStatus) and absurdly large reports are
made here, from openleadr's own message with the payloads swapped in."""

from __future__ import annotations

import re
from datetime import datetime

from openleadr.messaging import create_message

_FLOAT = re.compile(r"<ei:payloadFloat>\s*<ei:value>[^<]*</ei:value>\s*</ei:payloadFloat>")


def resource_status(online: bool, manual_override: bool, **load_control: dict[str, float]) -> str:
    """oadr:oadrPayloadResourceStatus; ``load_control`` kinds are Capacity, LevelOffset,
    PercentOffset, SetPoint, each {min, max, current, normal} (current required)."""
    state = ""
    if load_control:
        kinds = "".join(
            f"<oadr:oadr{kind}>" + "".join(f"<oadr:oadr{k.capitalize()}>{values[k]}</oadr:oadr{k.capitalize()}>"
                                           for k in ("min", "max", "current", "normal") if k in values)
            + f"</oadr:oadr{kind}>"
            for kind, values in load_control.items())
        state = f"<oadr:oadrLoadControlState>{kinds}</oadr:oadrLoadControlState>"
    return (f"<oadr:oadrPayloadResourceStatus><oadr:oadrOnline>{str(online).lower()}</oadr:oadrOnline>"
            f"<oadr:oadrManualOverride>{str(manual_override).lower()}</oadr:oadrManualOverride>{state}"
            "</oadr:oadrPayloadResourceStatus>")


def status_update(ven_id: str, *, report_request_id: str, report_specifier_id: str, r_id: str,
                  statuses: list[tuple[datetime, str]], request_id: str = "req-status") -> bytes:
    """An oadrUpdateReport of one TELEMETRY_STATUS report: one interval per (dtstart, status XML)."""
    xml = create_message("oadrUpdateReport", ven_id=ven_id, request_id=request_id, reports=[{
        "report_id": "status-report", "report_request_id": report_request_id,
        "report_specifier_id": report_specifier_id, "report_name": "TELEMETRY_STATUS",
        "created_date_time": statuses[0][0],
        "intervals": [{"dtstart": at, "report_payload": {"r_id": r_id, "value": 0.0}} for at, _ in statuses]}])
    swaps = iter(status for _, status in statuses)
    out = _FLOAT.sub(lambda _m: next(swaps), xml)
    assert "payloadFloat" not in out
    return out.encode()


def many_readings_update(ven_id: str, *, report_request_id: str, report_specifier_id: str, r_id: str,
                         at: datetime, count: int) -> bytes:
    """An oadrUpdateReport whose one interval carries ``count`` float payloads (the schema allows any
    number per interval): about 100 bytes a reading, as compact as 2.0b gets."""
    xml = create_message("oadrUpdateReport", ven_id=ven_id, request_id="req-many", reports=[{
        "report_id": "many", "report_request_id": report_request_id, "report_specifier_id": report_specifier_id,
        "report_name": "TELEMETRY_USAGE", "created_date_time": at,
        "intervals": [{"dtstart": at, "report_payload": {"r_id": r_id, "value": 1.0}}]}])
    one = re.search(r"<oadr:oadrReportPayload>.*?</oadr:oadrReportPayload>", xml, re.S).group(0)
    compact = re.sub(r">\s+<", "><", one)
    return xml.replace(one, compact * count).encode()
