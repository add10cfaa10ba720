"""SQLModel tables: what telemetry persists and the API reads, and the operators' API tokens.
Migrations are generated from this metadata (``migrations/``); nothing calls ``create_all``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, PrimaryKeyConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

TZ = DateTime(timezone=True)

metadata = SQLModel.metadata


class Ven(SQLModel, table=True):
    __tablename__ = "vens"

    ven_id: str = Field(primary_key=True)
    ven_name: str = Field(unique=True, index=True)
    registration_id: str
    registered_at: datetime = Field(sa_type=TZ)
    deregistered_at: datetime | None = Field(default=None, sa_type=TZ)
    last_seen_at: datetime | None = Field(default=None, sa_type=TZ)
    profile_name: str = "2.0b"
    transport_name: str = "simpleHttp"
    http_pull_model: bool = True
    report_only: bool = False
    updated_at: datetime = Field(sa_type=TZ)


class DrEventRow(SQLModel, table=True):
    __tablename__ = "dr_events"

    event_id: str = Field(primary_key=True)
    modification_number: int
    status: str = Field(index=True)
    signal_name: str
    signal_type: str
    start_at: datetime = Field(sa_type=TZ, index=True)
    end_at: datetime | None = Field(default=None, sa_type=TZ)  # None: open-ended (rule 47)
    # [{"duration": "PT1H", "payload": 2.0}, ...]
    intervals: list[dict[str, Any]] = Field(sa_type=JSONB)
    # {"ven_ids": [...], "group_ids": [...], ...}
    targets: dict[str, Any] = Field(sa_type=JSONB)
    priority: int = 0
    market_context: str
    response_required: str
    created_at: datetime = Field(sa_type=TZ)
    modified_at: datetime = Field(sa_type=TZ)
    # The full wire snapshot (DrEvent), for fields without their own column.
    snapshot: dict[str, Any] = Field(sa_type=JSONB)


class EventTransitionRow(SQLModel, table=True):
    __tablename__ = "event_transitions"

    id: uuid.UUID = Field(primary_key=True)  # the message id: redelivery cannot duplicate
    event_id: str = Field(index=True)
    transition: str
    modification_number: int
    status: str
    occurred_at: datetime = Field(sa_type=TZ)


class EventResponseRow(SQLModel, table=True):
    """The history of VENs' answers to events: one row per change of answer (optIn/optOut) or
    answer to a new modification, never one for a re-sent identical answer. Written only together
    with :class:`EventOptStateRow`, which decides what counts as a change."""

    __tablename__ = "event_responses"

    id: uuid.UUID = Field(primary_key=True)  # the id of the fact that brought the change
    ven_id: str = Field(index=True)
    event_id: str = Field(index=True)
    modification_number: int | None = None
    opt_type: str
    source: str
    responded_at: datetime = Field(sa_type=TZ)


class EventOptStateRow(SQLModel, table=True):
    """The current answer of one VEN to one event: its latest answer, to whichever modification
    it was given. ``responded_at`` is when this answer was first given (re-sends do not move it);
    ``response_id`` is the ``event_responses`` row that recorded it."""

    __tablename__ = "event_opt_states"

    ven_id: str = Field(primary_key=True)
    event_id: str = Field(primary_key=True, index=True)
    modification_number: int | None = None
    opt_type: str
    source: str
    responded_at: datetime = Field(sa_type=TZ)
    response_id: uuid.UUID


class ReportDescriptionRow(SQLModel, table=True):
    __tablename__ = "report_descriptions"

    ven_id: str = Field(primary_key=True)
    report_specifier_id: str = Field(primary_key=True)
    r_id: str = Field(primary_key=True)
    report_name: str
    resource_id: str | None = None
    report_type: str | None = None
    reading_type: str | None = None
    measurement: str | None = None
    unit: str | None = None
    scale: str | None = None
    registered_at: datetime = Field(sa_type=TZ)


class ReadingRow(SQLModel, table=True):
    """One point of a VEN's report: the natural key (VEN, report specifier, rID, timestamp) is the
    primary key, so a VEN re-sending a report (or JetStream redelivering it) cannot duplicate a row.

    In Postgres the table is partitioned by range on ``at``: one partition per UTC day
    (``readings_pYYYYMMDD``) plus ``readings_default`` for a timestamp no day partition covers.
    Partitioning is DDL of migration 0007 and of telemetry's partition upkeep
    (``adrstack.telemetry.partitions``); alembic compares this model with the partitioned parent
    and ignores the partitions (``migrations/env.py``). The key's columns are ordered so that the
    primary key index also serves "one VEN's readings by time" (no second index per row).
    """

    __tablename__ = "readings"
    __table_args__ = (PrimaryKeyConstraint("ven_id", "at", "report_specifier_id", "r_id", name="readings_pkey"),)

    ven_id: str
    report_specifier_id: str
    r_id: str
    resource_id: str | None = None
    measurement: str | None = None
    unit: str | None = None
    at: datetime = Field(sa_type=TZ)
    value: float
    received_at: datetime = Field(sa_type=TZ)


class ReadingRollupRow(SQLModel, table=True):
    """15-minute rollup of readings (``adrstack.shared.rollups``): count, sum, min and max of one
    series' readings in one UTC-aligned bucket, kept by telemetry in the transaction that merges
    the readings, so bucketed history reads about 1/90 of the rows (at 10 s sampling).

    Partitioned by range on ``bucket`` like ``readings`` on ``at``: ``readings_15m_pYYYYMMDD`` per
    UTC day, created and dropped with the readings' day (``adrstack.telemetry.partitions``), plus
    ``readings_15m_default``. The key leads with the VEN and the bucket, for one VEN's history by
    time; a day of every VEN is one partition read whole."""

    __tablename__ = "readings_15m"
    __table_args__ = (PrimaryKeyConstraint("ven_id", "bucket", "report_specifier_id", "r_id", "resource_id",
                                           "measurement", "unit", name="readings_15m_pkey"),)

    ven_id: str
    bucket: datetime = Field(sa_type=TZ)
    report_specifier_id: str
    r_id: str
    resource_id: str  # '' when the reading has none (a key column)
    measurement: str
    unit: str
    n: int
    total: float
    mn: float
    mx: float


class ApiToken(SQLModel, table=True):
    """An operator's API token (``adrstack.shared.api_tokens``). Only the SHA-256 of its secret is
    kept: the token itself is shown once, when it is created."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint("role in ('viewer', 'operator', 'admin')", name="ck_api_tokens_role"),)

    id: str = Field(primary_key=True)  # the public part of the token, shown by `adrstack token list`
    name: str | None = None
    role: str
    secret_sha256: str
    created_at: datetime = Field(sa_type=TZ)
    last_used_at: datetime | None = Field(default=None, sa_type=TZ)
    revoked_at: datetime | None = Field(default=None, sa_type=TZ)


