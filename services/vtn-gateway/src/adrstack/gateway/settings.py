"""Gateway settings: the common ones plus where the VTN listens and what it asks of VENs."""

from __future__ import annotations

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
    # Slow clients are cut off: request headers must arrive within header_timeout of the first
    # byte (or of connecting), the body within body_timeout after them; an idle keep-alive
    # connection is closed after keepalive_timeout.
    header_timeout: float = Field(10.0, gt=0)
    body_timeout: float = Field(30.0, gt=0)
    keepalive_timeout: float = Field(75.0, gt=0)

    def vtn_url(self, host: str | None = None) -> str:
        return f"http://{host or self.vtn_host}:{self.vtn_port}{VTN_PATH}"
