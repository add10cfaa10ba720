"""The init step's NATS half: create the stream and the KV buckets a stack's settings name.

`adrstack migrate` runs it, `adrstack up` runs it before the services, the compose stack's
migrate service runs it, and the tests run it for each stack they make; the services only bind.
"""

from __future__ import annotations

from typing import Mapping

from adrstack.shared.jetstream import connect, provision
from adrstack.shared.settings import CommonSettings


def settings_from(nats_url: str | None, env: Mapping[str, str]) -> CommonSettings:
    values = {k: v for k, v in env.items() if k.startswith("ADRSTACK_") or k in ("NATS_URL", "DATABASE_URL")}
    settings = CommonSettings(**{k.removeprefix("ADRSTACK_").lower(): v for k, v in values.items()
                                 if k.startswith("ADRSTACK_") and k != "ADRSTACK_NATS_URL"})
    url = nats_url or env.get("NATS_URL") or env.get("ADRSTACK_NATS_URL")
    return settings.model_copy(update={"nats_url": url}) if url else settings


async def init_nats(nats_url: str | None, env: Mapping[str, str]) -> tuple[list[str], CommonSettings]:
    settings = settings_from(nats_url, env)
    nc = await connect(settings, name="adrstack-migrate", max_reconnect_attempts=2)
    try:
        return await provision(nc.jetstream(), settings), settings
    finally:
        await nc.close()
