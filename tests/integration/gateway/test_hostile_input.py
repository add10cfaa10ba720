"""Hostile and broken input is answered with the right status and the gateway keeps serving."""

from __future__ import annotations

import aiohttp
import pytest
from openleadr.messaging import create_message

DOCTYPE_BOMB = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>'
    '<oadr:oadrPayload xmlns:oadr="http://openadr.org/oadr-2.0b/2012/07"><oadr:oadrSignedObject>'
    '<oadr:oadrPoll ei:schemaVersion="2.0b" xmlns:ei="http://docs.oasis-open.org/ns/energyinterop/201110">'
    "<ei:venID>&a;</ei:venID></oadr:oadrPoll></oadr:oadrSignedObject></oadr:oadrPayload>"
)


def query_registration() -> str:
    return create_message("oadrQueryRegistration", request_id="q-1")


async def post(url: str, body, content_type="application/xml", **kwargs):
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=body, headers={"Content-Type": content_type}, **kwargs) as r:
            return r.status, await r.text()


async def assert_still_serving(gateway):
    status, text = await post(f"{gateway.vtn_url}/EiRegisterParty", query_registration())
    assert status == 200 and "oadrCreatedPartyRegistration" in text
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{gateway.port}/health") as r:
            assert r.status == 200 and (await r.json())["nats"] == "connected"


@pytest.mark.parametrize("body", [
    DOCTYPE_BOMB,
    "\ufeff  \n" + DOCTYPE_BOMB.replace("<?xml version=\"1.0\"?>", "").replace("DOCTYPE", "doctype"),
    '<?xml version="1.0"?><!ENTITY a "b"><x/>',
    DOCTYPE_BOMB.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-7"?>')
                .replace("<!DOCTYPE", "+ADw-!DOCTYPE"),
], ids=["doctype", "bom-lowercase-doctype", "entity", "utf7-disguise"])
async def test_dtd_is_refused_before_parsing(gateway, body):
    for service in ("OadrPoll", "EiRegisterParty", "EiEvent", "EiReport"):
        status, text = await post(f"{gateway.vtn_url}/{service}", body.encode("utf-8"))
        assert status == 400, (service, status, text)
    await assert_still_serving(gateway)


async def test_oversized_bodies_get_413(gateway):
    big = b"<x>" + b"a" * (2 * 1024 * 1024) + b"</x>"
    status, _ = await post(f"{gateway.vtn_url}/OadrPoll", big)
    assert status == 413

    async def chunked():  # no Content-Length: the limit must hold while reading
        for _ in range(64):
            yield b"a" * 32768

    status, _ = await post(f"{gateway.vtn_url}/OadrPoll", chunked())
    assert status == 413
    await assert_still_serving(gateway)


async def test_wrong_content_type_gets_415_and_text_xml_is_accepted(gateway):
    status, _ = await post(f"{gateway.vtn_url}/EiRegisterParty", query_registration(), "text/plain")
    assert status == 415
    status, _ = await post(f"{gateway.vtn_url}/EiRegisterParty", query_registration(), "application/json")
    assert status == 415
    status, text = await post(f"{gateway.vtn_url}/EiRegisterParty", query_registration(), "text/xml; charset=utf-8")
    assert status == 200 and "oadrCreatedPartyRegistration" in text
    status, text = await post(f"{gateway.vtn_url}/EiRegisterParty", query_registration(),
                              "Application/XML;charset=UTF-8")
    assert status == 200 and "oadrCreatedPartyRegistration" in text


async def test_garbage_xml_is_a_clean_error(gateway):
    status, _ = await post(f"{gateway.vtn_url}/OadrPoll", b"<not-openadr/>")
    assert status == 400
    status, _ = await post(f"{gateway.vtn_url}/OadrPoll", b"\xff\xfe<\x00x\x00/\x00>\x00")
    assert status == 400
    await assert_still_serving(gateway)


@pytest.mark.parametrize("bad_id", ["ven.1", "ven-*", "ven->", "a b"])
async def test_ven_ids_that_cannot_be_subject_tokens_get_an_openadr_error(gateway, vens, bad_id):
    client = vens("bad-id", gateway.vtn_url, ven_id=bad_id)
    response_type, payload = await client.poll()
    assert response_type == "oadrResponse"
    assert payload["response"]["response_code"] == 452, payload
    assert "invalid venID" in payload["response"]["response_description"]
    response_type, payload = await client.request_event()
    assert payload["response"]["response_code"] == 452
    await assert_still_serving(gateway)


async def test_event_ids_that_cannot_be_subject_tokens_get_an_openadr_error(gateway, bus, vens):
    good = vens("good-id", gateway.vtn_url)
    await good.create_party_registration()
    message = create_message("oadrCreatedEvent", ven_id=good.ven_id,
                             response={"response_code": 200, "response_description": "OK", "request_id": "r"},
                             event_responses=[{"response_code": 200, "response_description": "OK",
                                               "request_id": "r", "event_id": "evt.*", "modification_number": 0,
                                               "opt_type": "optIn"}])
    response_type, payload = await good._perform_request("EiEvent", message)
    assert payload["response"]["response_code"] == 452
    assert await bus.stored(f"{bus.subjects.prefix}.ven.*.opt") == []
    await assert_still_serving(gateway)



async def test_refusals_are_counted_on_health_not_logged_one_by_one(gateway, caplog):
    async def refused() -> dict:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{gateway.port}/health") as r:
                return (await r.json())["refused"]

    assert await refused() == {}
    caplog.set_level("INFO", logger="adrstack.gateway")
    for _ in range(3):
        assert (await post(f"{gateway.vtn_url}/OadrPoll", DOCTYPE_BOMB.encode()))[0] == 400
    assert (await post(f"{gateway.vtn_url}/OadrPoll", b"<truncated"))[0] == 400
    assert (await post(f"{gateway.vtn_url}/OadrPoll", query_registration(), "text/plain"))[0] == 415
    assert await refused() == {"hostile_xml": 3, "unreadable_xml": 1, "content_type": 1}
    assert not [r for r in caplog.records if r.levelno >= 20 and r.name.startswith("adrstack.gateway.server")]
