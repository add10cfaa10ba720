"""The gateway on the internet: mutual TLS with both 2.0b suites, and a VEN that is its certificate.

Real TLS handshakes against a real Gateway (real NATS), real openleadr VENs with their own
certificates, raw TLS clients for what openleadr will not send."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from openleadr.messaging import create_message

from adrstack.gateway.app import Gateway, SecurityConfigError
from adrstack.gateway.settings import VTN_PATH, GatewaySettings
from adrstack.shared import kv_keys
from tests.helpers import eventually

from . import rawhttp
from .conftest import free_port
from .secure import CertDir, deprovision, provision

VEN_NAMES = ("alpha", "beta", "gamma", "stranger")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> CertDir:
    return CertDir(tmp_path_factory.mktemp("certs"), VEN_NAMES)


@pytest.fixture
def secure_settings(isolated_settings, certs) -> GatewaySettings:
    return GatewaySettings(**isolated_settings.model_dump(), vtn_host="127.0.0.1", vtn_port=free_port(),
                           poll_interval=1.0, report_interval=1.0, enrollment="provisioned",
                           **certs.gateway_settings())


@pytest.fixture
async def secure_gateway(secure_settings):
    gw = Gateway(secure_settings)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


def url(gateway: Gateway) -> str:
    # The VTN certificates name localhost: openleadr checks the host name.
    return f"https://localhost:{gateway.port}{VTN_PATH}"


@pytest.fixture
def ven_client(vens, certs, secure_gateway):
    def make(cert_name: str, ven_name: str | None = None, **kwargs):
        ven = certs.ven(cert_name)
        return vens(ven_name or cert_name, url(secure_gateway), cert=ven.cert, key=ven.key, ca_file=certs.ca,
                    show_fingerprint=False, **kwargs)
    return make


def http_post(service: str, body: bytes) -> bytes:
    return (f"POST {VTN_PATH}/{service} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def post(gateway: Gateway, ctx: ssl.SSLContext, service: str, body: bytes) -> rawhttp.Reply:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port, ssl=ctx, server_hostname="localhost")
    try:
        writer.write(http_post(service, body))
        await writer.drain()
        return await asyncio.wait_for(rawhttp.read_reply(reader), 10)
    finally:
        writer.close()


def poll_body(ven_id: str) -> bytes:
    return create_message("oadrPoll", ven_id=ven_id).encode()


def response_code(reply: rawhttp.Reply) -> int:
    text = reply.text
    start = text.index("<ei:responseCode>") + len("<ei:responseCode>")
    return int(text[start:text.index("</ei:responseCode>")])


def response_description(reply: rawhttp.Reply) -> str:
    text = reply.text
    start = text.find("<ei:responseDescription>")
    return "" if start < 0 else text[start + len("<ei:responseDescription>"):text.index("</ei:responseDescription>")]


# ---------------------------------------------------------------------------- handshakes


@pytest.mark.parametrize("suite, tls_name", [
    ("ECDHE-ECDSA-AES128-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    ("AES128-SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA256"),
])
async def test_both_2_0b_suites_are_served_at_tls_1_2(secure_gateway, secure_settings, certs, suite, tls_name):
    alpha = certs.ven("alpha")
    await provision(secure_settings, alpha)
    ctx = certs.client_context(alpha, ciphers=suite, version=ssl.TLSVersion.TLSv1_2)
    reader, writer = await asyncio.open_connection("127.0.0.1", secure_gateway.port, ssl=ctx,
                                                   server_hostname="localhost")
    try:
        name, version, _ = writer.get_extra_info("ssl_object").cipher()
        assert (name, version) == (suite, "TLSv1.2"), tls_name
        # The RSA suite is answered with the RSA certificate, the ECDSA one with the ECC certificate.
        server_cert = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        expected = certs.path("vtn-rsa.crt" if suite == "AES128-SHA256" else "vtn-ecc.crt")
        assert server_cert == ssl.PEM_cert_to_DER_cert(open(expected).read())
        writer.write(http_post("OadrPoll", poll_body("nobody-yet")))
        reply = await asyncio.wait_for(rawhttp.read_reply(reader), 10)
        assert reply.status == 200 and "oadrRequestReregistration" in reply.text
    finally:
        writer.close()


async def test_tls_1_3_is_served(secure_gateway, certs):
    ctx = certs.client_context(certs.ven("alpha"), version=ssl.TLSVersion.TLSv1_3)
    _, writer = await asyncio.open_connection("127.0.0.1", secure_gateway.port, ssl=ctx, server_hostname="localhost")
    try:
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
    finally:
        writer.close()


async def refused_handshake(gateway: Gateway, ctx: ssl.SSLContext) -> BaseException:
    """Connect and send a poll; the handshake (or, with TLS 1.3, the first read) must fail."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port, ssl=ctx, server_hostname="localhost")
    except (ssl.SSLError, ConnectionError) as e:
        return e
    try:
        # TLS 1.3 clients finish their side before the server checks the certificate: the
        # refusal arrives as an alert on the first read.
        writer.write(http_post("OadrPoll", poll_body("x")))
        try:
            data = await asyncio.wait_for(reader.read(), 10)
        except (ssl.SSLError, ConnectionError) as e:
            return e
        if data == b"":
            return ConnectionAbortedError("closed without an answer")
        pytest.fail(f"the gateway answered a refused client: {data[:200]!r}")
    finally:
        writer.close()


