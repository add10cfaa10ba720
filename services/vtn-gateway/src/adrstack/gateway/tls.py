"""The gateway's TLS server context (mutual TLS, both OpenADR 2.0b suites) and the peer's identity.

OpenADR 2.0b names two TLS 1.2 suites: TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (an ECC server
certificate) and TLS_RSA_WITH_AES_128_CBC_SHA256 (an RSA one). One context serves both: OpenSSL
keeps one certificate chain per key type, so loading the ECC and the RSA chain into the same
context keeps both, and each handshake is answered with the chain its suite needs. Python's
default cipher list has the ECDHE-ECDSA suite but not ``AES128-SHA256`` (RSA key transport, no
forward secrecy); it is added explicitly. It is allowed at OpenSSL's default security level 2
(level 3 would forbid it: no forward secrecy), so no ``@SECLEVEL`` lowering is needed.

The modern suites come first and the server's preference decides, so a client that offers them
(TLS 1.3, or the AEAD suites of 1.2) gets them; a 2.0b client that offers only the 2.0b suite
gets exactly that one. TLS 1.0/1.1 are refused. VENs must present a certificate issued by ``ca``.
"""

from __future__ import annotations

import os
import ssl

from adrstack.shared.identity import fingerprint_of_der

# OpenSSL names of the 2.0b suites.
OADR_ECC_SUITE = "ECDHE-ECDSA-AES128-SHA256"  # TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
OADR_RSA_SUITE = "AES128-SHA256"  # TLS_RSA_WITH_AES_128_CBC_SHA256
# Python 3.11's default server list (PY_SSL_DEFAULT_CIPHER_STRING), spelled out so that a future
# Python changing it does not silently change what the gateway offers, then the two 2.0b suites.
MODERN_CIPHERS = "ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"
CIPHERS = f"@SECLEVEL=2:{MODERN_CIPHERS}:{OADR_ECC_SUITE}:{OADR_RSA_SUITE}"

PathLike = str | os.PathLike


def server_context(ecc_cert: PathLike | None, ecc_key: PathLike | None, rsa_cert: PathLike | None,
                   rsa_key: PathLike | None, ca: PathLike) -> ssl.SSLContext:
    """A server context for mTLS with both 2.0b suites (either pair may be None, not both).

    Certificate files may hold the whole chain (leaf first). Raises ValueError for a missing
    half of a pair, a pair of the wrong key type, or no pair at all; ssl.SSLError / OSError when
    a file cannot be read or a key does not fit its certificate."""
    pairs = {"ECC": (ecc_cert, ecc_key), "RSA": (rsa_cert, rsa_key)}
    for kind, (cert, key) in pairs.items():
        if (cert is None) != (key is None):
            raise ValueError(f"the {kind} certificate and key go together: got only the "
                             f"{'certificate' if key is None else 'key'}")
    if all(cert is None for cert, _ in pairs.values()):
        raise ValueError("a TLS server needs an ECC or an RSA certificate (or both)")
    if not ca:
        raise ValueError("mutual TLS needs the CA that issues the VENs' certificates")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=os.fspath(ca))
    for kind, (cert, key) in pairs.items():
        if cert is None:
            continue
        ctx.load_cert_chain(os.fspath(cert), os.fspath(key))
        _check_key_type(kind, ctx, cert)
    return ctx


def client_context(cert: PathLike, key: PathLike, ca: PathLike) -> ssl.SSLContext:
    """A client context for pushing to VENs: the VTN's certificate as client certificate, the
    VEN's server certificate verified (chain and host name) against ``ca``."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=os.fspath(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.fspath(cert), os.fspath(key))
    return ctx


def _check_key_type(kind: str, ctx: ssl.SSLContext, cert: PathLike) -> None:
    """An RSA pair given as the ECC one (or the reverse) would replace nothing and serve the wrong
    suite; a mistake in the settings, so it is said at start-up. Skipped where ``cryptography`` is
    not installed (the gateway does not depend on it for TLS; the handshake still works)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
    except ImportError:
        return

    with open(cert, "rb") as f:
        public = x509.load_pem_x509_certificate(f.read()).public_key()
    actual = ("ECC" if isinstance(public, ec.EllipticCurvePublicKey)
              else "RSA" if isinstance(public, rsa.RSAPublicKey) else type(public).__name__)
    if actual != kind:
        raise ValueError(f"{os.fspath(cert)} is given as the {kind} certificate but holds an {actual} key")


def peer_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The 2.0b fingerprint of the client's certificate, or None (no TLS, or no certificate).

    From a transport: ``peer_fingerprint(transport.get_extra_info("ssl_object"))``."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return fingerprint_of_der(der) if der else None
