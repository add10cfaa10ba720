"""POST /send_event: the kickstarter's shortcut, through the same scheduler command."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adrstack.shared.messages import CreateEventCommand, decode

BODY = {"ven_id": "ven123", "event_id": "event002", "signal_level": 2}


def assert_error(r, status, code, field):
    assert r.status_code == status, r.text
    data = r.json()
    assert set(data) == {"error", "message", "field"}
    assert (data["error"], data["field"]) == (code, field)
    assert data["message"]
    return data


async def test_creates_a_one_hour_simple_event(client, scheduler):
    before = datetime.now(timezone.utc)
    r = await client.post("/send_event", json=BODY)
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["event_id"] == "event002"
    assert ev["status"] == "active"
    assert ev["modification_number"] == 0
    assert (ev["signal_name"], ev["signal_type"]) == ("SIMPLE", "level")
    assert ev["intervals"] == [{"duration": "PT1H", "payload": 2.0}]
    assert ev["targets"]["ven_ids"] == ["ven123"]
    start = datetime.fromisoformat(ev["start_at"])
    assert before <= start <= datetime.now(timezone.utc)
    assert datetime.fromisoformat(ev["end_at"]) == start + timedelta(hours=1)
    cmd = decode(CreateEventCommand, scheduler.requests[0][1])
    assert cmd.ven_ids == ["ven123"] and cmd.intervals[0].duration == timedelta(hours=1)


async def test_unknown_ven_is_404(client, scheduler):
    data = assert_error(await client.post("/send_event", json={**BODY, "ven_id": "ven999"}), 404, "unknown_ven", "ven_id")
    assert "ven999" in data["message"]


async def test_existing_event_id_is_409(client, scheduler):
    assert (await client.post("/send_event", json=BODY)).status_code == 200
    data = assert_error(await client.post("/send_event", json=BODY), 409, "conflict", "event_id")
    assert "event002" in data["message"]


@pytest.mark.parametrize("body, field", [
    ({**BODY, "signal_level": 4}, "signal_level"),
    ({**BODY, "signal_level": 5}, "signal_level"),
    ({**BODY, "signal_level": -1}, "signal_level"),
    ({**BODY, "signal_level": "high"}, "signal_level"),
    ({"ven_id": "ven123", "event_id": "event002"}, "signal_level"),
    ({"event_id": "event002", "signal_level": 1}, "ven_id"),
    ({**BODY, "event_id": "bad id"}, "event_id"),
])
async def test_bad_body_is_422_and_sends_nothing(client, scheduler, body, field):
    assert_error(await client.post("/send_event", json=body), 422, "invalid", field)
    assert scheduler.requests == []


async def test_scheduler_down_is_503(client):
    data = assert_error(await client.post("/send_event", json=BODY), 503, "unavailable", None)
    assert "scheduler did not answer" in data["message"]
