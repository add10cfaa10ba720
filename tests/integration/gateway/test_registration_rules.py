"""The 2.0b EiRegisterParty rules (../shared/openadr-2.0b-vtn-rules.md), each from the VEN side with
real openleadr clients: N1_0010, 0025, 0030, 0040, 0050, 0065, 0070 and the poll frequency."""

from __future__ import annotations

from datetime import timedelta

import nats
from openleadr.messaging import create_message

from adrstack.gateway.app import Gateway
from adrstack.shared import kv_keys
from adrstack.shared.messages import VenActionCommand, VenActionReply
from tests.helpers import eventually


async def command(gateway, action: str, ven_id: str) -> VenActionReply:
    nc = await nats.connect(gateway.settings.nats_url)
    try:
        msg = await nc.request(gateway.settings.subjects.cmd_ven(action),
                               VenActionCommand(ven_id=ven_id).to_bytes(), timeout=5)
        return VenActionReply.model_validate_json(msg.data)
    finally:
        await nc.close()


async def test_query_from_an_unregistered_ven_gets_no_ids_but_profiles_and_transports(gateway, vens):
    client = vens("just-asking", gateway.vtn_url)
    response_type, payload = await client.query_registration()
    assert response_type == "oadrCreatedPartyRegistration"
    assert payload["response"]["response_code"] == 200
    assert not payload.get("ven_id") and not payload.get("registration_id")
    assert payload["vtn_id"] == gateway.settings.vtn_id
    assert payload["profiles"] == [{"profile_name": "2.0b", "transports": [{"transport_name": "simpleHttp"}]}]


async def test_pull_vens_get_the_poll_frequency(gateway, vens):
    client = vens("puller", gateway.vtn_url)
    _, payload = await client.create_party_registration()
    assert payload["requested_oadr_poll_freq"] == timedelta(seconds=gateway.settings.poll_interval)


async def test_a_preallocated_ven_id_is_echoed(gateway, bus, vens):
    client = vens("preallocated", gateway.vtn_url, ven_id="site-42-meter")
    await client.create_party_registration(ven_id=client.ven_id)
    assert client.ven_id == "site-42-meter" and client.registration_id
    record = await bus.kv_json(kv_keys.ven_key("site-42-meter"))
    assert record["ven_name"] == "preallocated"
    assert (await client.poll())[0] == "oadrResponse"


async def test_reregistering_with_the_current_ids_echoes_them(gateway, vens):
    client = vens("steady", gateway.vtn_url)
    await client.create_party_registration()
    ven_id, registration_id = client.ven_id, client.registration_id
    await client.create_party_registration(ven_id=ven_id, registration_id=registration_id)
    assert (client.ven_id, client.registration_id) == (ven_id, registration_id)


def registration(name: str, **ids) -> str:
    return create_message("oadrCreatePartyRegistration", request_id="r-1", ven_name=name, http_pull_model=True,
                          xml_signature=False, report_only=False, profile_name="2.0b", transport_name="simpleHttp",
                          transport_address=None, **{"ven_id": None, "registration_id": None, **ids})


async def test_a_ven_id_of_another_ven_or_a_wrong_registration_id_is_refused(gateway, vens):
    owner = vens("owner", gateway.vtn_url)
    await owner.create_party_registration()
    response_type, payload = await owner._perform_request("EiRegisterParty", registration("thief", ven_id=owner.ven_id))
    assert response_type == "oadrCreatedPartyRegistration"
    assert payload["response"]["response_code"] == 452 and not payload.get("registration_id")
    _, payload = await owner._perform_request(
        "EiRegisterParty", registration("owner", ven_id=owner.ven_id, registration_id="reg-not-mine"))
    assert payload["response"]["response_code"] == 452


async def test_cancel_with_a_wrong_registration_id_or_ven_id_is_452(gateway, bus, vens):
    client = vens("careful", gateway.vtn_url)
    await client.create_party_registration()
    for ven_id, registration_id in ((client.ven_id, "reg-wrong"), ("ven-unknown000", client.registration_id),
                                    (None, "reg-nobody-has")):
        message = create_message("oadrCancelPartyRegistration", request_id="c-1", ven_id=ven_id or "X",
                                 registration_id=registration_id).replace("<ei:venID>X</ei:venID>", "")
        response_type, payload = await client._perform_request("EiRegisterParty", message)
        assert response_type == "oadrCanceledPartyRegistration"
        assert payload["response"]["response_code"] == 452, (ven_id, registration_id, payload)
    assert await bus.kv_json(kv_keys.ven_key(client.ven_id)) is not None, "a refused cancel removed the VEN"
    # By registrationID alone (venID is optional in oadrCancelPartyRegistration; openleadr's
    # template always writes one, so the element is taken out).
    message = create_message("oadrCancelPartyRegistration", request_id="c-2", ven_id="X",
                             registration_id=client.registration_id).replace("<ei:venID>X</ei:venID>", "")
    response_type, payload = await client._perform_request("EiRegisterParty", message)
    assert payload["response"]["response_code"] == 200 and payload["ven_id"] == client.ven_id
    assert await bus.kv_json(kv_keys.ven_key(client.ven_id)) is None