async def test_a_client_without_a_certificate_is_refused(secure_gateway, certs):
    error = await refused_handshake(secure_gateway, certs.client_context(None))
    assert "CERTIFICATE" in str(error).upper() or isinstance(error, ConnectionError)


async def test_a_certificate_from_another_ca_is_refused(secure_gateway, tmp_path):
    other = CertDir(tmp_path / "other", ("mallory",))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # mallory trusts anything; the gateway must not trust mallory
    mallory = other.ven("mallory")
    ctx.load_cert_chain(mallory.cert, mallory.key)
    error = await refused_handshake(secure_gateway, ctx)
    assert "UNKNOWN_CA" in str(error).upper() or "CERTIFICATE" in str(error).upper() or isinstance(error, ConnectionError)


async def test_tls_1_1_is_refused(secure_gateway, certs):
    ctx = certs.client_context(certs.ven("alpha"))
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _, writer = await asyncio.open_connection("127.0.0.1", secure_gateway.port, ssl=ctx,
                                                  server_hostname="localhost")
        writer.close()


async def test_plain_http_gets_no_answer_on_the_tls_port(secure_gateway):
    reader, writer = await asyncio.open_connection("127.0.0.1", secure_gateway.port)
    try:
        writer.write(http_post("OadrPoll", poll_body("x")))
        data = await rawhttp.read_until_closed(reader, 10)
    finally:
        writer.close()
    assert b"oadr" not in data and not data.startswith(b"HTTP/1.1 200")


# ---------------------------------------------------------------------------- identity


async def test_a_provisioned_certificate_registers_polls_and_keeps_its_ven_id(secure_gateway, secure_settings,
                                                                                 ven_client, certs, bus):
    alpha = certs.ven("alpha")
    await provision(secure_settings, alpha)
    client = ven_client("alpha")
    await client.create_party_registration()
    ven_id, registration_id = client.ven_id, client.registration_id
    assert ven_id and registration_id
    record = await bus.kv_json(kv_keys.ven_key(ven_id))
    assert record["fingerprint"] == alpha.fingerprint and record["ven_name"] == "alpha"
    assert (await client.poll())[0] == "oadrResponse"

    again = ven_client("alpha")  # the same certificate, holding no ids (N1_0060)
    await again.create_party_registration()
    assert again.ven_id == ven_id
    assert again.registration_id != registration_id


async def test_a_registered_certificate_queries_its_own_ids(secure_gateway, secure_settings, ven_client, certs):
    await provision(secure_settings, certs.ven("alpha"))
    client = ven_client("alpha")
    await client.create_party_registration()
    _, payload = await ven_client("alpha").query_registration()
    assert (payload["ven_id"], payload["registration_id"]) == (client.ven_id, client.registration_id)


def registration_body(ven_name: str, ven_id: str | None = None) -> bytes:
    return create_message("oadrCreatePartyRegistration", request_id="reg-1", ven_name=ven_name, ven_id=ven_id,
                          profile_name="2.0b", transport_name="simpleHttp", transport_address=None,
                          report_only=False, xml_signature=False, http_pull_model=True).encode()


async def test_an_unprovisioned_certificate_cannot_register(secure_gateway, ven_client, certs):
    client = ven_client("stranger")
    await client.create_party_registration()
    assert client.ven_id is None
    reply = await post(secure_gateway, certs.client_context(certs.ven("stranger")), "EiRegisterParty",
                       registration_body("stranger"))
    assert response_code(reply) == 463 and "<ei:venID>" not in reply.text


