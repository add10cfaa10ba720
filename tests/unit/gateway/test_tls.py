"""The gateway's mTLS server context, by real handshakes on 127.0.0.1 with `adrstack certs` files:
both 2.0b suites from one context (OpenSSL keeps the ECC and the RSA chain side by side), TLS 1.3,
and the refusals (TLS 1.1, no client certificate, a certificate from another CA)."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adrstack.gateway.tls import OADR_ECC_SUITE, OADR_RSA_SUITE, peer_fingerprint, server_context
from adrstack.runtime.certs import CertSet, ensure_certs
from tests.helpers import temp_dir


@pytest.fixture(scope="module")
def pki():
    d = temp_dir("tls-test")
    try:
        yield ensure_certs(d / "ours", ["ven-1"], ["vtn.test"]), ensure_certs(d / "theirs", ["intruder"])
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def ours(pki) -> CertSet:
    return pki[0]


@pytest.fixture(scope="module")
def theirs(pki) -> CertSet:
    return pki[1]


def der(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)


def gateway_context(c: CertSet, ecc: bool = True, rsa: bool = True) -> ssl.SSLContext:
    ctx = server_context(c.vtn_ecc.cert if ecc else None, c.vtn_ecc.key if ecc else None,
                         c.vtn_rsa.cert if rsa else None, c.vtn_rsa.key if rsa else None, c.ca.cert)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # the VEN certificates pass strict checks too
    return ctx


def client_context(ca: Path, pair=None, suite: str | None = None,
                   version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks the host name and the chain
    # Strict RFC 5280 checks, as Python 3.13's create_default_context() makes them by default.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_verify_locations(cafile=str(ca))
    if pair is not None:
        ctx.load_cert_chain(str(pair.cert), str(pair.key))
    if suite is not None:
        ctx.set_ciphers(suite)
        version = version or ssl.TLSVersion.TLSv1_2
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


class Answer:
    def __init__(self, line: bytes, ssl_object: ssl.SSLSocket):
        self.seen_by_server = line.decode().strip()  # the server's peer_fingerprint() of us
        self.cipher = ssl_object.cipher()[0]
        self.version = ssl_object.version()
        self.server_cert = ssl_object.getpeercert(binary_form=True)


class Server:
    """A blocking TLS server in a thread (so that refused handshakes send their alert and the
    server's reason can be read): each connection is answered with one line, what
    peer_fingerprint() says of the client; a failed handshake's error is kept in ``failures``."""

    def __init__(self, ctx: ssl.SSLContext):
        self.ctx = ctx
        self.failures: list[str] = []

    def __enter__(self) -> "Server":
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.listener.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(10)
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as conn:
                    conn.sendall(f"{peer_fingerprint(conn)}\n".encode())
            except (ssl.SSLError, OSError) as e:
                self.failures.append(f"{type(e).__name__}: {e}")
            finally:
                raw.close()

    def connect(self, ctx: ssl.SSLContext, host_name: str = "localhost") -> Answer:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname=host_name) as conn:
            line = conn.makefile("rb").readline()
            if not line:
                raise ConnectionError("closed without an answer")
            return Answer(line, conn)

    def refused(self, ctx: ssl.SSLContext, host_name: str = "localhost") -> tuple[str, str]:
        """(the client's error, the server's) for a connection that must fail. In TLS 1.3 the client
        finishes its handshake before the server has judged the client's certificate, so the
        client learns of the refusal at its first read."""
        before = len(self.failures)
        try:
            answer = self.connect(ctx, host_name)
        except (ssl.SSLError, OSError) as e:
            client = f"{type(e).__name__}: {e}"
        else:
            raise AssertionError(f"connected ({answer.version} {answer.cipher}), server saw "
                                 f"{answer.seen_by_server}")
        deadline = time.monotonic() + 5
        while len(self.failures) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        return client, (self.failures[before] if len(self.failures) > before else "")


# --------------------------------------------------------------------------- the two 2.0b suites


