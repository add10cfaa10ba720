"""Event text fields reach VENs as parseable XML, and one event that cannot be rendered does not
hide the VEN's other events (every oadrDistributeEvent carries all of them)."""

from __future__ import annotations

import aiohttp

from tests.integration.gateway.test_events import make_event, poll_until_events, put_event, registered


async def test_markup_in_text_fields_is_escaped_and_a_broken_event_does_not_poison_the_others(gateway, bus, vens):
    client = await registered(vens, "text-ven", gateway.vtn_url)
    # Legitimate text an operator may type: a URI with a query string, a comment with markup.
    markup = make_event("evt-markup", [client.ven_id], market_context="http://m.example/ctx?a=1&b=2",
                        vtn_comment="shed <5 kW> & ramp")
    # Text no XML document can carry, and a signalType outside the 2.0b enumeration.
    control = make_event("evt-control", [client.ven_id], signal_name="x\x01y")
    bad_type = make_event("evt-badtype", [client.ven_id], signal_type="not-a-type")
    for event in (control, bad_type, markup):
        await put_event(bus, event)

    payload = await poll_until_events(client)
    delivered = {e["event_descriptor"]["event_id"]: e for e in payload["events"]}
    assert set(delivered) == {"evt-markup"}
    d = delivered["evt-markup"]["event_descriptor"]
    assert d["market_context"] == "http://m.example/ctx?a=1&b=2"
    assert d["vtn_comment"] == "shed <5 kW> & ramp"
    assert (await gateway_health(gateway)) == 200


async def gateway_health(gateway) -> int:
    async with aiohttp.ClientSession() as s:
        async with s.get(gateway.vtn_url.split("/OpenADR2")[0] + "/health") as r:
            return r.status
