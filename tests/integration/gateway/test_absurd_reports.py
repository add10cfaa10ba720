"""An oadrUpdateReport with an absurd number of readings is refused (454, a generic description)
without stalling the other VENs; at the default body limit it never gets past the 413."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import aiohttp
from openleadr.messaging import parse_message

from adrstack.gateway.app import Gateway
from adrstack.gateway.codec.reader import MAX_UPDATE_READINGS
from tests.helpers import eventually
from tests.report_xml import many_readings_update

from .test_reports import add_usage_report

AT = datetime(2030, 1, 1, tzinfo=timezone.utc)


async def post(url: str, body: bytes) -> tuple[int, bytes, float]:
    started = time.monotonic()
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/EiReport", data=body, headers={"Content-Type": "application/xml"}) as r:
            return r.status, await r.read(), time.monotonic() - started


async def test_huge_reports_are_refused_quickly_while_another_ven_is_served(gateway_settings, bus, vens):
    # Raised so that the readings cap, not the body limit, is what refuses these.
    gateway = Gateway(gateway_settings.model_copy(update={"max_body_bytes": 16 * 1024 * 1024}))
    await gateway.start()
    try:
        honest = vens("honest-ven", gateway.vtn_url)
        add_usage_report(honest)
        await honest.run()
        subject = bus.subjects.report_data(honest.ven_id)
        await eventually(lambda: bus.stored(subject), 15, message="the honest VEN's first report")

        flood = vens("flooding-ven", gateway.vtn_url)
        add_usage_report(flood)
        await flood.create_party_registration()
        await flood.register_reports(flood.reports)
        await eventually(lambda: bus.last(bus.subjects.report_registered(flood.ven_id)), 10, message="registered")
        huge = many_readings_update(flood.ven_id, report_request_id="rr-any", report_specifier_id="usage-1",
                                    r_id="power-1", at=AT, count=10 * MAX_UPDATE_READINGS)
        assert len(huge) > 1024 * 1024

        before = len(await bus.stored(subject))
        flood_task = asyncio.gather(*(post(gateway.vtn_url, huge) for _ in range(5)))
        polls = []
        while not flood_task.done():  # the honest VEN polls all through the flood
            started = time.monotonic()
            await honest.poll()
            polls.append(time.monotonic() - started)
        answers = await flood_task
        assert polls and max(polls) < 3.0, polls
        for status, body, seconds in answers:
            response = parse_message(body.decode())[1]["response"]
            assert status == 200 and response["response_code"] == 454, response
            assert response["response_description"] == (f"more than {MAX_UPDATE_READINGS} readings in one "
                                                        "oadrUpdateReport; send them in several messages")
            assert seconds < 10.0, f"a refused report took {seconds:.1f}s"
        # Nothing of the flood reached the stream; the honest VEN kept reporting through it.
        assert await bus.stored(bus.subjects.report_data(flood.ven_id)) == []
        await eventually(lambda: len_more(bus, subject, before), 15, message="the honest VEN served after the flood")
    finally:
        await gateway.stop()


async def len_more(bus, subject: str, than: int) -> bool:
    return len(await bus.stored(subject)) > than


async def test_at_the_default_body_limit_a_huge_report_is_a_413(gateway, vens, bus):
    body = many_readings_update("any-ven", report_request_id="rr-any", report_specifier_id="usage-1", r_id="power-1",
                                at=AT, count=2 * MAX_UPDATE_READINGS)
    assert len(body) > gateway.settings.max_body_bytes
    status, text, seconds = await post(gateway.vtn_url, body)
    assert status == 413 and b"body larger than" in text and seconds < 5.0
    # The process is still up and answering.
    status, _, _ = await post(gateway.vtn_url, b"<not-xml")
    assert status == 400
