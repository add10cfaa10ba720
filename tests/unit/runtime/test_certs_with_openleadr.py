"""`adrstack certs` files work with openleadr on both ends: its VEN (host name checked against the
CA, the VTN's signatures checked against the printed fingerprint) registers and polls its VTN over
mTLS, the VTN seeing the VEN's fingerprint as ours, and verifying the VEN's signed messages."""

from __future__ import annotations

import shutil

import pytest
from openleadr import OpenADRClient, OpenADRServer
from openleadr.service import VTNService

from adrstack.runtime.certs import ensure_certs
from adrstack.runtime.ports import free_port
from tests.helpers import temp_dir


@pytest.fixture
def restore_openleadr():
    """OpenADRServer configures VTNService's class attributes; later tests must not inherit ours."""
    saved = {k: VTNService.__dict__[k] for k in ("_create_message", "verify_message_signatures", "ven_lookup")
             if k in VTNService.__dict__}
    yield
    for k in ("_create_message", "verify_message_signatures", "ven_lookup"):
        if k in saved:
            setattr(VTNService, k, saved[k])
        elif k in VTNService.__dict__:
            delattr(VTNService, k)


@pytest.mark.parametrize("tls, signing", [("ecc", "rsa"), ("rsa", "ecc")])
async def test_openleadr_ven_and_vtn_over_mtls_with_signatures(restore_openleadr, tls, signing):
    d = temp_dir("certs-openleadr")
    server = client = None
    try:
        c = ensure_certs(d, ["ven-x"])
        tls_pair = c.vtn_ecc if tls == "ecc" else c.vtn_rsa
        sign_pair = c.vtn_ecc if signing == "ecc" else c.vtn_rsa
        vens: dict[str, dict] = {}

        async def on_create_party_registration(payload):
            vens["ven-1"] = {"ven_id": "ven-1", "registration_id": "reg-1", "fingerprint": payload["fingerprint"]}
            return "ven-1", "reg-1"

        port = free_port("127.0.0.1")
        server = OpenADRServer(vtn_id="VTN", http_host="127.0.0.1", http_port=port, http_cert=str(tls_pair.cert),
                               http_key=str(tls_pair.key), http_ca_file=str(c.ca.cert), cert=str(sign_pair.cert),
                               key=str(sign_pair.key), ven_lookup=lambda ven_id: vens.get(ven_id), show_fingerprint=False,
                               verify_message_signatures=True)
        server.add_handler("on_create_party_registration", on_create_party_registration)
        await server.run()
        client = OpenADRClient(ven_name="ven-x", vtn_url=f"https://localhost:{port}/OpenADR2/Simple/2.0b",
                               cert=str(c.vens["ven-x"].cert), key=str(c.vens["ven-x"].key), ca_file=str(c.ca.cert),
                               vtn_fingerprint=sign_pair.fingerprint, show_fingerprint=False)
        await client.create_party_registration()
        assert client.ven_id == "ven-1"
        assert vens["ven-1"]["fingerprint"] == c.vens["ven-x"].fingerprint
        message_type, payload = await client.poll()
        assert message_type == "oadrResponse" and payload["response"]["response_code"] == 200
    finally:
        if client is not None and client.client_session is not None:
            await client.client_session.close()
        if server is not None and hasattr(server, "app_runner"):
            await server.stop()
        shutil.rmtree(d, ignore_errors=True)
