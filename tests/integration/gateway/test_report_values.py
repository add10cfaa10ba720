"""Readings JSON cannot carry (NaN, infinities) or whose time openleadr could not read (no 'Z')
are refused to the VEN, not acknowledged and then lost or filed at the receive time."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import aiohttp
import pytest
from openleadr.messaging import create_message, parse_message

from tests.helpers import eventually
from tests.integration.gateway.test_report_ingest import issued
from tests.integration.gateway.test_reports import add_usage_report

AT = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def update_report(client, value: str, at: str = "2030-01-01T12:00:00Z") -> bytes:
    """For the report request the VTN issued the VEN in its oadrRegisteredReport (rule 304)."""
    xml = create_message("oadrUpdateReport", ven_id=client.ven_id, request_id="req-1", reports=[{
        "report_id": "rep-1", "report_request_id": issued(client), "report_specifier_id": "usage-1",
        "report_name": "TELEMETRY_USAGE", "created_date_time": AT,
        "intervals": [{"dtstart": AT, "report_payload": {"r_id": "power-1", "value": 1.0}}]}])
    xml = xml.replace("<ei:value>1.0</ei:value>", f"<ei:value>{value}</ei:value>")
    xml = re.sub(r"(<ei:interval>\s*<xcal:dtstart>\s*<xcal:date-time>)[^<]*", lambda m: m.group(1) + at, xml)
    return xml.encode()


async def post(gateway, body: bytes) -> dict:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gateway.vtn_url}/EiReport", data=body, headers={"Content-Type": "application/xml"}) as r:
            assert r.status == 200
            return parse_message(await r.text())[1]["response"]


@pytest.mark.parametrize("value, at", [
    ("NaN", "2030-01-01T12:00:00Z"),
    ("INF", "2030-01-01T12:00:00Z"),
    ("-INF", "2030-01-01T12:00:00Z"),
    ("1e400", "2030-01-01T12:00:00Z"),  # a valid xs:float lexical that overflows to infinity
    ("5.0", "2030-01-01T12:00:00"),  # schema-valid, but openleadr leaves it an unparsed string
])
async def test_unstorable_readings_are_refused_and_not_published(gateway, bus, vens, value, at):
    client = vens("odd-values", gateway.vtn_url)
    add_usage_report(client)
    await client.create_party_registration()
    await client.register_reports(client.reports)
    await eventually(lambda: bus.last(bus.subjects.report_registered(client.ven_id)), 10, message="registered")

    refused = await post(gateway, update_report(client, value, at))
    assert refused["response_code"] != 200, refused
    accepted = await post(gateway, update_report(client, "42.0"))
    assert accepted["response_code"] == 200, accepted

    data = await eventually(lambda: bus.stored(bus.subjects.report_data(client.ven_id)), 10, message="ReportData")
    # Only the good update is on the stream, with its own time.
    assert [[(r["value"], r["at"]) for r in d["readings"]] for d in data] == [[(42.0, "2030-01-01T12:00:00Z")]]


async def test_data_for_an_undeclared_rid_is_refused_with_452(gateway, bus, vens):
    client = vens("undeclared-rid", gateway.vtn_url)
    add_usage_report(client)
    await client.create_party_registration()
    await client.register_reports(client.reports)
    await eventually(lambda: bus.last(bus.subjects.report_registered(client.ven_id)), 10, message="registered")

    body = update_report(client, "7.0").replace(b"<ei:rID>power-1</ei:rID>", b"<ei:rID>made-up</ei:rID>")
    assert b"made-up" in body
    refused = await post(gateway, body)
    assert refused["response_code"] == 452 and "made-up" in refused["response_description"], refused
    accepted = await post(gateway, update_report(client, "8.0"))
    assert accepted["response_code"] == 200, accepted
    data = await eventually(lambda: bus.stored(bus.subjects.report_data(client.ven_id)), 10, message="ReportData")
    assert [[r["r_id"] for r in d["readings"]] for d in data] == [["power-1"]]
