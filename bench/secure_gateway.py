"""The adrstack gateway in its secure mode, for the mTLS figures of bench/poll.py.

    gateway = SecureGateway(bench, certs)        # one subject prefix, stream and buckets
    await gateway.provision(identities)          # records in the provisioning bucket, as provisionVen writes them
    child, port = await gateway.start("gw", require_signatures=False, sign_with=None)
    registered = await gateway.register(port, identities)   # one VEN per certificate, over its certificate

Every gateway started from one ``SecureGateway`` shares its NATS names (VENs, events, the
provisioning and the nonce bucket), as replicas do: VENs registered with one are registered with
the next, and a nonce spent with one is spent for all. Each serves mutual TLS (the ECC and the RSA
chain of ``adrstack certs``, VEN certificates of its CA), provisioned enrollment, a replay window
of 300 s (the default), and /health on a plain port of its own (the VTN port wants a client
certificate); ``require_signatures`` and ``sign_with`` ("ecc"/"rsa": the VTN's pair signs every
answer) as asked.
"""

from __future__ import annotations

import asyncio

import nats

from adrstack.runtime.certs import CertSet
from adrstack.shared import jetstream
from adrstack.shared.identity import ProvisionedVen, provisioning_key
from adrstack.shared.messages import utcnow

from mtls import STRANGER, VTN_PATH, Identity
from rawload import Messages, describe, http_call, registration_ids, tls_client_context
from stack import HOST, SERVER_CPU, Bench, BenchError, Child, gateway_env, pick_port, unique_names, wait_health

REPLAY_WINDOW = 300.0  # the gateway's default, stated so that presigning is sure to fit in it


def ven_name(identity: Identity) -> str:
    """The VEN name a bench certificate is provisioned under: its file stem (``bench-ven-k``)."""
    return identity.cert.stem


class SecureGateway:
    def __init__(self, bench: Bench, certs: CertSet, poll_interval: float = 10.0):
        self.bench, self.certs, self.poll_interval = bench, certs, poll_interval
        self.names = unique_names()
        tag = self.names["ADRSTACK_SUBJECT_PREFIX"]
        self.names["ADRSTACK_PROVISIONING_BUCKET"] = f"{tag}-provisioning"
        self.names["ADRSTACK_NONCES_BUCKET"] = f"{tag}-nonces"

    async def provision(self, identities: list[Identity]) -> None:
        """Each certificate provisioned under its VEN name, written into KV as the api's
        provisionVen does (tests/integration/gateway/secure.py does the same)."""
        nc = await nats.connect(self.bench.nats_url)
        try:
            kv = await jetstream.ensure_kv(nc.jetstream(), self.names["ADRSTACK_PROVISIONING_BUCKET"])
            for identity in identities:
                record = ProvisionedVen(fingerprint=identity.fingerprint, ven_name=ven_name(identity),
                                        provisioned_at=utcnow(), provisioned_by="bench")
                await kv.put(provisioning_key(identity.fingerprint), record.to_bytes())
        finally:
            await nc.close()

    def env(self, port: int, health_port: int, require_signatures: bool, sign_with: str | None) -> dict[str, str]:
        c = self.certs
        env = gateway_env(self.names, self.bench.nats_url, port, self.poll_interval)
        env.update({
            "ADRSTACK_PROVISIONING_BUCKET": self.names["ADRSTACK_PROVISIONING_BUCKET"],
            "ADRSTACK_NONCES_BUCKET": self.names["ADRSTACK_NONCES_BUCKET"],
            "ADRSTACK_TLS_ECC_CERT": str(c.vtn_ecc.cert), "ADRSTACK_TLS_ECC_KEY": str(c.vtn_ecc.key),
            "ADRSTACK_TLS_RSA_CERT": str(c.vtn_rsa.cert), "ADRSTACK_TLS_RSA_KEY": str(c.vtn_rsa.key),
            "ADRSTACK_TLS_CA": str(c.ca.cert),
            "ADRSTACK_ENROLLMENT": "provisioned",
            "ADRSTACK_REQUIRE_SIGNATURES": "true" if require_signatures else "false",
            "ADRSTACK_REPLAY_WINDOW": f"{REPLAY_WINDOW:g}",
            "ADRSTACK_HEALTH_PORT": str(health_port),
        })
        if sign_with:
            pair = c.vtn_ecc if sign_with == "ecc" else c.vtn_rsa
            env.update({"ADRSTACK_SIGN_CERT": str(pair.cert), "ADRSTACK_SIGN_KEY": str(pair.key)})
        return env

    async def start(self, name: str, require_signatures: bool, sign_with: str | None) -> tuple[Child, int]:
        port, health_port = pick_port(), pick_port()
        child = self.bench.service(name, "adrstack.gateway",
                                   self.env(port, health_port, require_signatures, sign_with), {SERVER_CPU})
        await wait_health(self.bench, child, health_port)
        self.bench.note_placement(child, name)
        return child, port

    # ------------------------------------------------------------------ registration

    def _messages(self, port: int) -> Messages:
        if getattr(self, "_messages_for", None) != port:
            self._messages_for, self._messages_cache = port, Messages(HOST, port)
        return self._messages_cache

    async def _register_one(self, port: int, cert, key, name: str, request_id: str) -> tuple[int, bytes]:
        body = self._messages(port).registration_body(name, request_id)
        return await http_call(HOST, port, "POST", f"{VTN_PATH}/EiRegisterParty", body, "application/xml",
                               timeout=60, ssl=tls_client_context(self.certs.ca.cert, cert, key))

    async def register(self, port: int, identities: list[Identity]) -> list[Identity]:
        """One VEN per certificate, registered over that certificate under its provisioned name;
        the identities again with the venIDs the gateway gave them."""
        answers = await asyncio.gather(*(
            self._register_one(port, i.cert, i.key, ven_name(i), f"reg-{k}") for k, i in enumerate(identities)))
        registered = []
        for identity, (status, body) in zip(identities, answers):
            ids = registration_ids(status, body)
            if ids is None:
                raise BenchError(f"the secure gateway refused {ven_name(identity)}'s registration: "
                                 f"{describe(status, body)}")
            registered.append(Identity(identity.cert, identity.key, identity.fingerprint, [ids[0]]))
        return registered

    async def probe_enrollment(self, port: int, identities: list[Identity]) -> list[str]:
        """Proof that enrollment is provisioned: a certificate of the bench CA that nobody
        provisioned, and a provisioned one under another VEN's name, must not register."""
        stranger = self.certs.vens[STRANGER]
        notes = []
        for what, cert, key, name in (
                ("registration by a certificate nobody provisioned", stranger.cert, stranger.key, STRANGER),
                ("registration under another certificate's VEN name", identities[1].cert, identities[1].key,
                 ven_name(identities[0]))):
            status, body = await self._register_one(port, cert, key, name, "reg-probe")
            if registration_ids(status, body) is not None:
                raise BenchError(f"the secure gateway accepted a {what}: enrollment is not provisioned as "
                                 "this run needs")
            notes.append(f"{what}: refused ({describe(status, body)})")
        return notes
