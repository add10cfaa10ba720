"""Reports: metadata -> ReportsRegistered, a request on the next poll, updates -> ReportData."""

from __future__ import annotations

from datetime import timedelta

from adrstack.gateway.app import Gateway
from adrstack.shared.kv_keys import reports_key
from tests.helpers import eventually


def add_usage_report(client, value=1234.5):
    client.add_report(
        callback=lambda: value,
        resource_id="meter-1",
        measurement="RealPower",
        unit="W",
        report_specifier_id="usage-1",
        r_id="power-1",
        sampling_rate=timedelta(seconds=1),
        report_duration=timedelta(hours=1),
    )


async def test_reports_are_registered_requested_and_published(gateway, bus, vens):
    client = vens("reporting", gateway.vtn_url)
    add_usage_report(client)
    await client.run()
    ven_id = client.ven_id

    registered = await eventually(lambda: bus.last(bus.subjects.report_registered(ven_id)), 10,
                                  message="ReportsRegistered")
    [description] = registered["reports"]
    assert description["report_specifier_id"] == "usage-1" and description["r_id"] == "power-1"
    assert description["report_name"] == "TELEMETRY_USAGE"
    assert description["resource_id"] == "meter-1"
    assert description["measurement"] == "RealPower" and description["unit"] == "W"

    # The request went out on a poll (oadrCreateReport) and the VEN acknowledged it.
    assert client.report_requests and client.report_requests[0]["report_specifier_id"] == "usage-1"
    record = await eventually(lambda: bus.kv_json(reports_key(ven_id)), 5, message="report record")
    await eventually(lambda: _all_acknowledged(bus, ven_id), 10, message="oadrCreatedReport acknowledged")
    assert "usage-1" in record["reports"]

    data = await eventually(lambda: bus.last(bus.subjects.report_data(ven_id)), 20, message="ReportData")
    assert data["ven_id"] == ven_id and data["report_specifier_id"] == "usage-1"
    assert data["report_request_id"] == client.report_requests[0]["report_request_id"]
    assert data["readings"], data
    for reading in data["readings"]:
        assert reading["r_id"] == "power-1" and reading["value"] == 1234.5
        assert reading["resource_id"] == "meter-1" and reading["measurement"] == "RealPower"
        assert reading["unit"] == "W" and reading["at"]


async def _all_acknowledged(bus, ven_id):
    """Acknowledged requests stay on the record (a cancellation or their data may name them later)."""
    record = await bus.kv_json(reports_key(ven_id))
    return record is not None and record["requests"] and all(r["acknowledged_at"] for r in record["requests"])


async def test_report_request_survives_a_restart_before_the_poll(gateway_settings, bus, vens):
    settings = gateway_settings.model_copy(update={"piggyback_report_requests": False})
    first = Gateway(settings)
    await first.start()
    try:
        client = vens("late-poller", first.vtn_url)
        add_usage_report(client)
        await client.create_party_registration()
        await client.register_reports(client.reports)
        assert client.report_requests == []  # nothing requested inline; it comes with a poll
    finally:
        await first.stop()
    second = Gateway(settings)
    await second.start()
    try:
        response_type, payload = await client.poll()
        assert response_type == "oadrCreateReport", response_type
        [request] = payload["report_requests"]
        assert request["report_specifier"]["report_specifier_id"] == "usage-1"
        assert request["report_specifier"]["specifier_payloads"][0]["r_id"] == "power-1"
        # Handed out once; then the VTN's own metadata, then nothing.
        assert (await client.poll())[0] == "oadrRegisterReport"
        assert (await client.poll())[0] == "oadrResponse"
    finally:
        await second.stop()