def test_the_ecc_suite_is_served_with_the_ecc_certificate(ours):
    with Server(gateway_context(ours)) as server:
        a = server.connect(client_context(ours.ca.cert, ours.vens["ven-1"], OADR_ECC_SUITE))
    assert (a.version, a.cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA256")
    assert a.server_cert == der(ours.vtn_ecc.cert)
    assert a.seen_by_server == ours.vens["ven-1"].fingerprint


def test_the_rsa_suite_is_served_with_the_rsa_certificate_by_the_same_context(ours):
    with Server(gateway_context(ours)) as server:
        a = server.connect(client_context(ours.ca.cert, ours.vens["ven-1"], OADR_RSA_SUITE))
        b = server.connect(client_context(ours.ca.cert, ours.vens["ven-1"], OADR_ECC_SUITE))
    assert (a.version, a.cipher) == ("TLSv1.2", "AES128-SHA256")
    assert a.server_cert == der(ours.vtn_rsa.cert)
    assert a.seen_by_server == ours.vens["ven-1"].fingerprint
    assert b.server_cert == der(ours.vtn_ecc.cert)  # the second chain did not replace the first


def test_a_client_offering_both_2_0b_suites_is_served(ours):
    with Server(gateway_context(ours)) as server:
        a = server.connect(client_context(ours.ca.cert, ours.vens["ven-1"],
                                                f"{OADR_RSA_SUITE}:{OADR_ECC_SUITE}"))
    assert a.cipher in ("AES128-SHA256", "ECDHE-ECDSA-AES128-SHA256")


def test_tls_1_3_and_modern_tls_1_2_suites_work_too(ours):
    with Server(gateway_context(ours)) as server:
        v13 = server.connect(client_context(ours.ca.cert, ours.vens["ven-1"]))
        v12 = server.connect(client_context(ours.ca.cert, ours.vens["ven-1"],
                                                  version=ssl.TLSVersion.TLSv1_2))
    assert v13.version == "TLSv1.3" and v13.seen_by_server == ours.vens["ven-1"].fingerprint
    # Modern suites first: a client that offers AEAD does not get CBC.
    assert v12.version == "TLSv1.2" and "GCM" in v12.cipher or "CHACHA20" in v12.cipher


@pytest.mark.parametrize("host_name", ["localhost", "127.0.0.1", "vtn.test"])
def test_the_vtn_certificates_pass_host_name_checks(ours, host_name):
    with Server(gateway_context(ours)) as server:
        for suite in (OADR_ECC_SUITE, OADR_RSA_SUITE):
            a = server.connect(client_context(ours.ca.cert, ours.vens["ven-1"], suite), host_name)
            assert a.seen_by_server == ours.vens["ven-1"].fingerprint


def test_a_host_name_the_certificates_do_not_carry_fails_the_clients_check(ours):
    with Server(gateway_context(ours)) as server:
        client, _ = server.refused(client_context(ours.ca.cert, ours.vens["ven-1"]), "elsewhere.test")
    assert "Hostname mismatch" in client, client


def test_only_an_ecc_pair_serves_only_the_ecc_suite(ours):
    with Server(gateway_context(ours, rsa=False)) as server:
        a = server.connect(client_context(ours.ca.cert, ours.vens["ven-1"], OADR_ECC_SUITE))
        client, why = server.refused(client_context(ours.ca.cert, ours.vens["ven-1"], OADR_RSA_SUITE))
    assert a.cipher == OADR_ECC_SUITE
    assert "NO_SHARED_CIPHER" in why, (client, why)


# --------------------------------------------------------------------------- refusals


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused(ours):
    # OpenSSL 3 will not even offer TLS 1.1 at its default security level, so the client lowers
    # it; the control shows that this client does speak TLS 1.1 to a server that allows it.
    tls11 = client_context(ours.ca.cert, ours.vens["ven-1"], version=ssl.TLSVersion.TLSv1_1)
    tls11.set_ciphers("DEFAULT:@SECLEVEL=0")
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    permissive.minimum_version = ssl.TLSVersion.TLSv1_1
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    permissive.load_cert_chain(str(ours.vtn_ecc.cert), str(ours.vtn_ecc.key))
    with Server(permissive) as control:
        assert (control.connect(tls11)).version == "TLSv1.1"
    with Server(gateway_context(ours)) as server:
        client, why = server.refused(tls11)
    assert "UNSUPPORTED_PROTOCOL" in why, (client, why)
    assert "PROTOCOL_VERSION" in client, client  # the server's alert


@pytest.mark.parametrize("suite", [OADR_ECC_SUITE, OADR_RSA_SUITE, None])
def test_a_client_without_a_certificate_is_refused(ours, suite):
    with Server(gateway_context(ours)) as server:
        client, why = server.refused(client_context(ours.ca.cert, None, suite))
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in why, (client, why)


@pytest.mark.parametrize("suite", [OADR_ECC_SUITE, OADR_RSA_SUITE, None])
def test_a_client_certificate_from_another_ca_is_refused(ours, theirs, suite):
    with Server(gateway_context(ours)) as server:
        client, why = server.refused(client_context(ours.ca.cert, theirs.vens["intruder"], suite))
        # ... while the same client with our certificate gets in (the refusal is about the CA).
        ok = server.connect(client_context(ours.ca.cert, ours.vens["ven-1"], suite))
    assert "CERTIFICATE_VERIFY_FAILED" in why and "unable to get local issuer certificate" in why, (client, why)
    assert "UNKNOWN_CA" in client, client
    assert ok.seen_by_server == ours.vens["ven-1"].fingerprint


def test_a_server_certificate_from_another_ca_is_refused_by_the_client(ours, theirs):
    with Server(gateway_context(theirs)) as server:
        client, _ = server.refused(client_context(ours.ca.cert, ours.vens["ven-1"]))
    assert "CERTIFICATE_VERIFY_FAILED" in client, client


# --------------------------------------------------------------------------- arguments


def test_half_a_pair_or_no_pair_is_a_clear_error(ours):
    c = ours
    with pytest.raises(ValueError, match="ECC certificate and key go together"):
        server_context(c.vtn_ecc.cert, None, None, None, c.ca.cert)
    with pytest.raises(ValueError, match="RSA certificate and key go together"):
        server_context(None, None, None, c.vtn_rsa.key, c.ca.cert)
    with pytest.raises(ValueError, match="needs an ECC or an RSA certificate"):
        server_context(None, None, None, None, c.ca.cert)
    with pytest.raises(ValueError, match="CA"):
        server_context(c.vtn_ecc.cert, c.vtn_ecc.key, None, None, None)


def test_pairs_given_in_each_others_place_are_refused(ours):
    c = ours
    with pytest.raises(ValueError, match="given as the ECC certificate but holds an RSA key"):
        server_context(c.vtn_rsa.cert, c.vtn_rsa.key, c.vtn_ecc.cert, c.vtn_ecc.key, c.ca.cert)


def test_a_key_that_does_not_fit_its_certificate_is_an_ssl_error(ours):
    c = ours
    with pytest.raises(ssl.SSLError):
        server_context(c.vtn_ecc.cert, c.vens["ven-1"].key, None, None, c.ca.cert)


def test_peer_fingerprint_without_tls_or_certificate_is_none():
    assert peer_fingerprint(None) is None

    class NoCert:
        def getpeercert(self, binary_form=False):
            return None

    assert peer_fingerprint(NoCert()) is None
