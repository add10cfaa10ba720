"""The api forwards a client's idempotency key with each command (the scheduler applies it once);
a bad key is refused before anything is sent, and a keyed create leaves "now" to the scheduler so a
retry is the same request."""

from __future__ import annotations

import json

from adrstack.shared.messages import CreateEventCommand, decode

from .helpers import gql

CREATE = """mutation($input: CreateEventInput!) { createEvent(input: $input) { eventId } }"""
INPUT = {"venIds": ["ven-a"], "intervals": [{"duration": "PT1H", "payload": 1}]}


async def test_the_key_reaches_the_scheduler_and_start_is_left_to_it(client, scheduler):
    data = await gql(client, CREATE, {"input": {**INPUT, "idempotencyKey": "k-1"}})
    assert "errors" not in data, data
    (subject, body), = scheduler.requests
    command = decode(CreateEventCommand, body)
    assert command.idempotency_key == "k-1" and command.start_at is None
    unkeyed = await gql(client, CREATE, {"input": INPUT})
    assert "errors" not in unkeyed
    assert decode(CreateEventCommand, scheduler.requests[-1][1]).start_at is not None


async def test_cancel_and_send_event_forward_their_keys(client, scheduler):
    created = (await gql(client, CREATE, {"input": INPUT}))["data"]["createEvent"]["eventId"]
    cancel = "mutation($id: String!) { cancelEvent(eventId: $id, idempotencyKey: \"c-1\") { eventId } }"
    assert "errors" not in await gql(client, cancel, {"id": created})
    assert json.loads(scheduler.requests[-1][1])["idempotency_key"] == "c-1"
    r = await client.post("/send_event", json={"ven_id": "ven-a", "signal_level": 1}, headers={"Idempotency-Key": "s-1"})
    assert r.status_code == 200, r.text
    assert json.loads(scheduler.requests[-1][1])["idempotency_key"] == "s-1"


async def test_a_bad_key_is_refused_and_nothing_is_sent(client, scheduler):
    data = await gql(client, CREATE, {"input": {**INPUT, "idempotencyKey": "x" * 201}})
    assert data["errors"][0]["extensions"]["code"] == "INVALID"
    assert data["errors"][0]["extensions"]["field"] == "idempotencyKey"
    r = await client.post("/send_event", json={"ven_id": "ven-a", "signal_level": 1}, headers={"Idempotency-Key": ""})
    assert r.status_code == 422
    assert scheduler.requests == []


async def test_modify_event_forwards_every_create_field(client, scheduler):
    created = (await gql(client, CREATE, {"input": {**INPUT, "testEvent": True}}))["data"]["createEvent"]["eventId"]
    assert json.loads(scheduler.requests[-1][1])["test_event"] is True
    modify = """mutation($input: ModifyEventInput!) { modifyEvent(input: $input) { eventId } }"""
    data = await gql(client, modify, {"input": {"eventId": created, "marketContext": "http://m/2",
                                                "responseRequired": "never", "testEvent": False,
                                                "notification": "PT0S", "rampUp": "PT5M"}})
    sent = json.loads(scheduler.requests[-1][1])
    assert (sent["market_context"], sent["response_required"], sent["test_event"], sent["notification"],
            sent["ramp_up"]) == ("http://m/2", "never", False, "PT0S", "PT5M"), data
    bad = await gql(client, modify, {"input": {"eventId": created, "responseRequired": "sometimes"}})
    assert bad["errors"][0]["extensions"]["field"] == "responseRequired"


async def test_create_event_with_several_signals(client, scheduler):
    signals = [{"signalName": "SIMPLE", "intervals": [{"duration": "PT1H", "payload": 2}]},
               {"signalName": "ELECTRICITY_PRICE", "signalType": "price",
                "intervals": [{"duration": "PT30M", "payload": 0.3}, {"duration": "PT30M", "payload": 0.4}]}]
    data = await gql(client, CREATE, {"input": {"venIds": ["ven-a"], "signals": signals}})
    assert "errors" not in data, data
    sent = json.loads(scheduler.requests[-1][1])
    assert sent["signal_name"] == "SIMPLE" and [i["payload"] for i in sent["intervals"]] == [2.0]
    assert [(s["signal_name"], s["signal_type"]) for s in sent["extra_signals"]] == [("ELECTRICITY_PRICE", "price")]
    requests = len(scheduler.requests)
    short = [signals[0], {**signals[1], "intervals": [{"duration": "PT30M", "payload": 0.3}]}]
    bad = await gql(client, CREATE, {"input": {"venIds": ["ven-a"], "signals": short}})
    assert bad["errors"][0]["extensions"]["field"] == "signals[1].intervals"
    both = await gql(client, CREATE, {"input": {"venIds": ["ven-a"], "signals": signals,
                                                "intervals": [{"duration": "PT1H", "payload": 1}]}})
    assert both["errors"][0]["extensions"]["field"] == "signals"
    assert len(scheduler.requests) == requests
