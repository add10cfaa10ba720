"""VTN-initiated registration steps from GraphQL, through a real gateway, to a real openleadr VEN."""

from __future__ import annotations

import socket

from openleadr import OpenADRClient

from adrstack.gateway.app import Gateway
from adrstack.gateway.settings import GatewaySettings

from .helpers import gql

CANCEL = "mutation($v: String!) { cancelVenRegistration(venId: $v) { venId pendingAction } }"
REREGISTER = "mutation($v: String!) { requestVenReregistration(venId: $v) { venId pendingAction } }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def with_gateway(api_settings, body):
    gateway = Gateway(GatewaySettings(**api_settings.model_dump(), vtn_host="127.0.0.1", vtn_port=free_port()))
    await gateway.start()
    ven = OpenADRClient(ven_name="operated-on", vtn_url=gateway.vtn_url)
    try:
        await ven.create_party_registration()
        assert ven.ven_id
        await body(ven)
    finally:
        if ven.client_session is not None:
            await ven.client_session.close()
        await gateway.stop()


async def test_cancel_registration_reaches_the_ven_on_its_next_poll(client, api_settings):
    async def body(ven):
        data = await gql(client, CANCEL, {"v": ven.ven_id})
        assert data["data"]["cancelVenRegistration"] == {"venId": ven.ven_id, "pendingAction": "cancel"}, data
        response_type, payload = await ven.poll()
        assert response_type == "oadrCancelPartyRegistration" and payload["ven_id"] == ven.ven_id

    await with_gateway(api_settings, body)


async def test_reregistration_reaches_the_ven_and_unknown_vens_are_refused(client, api_settings):
    async def body(ven):
        data = await gql(client, REREGISTER, {"v": ven.ven_id})
        assert data["data"]["requestVenReregistration"]["pendingAction"] == "reregister", data
        assert (await ven.poll())[0] == "oadrRequestReregistration"
        data = await gql(client, REREGISTER, {"v": "ven-nobody0000"})
        [error] = data["errors"]
        assert error["extensions"] == {"code": "UNKNOWN_VEN", "field": "venId"}
        data = await gql(client, CANCEL, {"v": "not a token"})
        assert data["errors"][0]["extensions"]["code"] == "INVALID"

    await with_gateway(api_settings, body)


async def test_without_a_gateway_the_mutation_says_unavailable(client):
    data = await gql(client, CANCEL, {"v": "ven-anyone00000"})
    [error] = data["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE" and "gateway" in error["message"]
