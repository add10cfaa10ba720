"""XML signatures at the gateway: verified when present, required when configured, answers signed
when configured, and a signed message accepted once — across a restart and across replicas."""

from __future__ import annotations

import pytest
from openleadr.messaging import create_message

from adrstack.gateway.app import Gateway
from adrstack.gateway.settings import GatewaySettings

from .conftest import free_port
from .secure import CertDir, provision
from .test_secure_identity import post, response_code


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> CertDir:
    return CertDir(tmp_path_factory.mktemp("certs"), ("alpha", "beta"))


def settings_for(isolated_settings, certs, **extra) -> GatewaySettings:
    return GatewaySettings(**isolated_settings.model_dump(), vtn_host="127.0.0.1", vtn_port=free_port(),
                           poll_interval=1.0, enrollment="provisioned", **certs.gateway_settings(), **extra)


async def started(settings: GatewaySettings) -> Gateway:
    gateway = Gateway(settings)
    await gateway.start()
    return gateway


@pytest.fixture
async def strict(isolated_settings, certs):
    """Signatures required; answers signed with the VTN's RSA certificate."""
    gateway = await started(settings_for(isolated_settings, certs, require_signatures=True,
                                         sign_cert=certs.path("vtn-rsa.crt"), sign_key=certs.path("vtn-rsa.key")))
    yield gateway
    await gateway.stop()


def signed(message_type: str, ven, **payload) -> bytes:
    with open(ven.cert, "rb") as c, open(ven.key, "rb") as k:
        return create_message(message_type, cert=c.read(), key=k.read(), **payload).encode()


async def register(gateway, certs, name: str) -> str:
    ven = certs.ven(name)
    await provision(gateway.settings, ven)
    body = signed("oadrCreatePartyRegistration", ven, request_id="reg", ven_name=name, profile_name="2.0b",
                  transport_name="simpleHttp", transport_address=None, report_only=False, xml_signature=True,
                  http_pull_model=True)
    reply = await post(gateway, certs.client_context(ven), "EiRegisterParty", body)
    assert response_code(reply) == 200, reply.text
    return reply.text[reply.text.index("<ei:venID>") + 10:reply.text.index("</ei:venID>")]


async def test_openleadr_vens_sign_and_verify_the_vtns_signed_answers(strict, vens, certs):
    alpha = certs.ven("alpha")
    await provision(strict.settings, alpha)
    vtn_fingerprint = certs.ven("vtn-rsa").fingerprint
    client = vens("alpha", f"https://localhost:{strict.port}/OpenADR2/Simple/2.0b", cert=alpha.cert,
                  key=alpha.key, ca_file=certs.ca, show_fingerprint=False, vtn_fingerprint=vtn_fingerprint)
    await client.create_party_registration()
    assert client.ven_id  # the VEN checked our signature on the answer against the VTN's fingerprint
    assert (await client.poll())[0] == "oadrResponse"


async def test_an_answer_signed_by_another_certificate_is_rejected_by_the_ven(strict, vens, certs):
    # The negative control of the test above: openleadr refuses our answer when it expects another VTN.
    alpha = certs.ven("alpha")
    await provision(strict.settings, alpha)
    client = vens("alpha", f"https://localhost:{strict.port}/OpenADR2/Simple/2.0b", cert=alpha.cert,
                  key=alpha.key, ca_file=certs.ca, show_fingerprint=False,
                  vtn_fingerprint=certs.ven("beta").fingerprint)
    await client.create_party_registration()
    assert client.ven_id is None


async def test_unsigned_messages_get_463_when_signatures_are_required(strict, certs):
    ven_id = await register(strict, certs, "alpha")
    ctx = certs.client_context(certs.ven("alpha"))
    unsigned = create_message("oadrPoll", ven_id=ven_id).encode()
    for _ in range(3):  # also once the reader knows the poll's shape (its parser-free path)
        reply = await post(strict, ctx, "OadrPoll", unsigned)
        assert reply.status == 200 and response_code(reply) == 463
    assert strict.server.refused["unsigned"] == 3


async def test_a_signed_message_is_accepted_once(strict, certs):
    ven_id = await register(strict, certs, "alpha")
    alpha = certs.ven("alpha")
    ctx = certs.client_context(alpha)
    poll = signed("oadrPoll", alpha, ven_id=ven_id)
    first = await post(strict, ctx, "OadrPoll", poll)
    assert response_code(first) == 200
    assert "SignatureValue>" in first.text  # the answer is signed
    again = await post(strict, ctx, "OadrPoll", poll)
    assert response_code(again) == 463 and "replay" in again.text


async def test_a_message_signed_with_another_certificate_is_refused(strict, certs):
    ven_id = await register(strict, certs, "alpha")
    await register(strict, certs, "beta")
    # alpha's poll, signed by beta, sent over alpha's connection.
    body = signed("oadrPoll", certs.ven("beta"), ven_id=ven_id)
    reply = await post(strict, certs.client_context(certs.ven("alpha")), "OadrPoll", body)
    assert response_code(reply) == 463
    assert strict.server.refused["foreign_signature"] == 1


async def test_a_tampered_message_is_refused(strict, certs):
    ven_id = await register(strict, certs, "alpha")
    alpha = certs.ven("alpha")
    body = signed("oadrPoll", alpha, ven_id=ven_id)
    tampered = body.replace(ven_id.encode(), (ven_id[:-1] + ("0" if ven_id[-1] != "0" else "1")).encode())
    reply = await post(strict, certs.client_context(alpha), "OadrPoll", tampered)
    assert response_code(reply) == 463
    assert strict.server.refused["bad_signature"] == 1


async def test_a_replay_is_refused_after_a_restart_and_by_another_replica(isolated_settings, certs):
    settings = settings_for(isolated_settings, certs)
    first = await started(settings)
    try:
        ven_id = await register(first, certs, "alpha")
        alpha = certs.ven("alpha")
        ctx = certs.client_context(alpha)
        poll = signed("oadrPoll", alpha, ven_id=ven_id)
        assert response_code(await post(first, ctx, "OadrPoll", poll)) == 200
        other = await started(settings_for(isolated_settings, certs))  # a second replica
        try:
            assert response_code(await post(other, ctx, "OadrPoll", poll)) == 463
            fresh = signed("oadrPoll", alpha, ven_id=ven_id)
            assert response_code(await post(other, ctx, "OadrPoll", fresh)) == 200
        finally:
            await other.stop()
    finally:
        await first.stop()
    restarted = await started(settings_for(isolated_settings, certs))
    try:
        assert response_code(await post(restarted, ctx, "OadrPoll", poll)) == 463
    finally:
        await restarted.stop()
