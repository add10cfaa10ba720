"""Settings common to every service, read from the environment (pydantic-settings).

``NATS_URL`` and ``DATABASE_URL`` are read as such; everything else is ``ADRSTACK_*``.
Services subclass :class:`CommonSettings` with their own fields.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .subjects import Subjects

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/adrstack"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADRSTACK_", extra="ignore", populate_by_name=True)

    nats_url: str = Field(
        DEFAULT_NATS_URL, validation_alias=AliasChoices("NATS_URL", "ADRSTACK_NATS_URL", "nats_url")
    )
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "ADRSTACK_DATABASE_URL", "database_url"),
    )
    # Tests run many stacks on one NATS server: each gets its own prefix, stream and buckets.
    subject_prefix: str = "openadr"
    stream_name: str = "OPENADR"
    vens_bucket: str = "openadr-vens"
    events_bucket: str = "openadr-events"
    # Certificate fingerprint -> VEN name, written by the api (provisionVen), read by the gateway.
    provisioning_bucket: str = "openadr-provisioning"
    # VEN groups (group id -> member VEN ids), written by the api, read by the gateway.
    groups_bucket: str = "openadr-groups"
    # Programs (program id -> ProgramRecord), written by the api, expanded into events by the
    # scheduler, read by the gateway (market-context targets).
    programs_bucket: str = "openadr-programs"
    # Replay-protection nonces of signed messages, shared by gateway replicas (TTL'd).
    nonces_bucket: str = "openadr-nonces"
    # Client idempotency keys and the results they got: the scheduler's event commands (namespace
    # "cmd") and the api's program edits ("program"); entries expire after a day.
    commands_bucket: str = "openadr-commands"
    # Retention of the facts stream: a fact older than this, or beyond the size (the oldest go
    # first), is dropped from NATS. Postgres keeps what telemetry stored; a telemetry outage longer
    # than this loses the facts it had not taken yet.
    stream_max_age: timedelta = Field(timedelta(days=7), gt=timedelta(0))
    stream_max_bytes: int = Field(8 * 1024**3, ge=-1)  # -1: no size limit
    # Messages a consumer gave up on (invalid, or delivered max_deliver times), kept in a stream of
    # their own with their own retention (adrstack.shared.messages.DeadLetter).
    dead_letter_stream: str = "OPENADR_DEAD_LETTERS"
    dead_letter_max_age: timedelta = Field(timedelta(days=30), gt=timedelta(0))
    dead_letter_max_bytes: int = Field(1024**3, ge=-1)  # -1: no size limit
    # Copies JetStream keeps of each stream and bucket (1 on a single server; 3 in a NATS cluster of
    # at least 3, so that one server down or lost loses nothing). `adrstack migrate` applies it to
    # new and existing ones alike; the cluster must have at least that many JetStream servers.
    jetstream_replicas: int = Field(1, ge=1, le=5)
    # Bucket shapes, fixed when `adrstack migrate` creates the buckets: the events bucket's history
    # (the scheduler's), and the signed-message window whose nonces the nonces bucket keeps for
    # twice as long (the gateway's).
    events_history: int = Field(5, ge=1, le=64)
    replay_window: float = Field(300.0, gt=0)
    log_level: str = "INFO"

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.subject_prefix)
