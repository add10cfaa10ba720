"""`adrstack up --secure --demo 2` as a user runs it: the VTN speaks only mutual TLS, the demo VENs
are provisioned through the API and connect with their own certificates (signing their messages),
the API wants the printed token, and a certificate nobody provisioned cannot register."""

from __future__ import annotations

import asyncio
import os
import ssl
import stat
import subprocess
import sys
from typing import Iterator

import httpx
import pytest
from openleadr import OpenADRClient

from tests.conftest import Infra
from tests.e2e.conftest import Stack, isolated_stack
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def secure_stack(infra: Infra) -> Iterator[Stack]:
    with isolated_stack(infra, extra_args=["--secure", "--demo", "2"]) as stack:
        stack.token = stack.banner_value("token:")
        yield stack


def test_the_banner_shows_https_and_the_token_kept_private(secure_stack):
    assert secure_stack.banner_value("VTN") == f"https://localhost:{secure_stack.vtn_port}/OpenADR2/Simple/2.0b"
    token_file = secure_stack.data_dir / "api-token"
    assert token_file.read_text().strip() == secure_stack.token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert all("DEVELOPMENT MODE" not in line for line in secure_stack.output)


def test_the_api_wants_the_token(secure_stack):
    anonymous = httpx.post(f"{secure_stack.api_url}/graphql", json={"query": "{ vens { venId } }"}, timeout=10)
    assert anonymous.status_code == 401
    assert "data" in secure_stack.graphql("{ vens { venId } }")


def test_the_demo_vens_register_over_mtls_and_report(secure_stack):
    def demo_vens():
        vens = secure_stack.graphql("{ vens { venId venName } }")["data"]["vens"]
        demo = [v for v in vens if v["venName"].startswith("demo-ven-")]
        return demo if len(demo) == 2 else None

    vens = wait_until(demo_vens, timeout=60, interval=0.5, message="2 demo VENs registered")
    provisioned = secure_stack.graphql("{ provisionedVens { venName certFingerprint } }")["data"]["provisionedVens"]
    assert sorted(p["venName"] for p in provisioned) == ["demo-ven-1", "demo-ven-2"]

    def readings_for_all():
        return all(secure_stack.graphql('query($v: String!) { readings(venId: $v, limit: 1) { value } }',
                                        {"v": v["venId"]})["data"]["readings"] for v in vens)
    wait_until(readings_for_all, timeout=60, interval=1, message="readings from each demo VEN")


def test_plain_http_and_strangers_are_refused(secure_stack):
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{secure_stack.vtn_port}/health", timeout=5)
    # A certificate from the stack's own CA, but never provisioned: TLS lets it in, registration does not.
    certs = secure_stack.data_dir / "certs"
    out = subprocess.run([sys.executable, "-m", "adrstack.runtime.cli", "certs", "--dir", str(certs),
                          "--ven", "intruder"], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("intruder ")

    async def try_to_register() -> str | None:
        client = OpenADRClient(ven_name="demo-ven-1", vtn_url=secure_stack.banner_value("VTN"),
                               cert=str(certs / "intruder.crt"), key=str(certs / "intruder.key"),
                               ca_file=str(certs / "ca.crt"), show_fingerprint=False)
        try:
            await client.create_party_registration()
            return client.ven_id
        finally:
            if client.client_session is not None:
                await client.client_session.close()

    assert asyncio.run(try_to_register()) is None
    # And without a client certificate the handshake itself fails.
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"https://localhost:{secure_stack.vtn_port}/health", verify=ctx, timeout=5)
    assert os.path.exists(certs / "vtn-rsa.crt") and os.path.exists(certs / "vtn-ecc.crt")