async def test_another_certificate_cannot_take_a_ven_name_or_id(secure_gateway, secure_settings, ven_client, certs):
    await provision(secure_settings, certs.ven("alpha"))
    await provision(secure_settings, certs.ven("beta"))
    alpha = ven_client("alpha")
    await alpha.create_party_registration()

    beta_ctx = certs.client_context(certs.ven("beta"))
    by_name = await post(secure_gateway, beta_ctx, "EiRegisterParty", registration_body("alpha"))
    assert response_code(by_name) == 463 and alpha.registration_id not in by_name.text
    by_id = await post(secure_gateway, beta_ctx, "EiRegisterParty", registration_body("beta", ven_id=alpha.ven_id))
    assert response_code(by_id) == 463 and alpha.registration_id not in by_id.text
    # openleadr's VEN is refused the same way.
    client = ven_client("beta", ven_name="alpha")
    await client.create_party_registration()
    assert client.ven_id is None


async def test_a_spoofed_ven_id_gets_463_and_cannot_be_told_from_an_unknown_one(secure_gateway, secure_settings,
                                                                               ven_client, certs):
    """Rule 21 (E1_1080) in provisioned enrollment: a venID that is not the caller's — another
    VEN's or nobody's — gets 463 on oadrPoll and oadrCreatedEvent, indistinguishably."""
    alpha_cert, beta_cert = certs.ven("alpha"), certs.ven("beta")
    await provision(secure_settings, alpha_cert)
    await provision(secure_settings, beta_cert)
    alpha = ven_client("alpha")
    await alpha.create_party_registration()
    beta = ven_client("beta")
    await beta.create_party_registration()

    beta_ctx = certs.client_context(beta_cert)
    spoofed = await post(secure_gateway, beta_ctx, "OadrPoll", poll_body(alpha.ven_id))
    unknown = await post(secure_gateway, beta_ctx, "OadrPoll", poll_body("no-such-ven"))
    assert spoofed.status == unknown.status == 200
    assert response_code(spoofed) == response_code(unknown) == 463
    assert response_description(spoofed) == response_description(unknown)
    # Each answer echoes only what its caller sent.
    assert spoofed.text.replace(alpha.ven_id, "X") == unknown.text.replace("no-such-ven", "X")

    # A forged optOut in alpha's name is refused the same way, and stores nothing.
    opt = create_message("oadrCreatedEvent", response={"response_code": 200, "response_description": "OK",
                                                       "request_id": "r1"},
                         ven_id=alpha.ven_id, event_responses=[{
                             "response_code": 200, "response_description": "OK", "request_id": "r1",
                             "event_id": "evt-1", "modification_number": 0, "opt_type": "optOut"}]).encode()
    forged = await post(secure_gateway, beta_ctx, "EiEvent", opt)
    assert response_code(forged) == 463

    # Beta's own venID still works over beta's certificate.
    own = await post(secure_gateway, beta_ctx, "OadrPoll", poll_body(beta.ven_id))
    assert response_code(own) == 200


async def test_a_provisioned_certificate_whose_ven_is_not_registered_is_asked_to_register(secure_gateway,
                                                                                          secure_settings, certs):
    gamma = certs.ven("gamma")
    await provision(secure_settings, gamma)
    reply = await post(secure_gateway, certs.client_context(gamma), "OadrPoll", poll_body("gamma-old-id"))
    assert reply.status == 200 and "oadrRequestReregistration" in reply.text


async def test_a_deprovisioned_certificate_is_refused_from_then_on(secure_gateway, secure_settings, ven_client, certs):
    alpha_cert = certs.ven("alpha")
    await provision(secure_settings, alpha_cert)
    alpha = ven_client("alpha")
    await alpha.create_party_registration()
    ctx = certs.client_context(alpha_cert)
    assert response_code(await post(secure_gateway, ctx, "OadrPoll", poll_body(alpha.ven_id))) == 200
    await deprovision(secure_settings, alpha_cert)

    async def refused():
        return response_code(await post(secure_gateway, ctx, "OadrPoll", poll_body(alpha.ven_id))) == 463
    await eventually(refused, message="the deprovisioned certificate refused")


async def test_provisioned_enrollment_needs_tls(isolated_settings):
    settings = GatewaySettings(**isolated_settings.model_dump(), vtn_host="127.0.0.1", vtn_port=free_port(),
                               enrollment="provisioned")
    with pytest.raises(SecurityConfigError, match="client certificates"):
        await Gateway(settings).start()


async def test_tls_needs_the_client_ca(isolated_settings, certs):
    config = certs.gateway_settings()
    config.pop("tls_ca")
    settings = GatewaySettings(**isolated_settings.model_dump(), vtn_host="127.0.0.1", vtn_port=free_port(), **config)
    with pytest.raises(SecurityConfigError, match="TLS_CA"):
        await Gateway(settings).start()
