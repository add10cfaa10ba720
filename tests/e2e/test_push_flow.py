"""Push VENs (oadrHttpPullModel=false) through the running stack: an event created through
GraphQL is POSTed to the VEN's own endpoint as oadrDistributeEvent and its inline
oadrCreatedEvent is stored as its answer (E1_1020 over push); a VEN whose endpoint fails
shows up in GraphQL pushFailures and as a push.failed fact, and still gets the event on its
next oadrPoll. The endpoints are small aiohttp servers on free ports of 127.0.0.1 (openleadr's
VEN has no push server); the registrations go through an openleadr client's own session."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from openleadr import OpenADRClient

from tests.e2e.test_spine import CREATE, FactTap, gql, ven_name
from tests.helpers import eventually
from tests.integration.gateway.push_ven import PushVen
from tests.integration.gateway.test_push import events_of, register_push

pytestmark = pytest.mark.e2e

ANSWERS = """query($id: String!) { event(eventId: $id) {
  currentResponses { venId optType source modificationNumber } } }"""
FAILURES = """query($v: String!) { pushFailures(venId: $v) {
  venId eventIds attempt error httpStatus gaveUp occurredAt } }"""
VEN = """query($v: String!) { ven(venId: $v) { venId venName } }"""


async def test_an_event_is_pushed_answered_inline_and_a_failing_push_ven_gets_it_on_poll(stack):
    clients: list[OpenADRClient] = []

    def make(name: str, url: str) -> OpenADRClient:
        clients.append(OpenADRClient(ven_name=name, vtn_url=url))
        return clients[-1]

    good = PushVen(answer_created=True)
    bad = PushVen(statuses=[500] * 1000)  # never takes a push
    try:
        good_address, bad_address = await good.start(), await bad.start()
        assert good_address.startswith("http://127.0.0.1:") and bad_address != good_address
        pushed = await register_push(make, ven_name("push"), stack.vtn_url, good_address)
        good.ven_id = pushed.ven_id
        failing = await register_push(make, ven_name("push-down"), stack.vtn_url, bad_address)
        bad.ven_id = failing.ven_id
        for client in (pushed, failing):  # registered VENs the API knows (createEvent checks venIds)
            await eventually(lambda: _known(stack, client.ven_id), 20, message="VEN known to the API")

        async with FactTap(stack) as tap:
            event_id = f"push-{random.randrange(10**9)}"
            start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
            created = await gql(stack, CREATE, {"input": {
                "venIds": [pushed.ven_id, failing.ven_id], "eventId": event_id, "startAt": start.isoformat(),
                "intervals": [{"duration": "PT30M", "payload": 2.0}]}})
            assert "errors" not in created, created

            # Pushed, not polled: the good VEN never polls in this test.
            await eventually(lambda: good.delivered, 20, message="oadrDistributeEvent pushed")
            assert events_of(good.delivered[0]) == [(event_id, 0, "far")]
            assert good.requests[0][1].startswith("application/xml")
            [delivered] = good.delivered[0]["events"]
            assert delivered["event_signals"][0]["intervals"][0]["signal_payload"] == 2.0
            assert delivered["targets"] == [{"ven_id": pushed.ven_id}]

            # Its inline oadrCreatedEvent is its answer.
            async def answered():
                ev = (await gql(stack, ANSWERS, {"id": event_id}))["data"]["event"]
                return [r for r in ev["currentResponses"] if r["venId"] == pushed.ven_id] if ev else None
            assert await eventually(answered, 20, message="inline answer stored") == [{
                "venId": pushed.ven_id, "optType": "optIn", "source": "oadrCreatedEvent", "modificationNumber": 0}]
            assert any(f["event_id"] == event_id and f["opt_type"] == "optIn"
                       for f in tap.messages(stack.subjects.opt(pushed.ven_id)))

            # The failing endpoint: the failure is a fact and in GraphQL.
            subject = stack.subjects.push_failed(failing.ven_id)
            facts = await eventually(lambda: tap.messages(subject), 20, message="push.failed fact")
            assert (facts[0]["attempt"], facts[0]["error"], facts[0]["http_status"], facts[0]["event_ids"]) == (
                1, "http_status", 500, [event_id])
            assert bad.requests and all(status == 500 for status, _, _ in bad.requests)

            async def listed():
                return (await gql(stack, FAILURES, {"v": failing.ven_id}))["data"]["pushFailures"]
            rows = await eventually(listed, 20, message="pushFailures in GraphQL")
            first = rows[-1]  # newest first
            assert (first["venId"], first["eventIds"], first["attempt"], first["error"], first["httpStatus"]) == (
                failing.ven_id, [event_id], 1, "http_status", 500)
            assert datetime.fromisoformat(first["occurredAt"]).tzinfo is not None
            assert (await gql(stack, FAILURES, {"v": pushed.ven_id}))["data"]["pushFailures"] == []

            # The failed push was not counted as delivered: the VEN's next oadrPoll gets the event.
            async def polled():
                response_type, payload = await failing.poll()
                return payload if response_type == "oadrDistributeEvent" else None
            payload = await eventually(polled, 20, interval=0.3, message="event on the failing VEN's poll")
            assert events_of(payload) == [(event_id, 0, "far")]
            # The pushed VEN has nothing new on poll: the push was its delivery.
            assert (await pushed.poll())[0] == "oadrResponse"
            assert len(good.delivered) == 1
    finally:
        for client in clients:
            if client.client_session is not None:
                await client.client_session.close()
        await good.stop()
        await bad.stop()


async def _known(stack, ven_id: str) -> bool:
    return bool((await gql(stack, VEN, {"v": ven_id}))["data"]["ven"])