def push_registration(name: str, address: str | None) -> str:
    return create_message("oadrCreatePartyRegistration", request_id="r-1", ven_name=name,
                          http_pull_model=False, xml_signature=False, report_only=False, profile_name="2.0b",
                          transport_name="simpleHttp", transport_address=address,
                          ven_id=None, registration_id=None)


async def test_push_vens_register_with_an_absolute_http_transport_address(gateway, bus, vens):
    client = vens("pusher", gateway.vtn_url)
    _, payload = await client._perform_request("EiRegisterParty",
                                               push_registration("pusher", "http://ven.example:8081/oadr/"))
    assert payload["response"]["response_code"] == 200 and payload["ven_id"]
    record = await bus.kv_json(kv_keys.ven_key(payload["ven_id"]))
    assert record["http_pull_model"] is False and record["transport_address"] == "http://ven.example:8081/oadr/"
    fact = await eventually(lambda: bus.last(bus.subjects.ven_registered(payload["ven_id"])), 5, message="fact")
    assert fact["http_pull_model"] is False
    # A pull VEN is still a pull VEN (the default is untouched).
    puller = vens("puller", gateway.vtn_url)
    await puller.create_party_registration()
    assert (await bus.kv_json(kv_keys.ven_key(puller.ven_id)))["http_pull_model"] is True


async def test_push_vens_without_a_usable_transport_address_are_refused_with_454(gateway, bus, vens):
    client = vens("bad-pusher", gateway.vtn_url)
    for address in (None, "ven.example:8081", "/relative/path", "ftp://ven.example/", "http://",
                    "http://user:secret@ven.example/", "http://ven.example:99999/",
                    "http://ven.example/" + "a" * 2100):
        _, payload = await client._perform_request("EiRegisterParty", push_registration("bad-pusher", address))
        assert payload["response"]["response_code"] == 454, (address, payload)
        assert "oadrTransportAddress" in payload["response"]["response_description"], address
        assert not payload.get("registration_id")
    assert await bus.kv_json(kv_keys.ven_name_key("bad-pusher")) is None


async def test_vtn_initiated_cancel_is_delivered_through_the_poll(gateway, bus, vens):
    client = vens("to-be-cancelled", gateway.vtn_url)
    await client.create_party_registration()
    ven_id, registration_id = client.ven_id, client.registration_id
    reply = await command(gateway, "cancel", ven_id)
    assert reply.ok and reply.pending_action == "cancel"

    # openleadr's own poll loop step: it answers oadrCancelPartyRegistration with
    # oadrCanceledPartyRegistration, and the VTN then deregisters it.
    response_type, payload = await client.poll()
    assert response_type == "oadrCancelPartyRegistration"
    assert (payload["registration_id"], payload["ven_id"]) == (registration_id, ven_id)
    await client.on_cancel_party_registration(payload)
    fact = await eventually(lambda: bus.last(bus.subjects.ven_deregistered(ven_id)), 5, message="deregistered")
    assert fact["registration_id"] == registration_id
    assert await bus.kv_json(kv_keys.ven_key(ven_id)) is None
    assert (await client.poll())[0] == "oadrRequestReregistration"


async def test_vtn_initiated_reregistration_is_delivered_through_the_poll(gateway, bus, vens):
    client = vens("to-reregister", gateway.vtn_url)
    await client.create_party_registration()
    ven_id = client.ven_id
    assert (await command(gateway, "reregister", ven_id)).ok
    # Until it registers again, every poll says so.
    for _ in range(2):
        assert (await client.poll())[0] == "oadrRequestReregistration"
    await client.create_party_registration(ven_id=ven_id)
    assert client.ven_id == ven_id
    facts = await bus.stored(bus.subjects.ven_registered(ven_id))
    assert [f["reregistration"] for f in facts] == [False, True]
    assert (await client.poll())[0] == "oadrResponse"


async def test_ven_commands_for_unknown_or_malformed_vens_are_refused(gateway):
    reply = await command(gateway, "cancel", "ven-nobody00000")
    assert not reply.ok and reply.error.code == "unknown_ven"
    nc = await nats.connect(gateway.settings.nats_url)
    try:
        msg = await nc.request(gateway.settings.subjects.cmd_ven("reregister"), b'{"ven_id": "a.b"}', timeout=5)
    finally:
        await nc.close()
    reply = VenActionReply.model_validate_json(msg.data)
    assert not reply.ok and reply.error.code == "invalid"


async def test_a_step_requested_through_one_replica_is_delivered_by_the_other(gateway_settings, bus, vens):
    a = Gateway(gateway_settings)
    b = Gateway(gateway_settings.model_copy(update={"vtn_port": 0}))
    await a.start()
    await b.start()
    try:
        via_a = vens("two-replicas", a.vtn_url)
        await via_a.create_party_registration()
        # Whichever replica takes the command, the other one serves the poll.
        reply = await command(a, "reregister", via_a.ven_id)
        assert reply.ok
        via_b = vens("two-replicas", b.vtn_url, ven_id=via_a.ven_id)

        async def told():
            return (await via_b.poll())[0] == "oadrRequestReregistration"

        await eventually(told, 5, message="replica B sends the re-registration request")
    finally:
        await a.stop()
        await b.stop()
