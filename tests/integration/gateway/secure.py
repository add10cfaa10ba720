"""What the secure-gateway tests share: development certificates, provisioning records written the
way the api writes them, and TLS client contexts for raw requests."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import nats

from adrstack.runtime.certs import ensure_certs
from adrstack.shared import jetstream
from adrstack.shared.identity import ProvisionedVen, fingerprint_of_der, provisioning_key
from adrstack.shared.messages import utcnow


@dataclass(frozen=True)
class VenCert:
    name: str
    cert: str
    key: str
    fingerprint: str


class CertDir:
    """A development CA, the VTN's ECC and RSA certificates and one ECC certificate per VEN."""

    def __init__(self, directory: Path, ven_names: tuple[str, ...]):
        self.dir = directory
        ensure_certs(directory, ven_names=ven_names)
        self.ca = str(directory / "ca.crt")

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def ven(self, name: str) -> VenCert:
        cert = self.dir / f"{name}.crt"
        if not cert.exists():
            ensure_certs(self.dir, ven_names=(name,))
        der = ssl.PEM_cert_to_DER_cert(cert.read_text())
        return VenCert(name, str(cert), str(self.dir / f"{name}.key"), fingerprint_of_der(der))

    def gateway_settings(self) -> dict:
        return dict(tls_ecc_cert=self.path("vtn-ecc.crt"), tls_ecc_key=self.path("vtn-ecc.key"),
                    tls_rsa_cert=self.path("vtn-rsa.crt"), tls_rsa_key=self.path("vtn-rsa.key"),
                    tls_ca=self.ca)

    def client_context(self, ven: VenCert | None, *, ciphers: str | None = None,
                       version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca)
        if ven is not None:
            ctx.load_cert_chain(ven.cert, ven.key)
        if ciphers:
            ctx.set_ciphers(ciphers)
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        return ctx


async def provision(settings, ven: VenCert, ven_name: str | None = None) -> None:
    """Provision ``ven``'s certificate as the api's provisionVen does."""
    nc = await nats.connect(settings.nats_url)
    try:
        kv = await jetstream.ensure_kv(nc.jetstream(), settings.provisioning_bucket)
        record = ProvisionedVen(fingerprint=ven.fingerprint, ven_name=ven_name or ven.name, provisioned_at=utcnow())
        await kv.put(provisioning_key(ven.fingerprint), record.to_bytes())
    finally:
        await nc.close()


async def deprovision(settings, ven: VenCert) -> None:
    nc = await nats.connect(settings.nats_url)
    try:
        kv = await jetstream.ensure_kv(nc.jetstream(), settings.provisioning_bucket)
        await kv.delete(provisioning_key(ven.fingerprint))
    finally:
        await nc.close()
