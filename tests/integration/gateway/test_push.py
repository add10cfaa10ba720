"""Push VENs (oadrHttpPullModel=false): a real Gateway POSTs oadrDistributeEvent to a small
aiohttp server playing the VEN's EiEvent endpoint (openleadr's VEN has no push server)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from openleadr.messaging import create_message, parse_message

from adrstack.gateway.app import Gateway
from adrstack.shared import kv_keys
from adrstack.shared.messages import EventStatus
from tests.helpers import eventually, stack_env
from tests.integration.gateway.conftest import free_port
from tests.integration.gateway.test_events import make_event, put_event
from tests.integration.gateway.test_registration_rules import push_registration


async def register_push(vens, name: str, vtn_url: str, address: str):
    client = vens(name, vtn_url)
    _, payload = await client._perform_request("EiRegisterParty", push_registration(name, address))
    assert payload["response"]["response_code"] == 200, payload
    client.ven_id, client.registration_id = payload["ven_id"], payload["registration_id"]
    return client


def events_of(payload: dict) -> list[tuple[str, int, str]]:
    return [(e["event_descriptor"]["event_id"], e["event_descriptor"]["modification_number"],
             e["event_descriptor"]["event_status"]) for e in payload.get("events") or []]


async def test_events_are_pushed_when_created_and_modified_and_an_inline_answer_is_handled(
        fast_gateway, bus, vens, push_ven):
    ven, address = await push_ven(answer_created=True)
    client = await register_push(vens, "push-ven", fast_gateway.vtn_url, address)
    ven.ven_id = client.ven_id
    await put_event(bus, make_event("push-1", [client.ven_id]))
    await eventually(lambda: ven.delivered, 10, message="pushed on create")
    assert events_of(ven.delivered[0]) == [("push-1", 0, "far")]
    assert ven.requests[0][1].startswith("application/xml")
    # Its inline oadrCreatedEvent was handled as if it had been sent to EiEvent.
    opts = await eventually(lambda: bus.stored(bus.subjects.opt(client.ven_id)), 10, message="opt fact")
    assert [(o["event_id"], o["modification_number"], o["opt_type"]) for o in opts] == [("push-1", 0, "optIn")]

    await put_event(bus, make_event("push-1", [client.ven_id], modification_number=1, priority=1))
    await eventually(lambda: len(ven.delivered) == 2, 10, message="pushed on modify")
    assert events_of(ven.delivered[1]) == [("push-1", 1, "far")]
    # Pushed, so the VEN's own poll has nothing new (a push VEN may still poll).
    assert (await client.poll())[0] == "oadrResponse"
    # Cancelled: pushed too.
    await put_event(bus, make_event("push-1", [client.ven_id], modification_number=2, status=EventStatus.CANCELLED))
    await eventually(lambda: len(ven.delivered) == 3, 10, message="pushed on cancel")
    assert events_of(ven.delivered[2]) == [("push-1", 2, "cancelled")]
    assert not await bus.stored(bus.subjects.push_failed(client.ven_id))


async def test_a_failing_endpoint_gets_retries_and_finally_the_event(fast_gateway, bus, vens, push_ven):
    ven, address = await push_ven(statuses=[500, 500])
    client = await register_push(vens, "flaky-ven", fast_gateway.vtn_url, address)
    await put_event(bus, make_event("flaky-1", [client.ven_id]))
    await eventually(lambda: ven.delivered, 10, message="delivered after the retries")
    assert [status for status, _, _ in ven.requests] == [500, 500, 200]
    assert all(events_of(p) == [("flaky-1", 0, "far")] for _, _, p in ven.requests)
    failures = await eventually(lambda: bus.stored(bus.subjects.push_failed(client.ven_id)), 10,
                                message="push.failed facts")
    assert [(f["attempt"], f["error"], f["http_status"], f["event_ids"], f["gave_up"]) for f in failures] == [
        (1, "http_status", 500, ["flaky-1"], False), (2, "http_status", 500, ["flaky-1"], False)]
    record = await bus.kv_json(kv_keys.DELIVERY_PREFIX + client.ven_id)
    assert set(record["pending"]) == {"flaky-1"}
    assert (await client.poll())[0] == "oadrResponse"  # delivered once, by the push


async def test_a_ven_whose_endpoint_is_down_gets_the_event_on_its_next_poll(fast_push, bus, vens):
    gateway = Gateway(fast_push.model_copy(update={"push_attempts": 2}))
    await gateway.start()
    try:
        down = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
        client = await register_push(vens, "down-ven", gateway.vtn_url, down)
        await put_event(bus, make_event("down-1", [client.ven_id]))

        async def gave_up():
            facts = await bus.stored(bus.subjects.push_failed(client.ven_id))
            return facts if facts and facts[-1]["gave_up"] else None

        facts = await eventually(gave_up, 10, message="the pusher gave up")
        assert [(f["attempt"], f["error"], f["event_ids"]) for f in facts] == [
            (1, "connection", ["down-1"]), (2, "connection", ["down-1"])]
        await eventually(lambda: gateway.pusher.idle, 5, message="pusher idle")
        # The failed push was un-recorded: the VEN's next contact gets the event.
        record = await bus.kv_json(kv_keys.DELIVERY_PREFIX + client.ven_id)
        assert record is not None and not record["pending"]
        response_type, payload = await client.poll()
        assert response_type == "oadrDistributeEvent" and events_of(payload) == [("down-1", 0, "far")]
        assert (await client.poll())[0] == "oadrResponse"
    finally:
        await gateway.stop()


async def test_two_replicas_push_a_change_once(gateway_settings, bus, vens, push_ven):
    a = Gateway(gateway_settings)
    b = Gateway(gateway_settings.model_copy(update={"vtn_port": 0}))
    await a.start()
    await b.start()
    try:
        ven, address = await push_ven()
        client = await register_push(vens, "shared-push-ven", a.vtn_url, address)
        await eventually(lambda: b.store.ven(client.ven_id), 5, message="B knows the VEN")

        async def settled(modification: int) -> bool:
            # Both replicas have seen this modification and neither has a push left to do.
            return all(gw.events.get("dup-1") is not None
                       and gw.events.get("dup-1").modification_number == modification
                       and gw.pusher.idle for gw in (a, b))

        for modification in (0, 1):
            await put_event(bus, make_event("dup-1", [client.ven_id], modification_number=modification))
            await eventually(lambda: len(ven.requests) == modification + 1, 10, message="pushed")
            await eventually(lambda: settled(modification), 10, message="both replicas settled")
            assert [events_of(p) for _, _, p in ven.requests] == [
                [("dup-1", mod, "far")] for mod in range(modification + 1)]
        assert a.pusher.pushed + b.pusher.pushed == 2
    finally:
        await b.stop()
        await a.stop()


async def test_a_gateway_stopped_mid_push_leaves_the_event_for_the_next_poll(fast_push, bus, vens):
    """The plan is recorded before the POST: a gateway stopped while the VEN has not answered yet
    puts the record back, so the VEN still gets the event (here: from another gateway, on poll)."""
    started, release = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        started.set()
        await release.wait()
        return web.Response(status=200)

    app = web.Application()
    app.add_routes([web.post("/ven/EiEvent", hang)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    first = Gateway(fast_push)
    await first.start()
    try:
        client = await register_push(vens, "hung-ven", first.vtn_url,
                                     f"http://127.0.0.1:{runner.addresses[0][1]}/ven")
        await put_event(bus, make_event("hung-1", [client.ven_id]))
        await asyncio.wait_for(started.wait(), 10)
        record = await bus.kv_json(kv_keys.DELIVERY_PREFIX + client.ven_id)
        assert set(record["pending"]) == {"hung-1"}  # recorded before the POST
        await first.stop()
        record = await bus.kv_json(kv_keys.DELIVERY_PREFIX + client.ven_id)
        assert not record["pending"], record
        second = Gateway(fast_push.model_copy(update={"vtn_port": 0, "push_timeout": 0.2, "push_attempts": 1}))
        await second.start()
        try:
            client.vtn_url = second.vtn_url
            await eventually(lambda: second.pusher.idle, 10, message="second gateway's push tried")
            response_type, payload = await client.poll()
            assert response_type == "oadrDistributeEvent" and events_of(payload) == [("hung-1", 0, "far")]
        finally:
            await second.stop()
    finally:
        release.set()
        await first.stop()
        await runner.cleanup()


async def test_a_gateway_killed_mid_push_leaves_a_mark_and_the_next_gateway_pushes_again(
        fast_push, bus, vens, tmp_path):
    """kill -9 while the VEN has not answered: nothing puts the record back, but it is marked as
    being pushed; once that mark is older than any POST can last, another gateway pushes the VEN
    its whole set again, and clears the mark when the VEN takes it."""
    import signal
    import subprocess
    import sys
    from datetime import datetime

    import httpx

    first_seen, release, payloads, ven = asyncio.Event(), asyncio.Event(), [], {}

    async def endpoint(request: web.Request) -> web.Response:
        _, payload = parse_message((await request.read()).decode())
        payloads.append(payload)
        if len(payloads) == 1:
            first_seen.set()
            await release.wait()  # no answer to the first push while its gateway lives
        return web.Response(body=create_message("oadrResponse", ven_id=ven.get("id"), response={
            "response_code": 200, "response_description": "OK", "request_id": payload["request_id"]}).encode(),
            content_type="application/xml")

    app = web.Application()
    app.add_routes([web.post("/ven/EiEvent", endpoint)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    address = f"http://127.0.0.1:{runner.addresses[0][1]}/ven"

    port = free_port()
    settings = fast_push
    env = stack_env(settings, ADRSTACK_VTN_HOST="127.0.0.1", ADRSTACK_VTN_PORT=str(port), ADRSTACK_PUSH_TIMEOUT="60")
    log = open(tmp_path / "gateway.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "adrstack.gateway"], env=env, stdout=log, stderr=subprocess.STDOUT)
    second = None
    try:
        async def healthy():
            assert proc.poll() is None, (tmp_path / "gateway.log").read_text()
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"http://127.0.0.1:{port}/health", timeout=2)).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(healthy, 30, interval=0.2, message="gateway process healthy")
        client = await register_push(vens, "killed-push-ven", f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b",
                                     address)
        ven["id"] = client.ven_id
        await put_event(bus, make_event("killed-1", [client.ven_id]))
        await asyncio.wait_for(first_seen.wait(), 15)
        record = await bus.kv_json(kv_keys.DELIVERY_PREFIX + client.ven_id)
        assert set(record["pending"]) == {"killed-1"} and record.get("pushing"), record
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert (await bus.kv_json(kv_keys.DELIVERY_PREFIX + client.ven_id)) == record  # nobody put it back

        # A gateway whose POSTs last 0.5 s at most: once the mark is older than that can explain
        # (2 x 0.5 + 2 s), it pushes again.
        second = Gateway(fast_push.model_copy(update={"vtn_port": 0, "push_timeout": 0.5}))
        await second.start()
        await eventually(lambda: len(payloads) >= 2, 15, message="the whole set pushed again")
        assert events_of(payloads[1]) == [("killed-1", 0, "far")]

        async def cleared():
            now = await bus.kv_json(kv_keys.DELIVERY_PREFIX + client.ven_id)
            return "pushing" not in now and set(now["pending"]) == {"killed-1"}

        await eventually(cleared, 10, message="the mark cleared once the VEN took it")
        again = await bus.kv_json(kv_keys.DELIVERY_PREFIX + client.ven_id)
        assert datetime.fromisoformat(again["delivered_at"]) > datetime.fromisoformat(record["delivered_at"])
        second.pusher.wake(client.ven_id)  # another look: nothing new, and no mark left to act on
        await eventually(lambda: second.pusher.idle, 10, message="second look done")
        assert len(payloads) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if second is not None:
            await second.stop()
        release.set()
        await runner.cleanup()
