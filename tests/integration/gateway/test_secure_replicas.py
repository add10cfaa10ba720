"""Two gateway replicas serve the same VENs with certificate identity: what one learns (a
registration, a deprovisioning) the other enforces. A load balancer may send any of a VEN's
connections to either; here the test picks the replica by its port."""

from __future__ import annotations

import pytest

from adrstack.gateway.app import Gateway
from adrstack.gateway.settings import GatewaySettings
from tests.helpers import eventually

from .conftest import free_port
from .secure import CertDir, deprovision, provision
from .test_secure_identity import poll_body, post, registration_body, response_code


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> CertDir:
    return CertDir(tmp_path_factory.mktemp("certs"), ("alpha", "beta"))


async def start_replicas(isolated_settings, certs, ports: list[int], **extra) -> list[Gateway]:
    gateways = []
    try:
        for port in ports:
            gateway = Gateway(GatewaySettings(**isolated_settings.model_dump(), vtn_host="127.0.0.1", vtn_port=port,
                                              enrollment="provisioned", poll_interval=1.0,
                                              **certs.gateway_settings(), **extra))
            await gateway.start()
            gateways.append(gateway)
    except BaseException:
        for gateway in gateways:
            await gateway.stop()
        raise
    return gateways


@pytest.fixture
async def replicas(isolated_settings, certs):
    gateways = await start_replicas(isolated_settings, certs, [free_port(), free_port()])
    yield gateways
    for gateway in gateways:
        await gateway.stop()


async def test_two_replicas_share_one_port(isolated_settings, certs):
    port = free_port()
    gateways = await start_replicas(isolated_settings, certs, [port, port], reuse_port=True)
    try:
        alpha = certs.ven("alpha")
        await provision(gateways[0].settings, alpha)
        ctx = certs.client_context(alpha)
        # Either replica may take a connection; every one is answered the same way.
        for _ in range(6):
            reply = await post(gateways[0], ctx, "OadrPoll", poll_body("not-registered-yet"))
            assert reply.status == 200 and "oadrRequestReregistration" in reply.text
    finally:
        for gateway in gateways:
            await gateway.stop()


async def test_a_ven_registered_through_one_replica_is_authenticated_by_the_other(replicas, certs):
    a, b = replicas
    alpha, beta = certs.ven("alpha"), certs.ven("beta")
    await provision(a.settings, alpha)
    await provision(a.settings, beta)
    alpha_ctx, beta_ctx = certs.client_context(alpha), certs.client_context(beta)

    registered = await post(a, alpha_ctx, "EiRegisterParty", registration_body("alpha"))
    assert response_code(registered) == 200
    text = registered.text
    ven_id = text[text.index("<ei:venID>") + len("<ei:venID>"):text.index("</ei:venID>")]
    beta_registered = await post(b, beta_ctx, "EiRegisterParty", registration_body("beta"))
    assert response_code(beta_registered) == 200

    # B knows the binding at once (its mirror or, on a miss, KV) ...
    assert response_code(await post(b, alpha_ctx, "OadrPoll", poll_body(ven_id))) == 200
    # ... and refuses the venID over another certificate.
    assert response_code(await post(b, beta_ctx, "OadrPoll", poll_body(ven_id))) == 463

    # Deprovisioned through the api's bucket: both replicas refuse from then on.
    await deprovision(a.settings, alpha)
    for gateway in (a, b):
        async def refused(gateway=gateway):
            return response_code(await post(gateway, alpha_ctx, "OadrPoll", poll_body(ven_id))) == 463
        await eventually(refused, message=f"replica on {gateway.port} refuses the deprovisioned certificate")
