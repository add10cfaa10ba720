"""Gateway settings: the common ones plus where the VTN listens and what it asks of VENs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from adrstack.shared.settings import CommonSettings

VTN_PATH = "/OpenADR2/Simple/2.0b"


class GatewaySettings(CommonSettings):
    # openleadr VENs flag an all-lowercase vtnID as invalid (452) in their responses.
    vtn_id: str = "ADRSTACK-VTN"
    vtn_host: str = "0.0.0.0"
    vtn_port: int = Field(8080, ge=0, le=65535)
    # The oadrRequestedOadrPollFreq handed to VENs at registration (seconds).
    poll_interval: float = Field(10.0, gt=0)
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    # VenSeen is a heartbeat, not a per-poll fact: at most one per VEN per this many seconds.
    seen_interval: float = Field(60.0, ge=0)
    # How often we ask VENs to send telemetry (clamped to what each VEN offers), seconds.
    report_interval: float = Field(10.0, gt=0)
    # The report requests made of a VEN's freshly registered reports ride in the oadrRegisteredReport
    # answering it (R1_3060), saving a poll; off: they go out as oadrCreateReport on the next poll,
    # for a VEN that ignores requests there.
    piggyback_report_requests: bool = True
    # Slow clients are cut off: request headers must arrive within header_timeout of the first
    # byte (or of connecting), the body within body_timeout after them; an idle keep-alive
    # connection is closed after keepalive_timeout.
    header_timeout: float = Field(10.0, gt=0)
    body_timeout: float = Field(30.0, gt=0)
    keepalive_timeout: float = Field(75.0, gt=0)

    # --- Security (docs/security.md). TLS is on when a certificate is given: the ECC and the RSA
    # pair serve the two 2.0b suites; VENs must present a certificate issued by tls_ca.
    tls_ecc_cert: str | None = None
    tls_ecc_key: str | None = None
    tls_rsa_cert: str | None = None
    tls_rsa_key: str | None = None
    tls_ca: str | None = None
    # "provisioned": only certificates provisioned through the api (provisionVen) may register, and
    # every message must come over the certificate its venID is bound to. "open": anyone may
    # register and a venName is trusted as given (development only).
    enrollment: Literal["open", "provisioned"] = "open"
    # Incoming XML signatures are verified whenever present; this makes them mandatory.
    require_signatures: bool = False
    # Outgoing messages are signed with this pair when both are set (RSA or ECC).
    sign_cert: str | None = None
    sign_key: str | None = None
    # Signed messages' ReplayProtect timestamps must lie within this many seconds of now, either
    # side; their nonces are remembered (shared by replicas) for twice as long.
    # Several gateway processes on one host may then listen on the same port (SO_REUSEPORT).
    reuse_port: bool = False
    # /health also on a plain-HTTP port of its own, for probes that hold no client certificate
    # (a supervisor, a container health check). Off when None; /health stays on the VTN port too.
    health_host: str = "127.0.0.1"
    health_port: int | None = Field(None, ge=0, le=65535)

    # --- Push VENs (registered with oadrHttpPullModel=false): how an oadrDistributeEvent is pushed
    # to <oadrTransportAddress>/EiEvent. A failed push is retried after a delay growing from
    # push_backoff_initial to push_backoff_max (doubling, with jitter), at most push_attempts times.
    push_timeout: float = Field(10.0, gt=0)
    push_attempts: int = Field(8, ge=1)
    push_backoff_initial: float = Field(1.0, gt=0)
    push_backoff_max: float = Field(60.0, gt=0)
    # At most this many pushes in flight per gateway process.
    push_concurrency: int = Field(64, ge=1)

    @property
    def tls(self) -> bool:
        return bool(self.tls_ecc_cert or self.tls_rsa_cert)

    def vtn_url(self, host: str | None = None) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host or self.vtn_host}:{self.vtn_port}{VTN_PATH}"