class OptScheduleRow(SQLModel, table=True):
    """A VEN's opt schedule (EiOpt), as last sent under its optID; a withdrawn one keeps its row
    with ``cancelled_at`` set."""

    __tablename__ = "opt_schedules"

    ven_id: str = Field(primary_key=True)
    opt_id: str = Field(primary_key=True)
    opt_type: str
    opt_reason: str | None = None
    market_context: str | None = None
    event_id: str | None = Field(default=None, index=True)
    modification_number: int | None = None
    resource_ids: list[str] = Field(sa_type=JSONB)
    # oadrDeviceClass endDeviceAsset mrids (P1_2030); empty: the whole VEN.
    device_classes: list[str] = Field(default_factory=list, sa_type=JSONB,
                                      sa_column_kwargs={"server_default": "[]"})
    windows: list[dict[str, Any]] = Field(sa_type=JSONB)
    sent_at: datetime = Field(sa_type=TZ)  # when the fact of its latest version occurred
    cancelled_at: datetime | None = Field(default=None, sa_type=TZ)


class PushFailureRow(SQLModel, table=True):
    """A push of events to a push VEN that did not get through (the PushFailed fact)."""

    __tablename__ = "push_failures"
    __table_args__ = (Index("ix_push_failures_ven_at", "ven_id", "occurred_at"),)

    id: uuid.UUID = Field(primary_key=True)  # the message id: redelivery cannot duplicate
    ven_id: str
    event_ids: list[str] = Field(sa_type=JSONB)
    attempt: int
    error: str
    http_status: int | None = None
    gave_up: bool
    occurred_at: datetime = Field(sa_type=TZ)


class VenStatusRow(SQLModel, table=True):
    """TELEMETRY_STATUS history: one row per status point, on the natural key (VEN, time, report
    specifier, rID) like readings, so a re-sent report or a redelivery cannot duplicate a row; the
    first stored wins."""

    __tablename__ = "ven_status"
    __table_args__ = (PrimaryKeyConstraint("ven_id", "at", "report_specifier_id", "r_id", name="ven_status_pkey"),)

    ven_id: str
    report_specifier_id: str
    r_id: str
    resource_id: str | None = None
    at: datetime = Field(sa_type=TZ)
    online: bool
    manual_override: bool
    # {"capacity": {"current": 1.0, "normal": ..., "min": ..., "max": ...}, "level_offset": ...}
    load_control: dict[str, Any] = Field(sa_type=JSONB)
    received_at: datetime = Field(sa_type=TZ)


class VenStatusLatestRow(SQLModel, table=True):
    """The latest status of each VEN, per resource when its report names one (``resource_key`` is
    the resourceID, or '' for the VEN as a whole): the newest point by its time."""

    __tablename__ = "ven_status_latest"

    ven_id: str = Field(primary_key=True)
    resource_key: str = Field(primary_key=True)
    resource_id: str | None = None
    report_specifier_id: str
    r_id: str
    at: datetime = Field(sa_type=TZ)
    online: bool
    manual_override: bool
    load_control: dict[str, Any] = Field(sa_type=JSONB)
    received_at: datetime = Field(sa_type=TZ)


class ReportRequestRow(SQLModel, table=True):
    """A report request the VTN made of a VEN (oadrCreateReport), with when each of its steps
    happened: queued, sent, acknowledged (listed in the VEN's pendingReports), cancel requested,
    cancel sent, cancelled (the VEN's oadrCanceledReport) or failed. The newest version of the
    ReportRequestChanged fact wins (``version``)."""

    __tablename__ = "report_requests"
    __table_args__ = (Index("ix_report_requests_ven_created", "ven_id", "created_at"),)

    ven_id: str = Field(primary_key=True)
    report_request_id: str = Field(primary_key=True)
    report_specifier_id: str
    report_name: str | None = None
    r_ids: list[str] = Field(sa_type=JSONB)
    granularity_seconds: float
    report_back_duration_seconds: float
    interval_start: datetime | None = Field(default=None, sa_type=TZ)
    interval_end: datetime | None = Field(default=None, sa_type=TZ)
    status: str
    origin: str
    report_to_follow: bool = False
    created_at: datetime = Field(sa_type=TZ)
    sent_at: datetime | None = Field(default=None, sa_type=TZ)
    acknowledged_at: datetime | None = Field(default=None, sa_type=TZ)
    cancel_requested_at: datetime | None = Field(default=None, sa_type=TZ)
    cancel_sent_at: datetime | None = Field(default=None, sa_type=TZ)
    cancelled_at: datetime | None = Field(default=None, sa_type=TZ)
    failed_at: datetime | None = Field(default=None, sa_type=TZ)
    failure: str | None = None
    version: int
    updated_at: datetime = Field(sa_type=TZ)  # when the fact of this version occurred
