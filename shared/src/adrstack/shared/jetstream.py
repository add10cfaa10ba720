"""NATS/JetStream plumbing every service uses the same way: connect, stream, KV, publish."""

from __future__ import annotations

import contextlib
import logging
import weakref
from datetime import timedelta
from typing import Callable

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from .messages import Message
from .settings import CommonSettings

log = logging.getLogger(__name__)

DUPLICATE_WINDOW = timedelta(minutes=2)


# Callbacks run each time a connection made by connect() reconnects (see on_reconnected).
_reconnect_hooks: "weakref.WeakKeyDictionary[NATS, list[Callable[[], None]]]" = weakref.WeakKeyDictionary()


def on_reconnected(nc: NATS, hook: Callable[[], None]) -> Callable[[], None]:
    """Call ``hook`` each time ``nc`` (made by :func:`connect`) reconnects; returns its remover.
    Hooks are synchronous: schedule work, do not do it. After a reconnect the server may be a
    restarted one that lost every ephemeral consumer (KV watches): their owners start them again."""
    hooks = _reconnect_hooks.setdefault(nc, [])
    hooks.append(hook)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            hooks.remove(hook)

    return remove


async def connect(settings: CommonSettings, name: str, **kwargs) -> NATS:
    client: NATS | None = None

    async def on_error(e: Exception) -> None:
        log.warning("nats error: %s", e)

    async def on_disconnect() -> None:
        # A drain or close on shutdown disconnects too; only an unplanned loss deserves a warning.
        if client is not None and (client.is_closed or client.is_draining):
            log.info("nats connection closed")
        else:
            log.warning("nats disconnected; reconnecting")

    async def on_reconnect() -> None:
        log.info("nats reconnected")
        for hook in list(_reconnect_hooks.get(client, ())):
            try:
                hook()
            except Exception:
                log.exception("a reconnect hook failed")

    kwargs.setdefault("max_reconnect_attempts", -1)
    kwargs.setdefault("reconnect_time_wait", 1)
    kwargs.setdefault("connect_timeout", 5)
    client = await nats.connect(
        settings.nats_url,
        name=name,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        **kwargs,
    )
    return client


def stream_config(settings: CommonSettings) -> StreamConfig:
    return StreamConfig(
        name=settings.stream_name,
        subjects=settings.subjects.stream_subjects,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=settings.stream_max_age.total_seconds(),
        max_bytes=settings.stream_max_bytes,
        duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        num_replicas=settings.jetstream_replicas,
    )


def dead_letter_stream_config(settings: CommonSettings) -> StreamConfig:
    """Dead letters outlive the facts they copy (a month by default): an operator must have time to
    look at them. The duplicate window lets a copy re-sent after a crash (same Nats-Msg-Id) drop."""
    return StreamConfig(
        name=settings.dead_letter_stream,
        subjects=[settings.subjects.all_dead_letters],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=settings.dead_letter_max_age.total_seconds(),
        max_bytes=settings.dead_letter_max_bytes,
        duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        num_replicas=settings.jetstream_replicas,
    )


async def ensure_stream(js: JetStreamContext, settings: CommonSettings) -> None:
    """Create the facts stream, or bring an existing one to our config (idempotent, race-safe)."""
    await _ensure(js, stream_config(settings))


async def ensure_dead_letter_stream(js: JetStreamContext, settings: CommonSettings) -> None:
    await _ensure(js, dead_letter_stream_config(settings))


async def _ensure(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError as refused:
        # Exists with a different config (e.g. created by an older version): update it.
        try:
            await js.update_stream(config)
        except NotFoundError:
            # Not there: the creation's own reason stands (e.g. another stream takes its subjects).
            raise refused from None


class MissingInfrastructure(RuntimeError):
    """The stream or a bucket a service binds to does not exist: the init step has not run."""


INIT_HINT = "run `adrstack migrate` (which `adrstack up` and the compose stack run first) against this NATS"


def bucket_configs(settings: CommonSettings) -> list[KeyValueConfig]:
    """Every KV bucket of a stack, as the init step creates it."""
    from .idempotency import KEY_TTL

    def kv(bucket: str, history: int = 1, ttl: float | None = None) -> KeyValueConfig:
        return KeyValueConfig(bucket=bucket, history=history, storage=StorageType.FILE, ttl=ttl,
                              replicas=settings.jetstream_replicas)

    return [
        kv(settings.vens_bucket),
        kv(settings.events_bucket, history=settings.events_history),
        kv(settings.provisioning_bucket),
        kv(settings.groups_bucket),
        kv(settings.programs_bucket),
        kv(settings.nonces_bucket, ttl=2 * settings.replay_window),
        kv(settings.commands_bucket, ttl=KEY_TTL),
    ]


async def provision(js: JetStreamContext, settings: CommonSettings) -> list[str]:
    """The init step, the one owner of the stream and the buckets: create them, or bring the stream
    to its configuration (retention may change); returns what it created."""
    created = []
    for config in (stream_config(settings), dead_letter_stream_config(settings)):
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            created.append(f"stream {config.name}")
        await _ensure(js, config)
    for config in bucket_configs(settings):
        try:
            await js.key_value(config.bucket)
        except BucketNotFoundError:
            try:
                await js.create_key_value(config)
                created.append(f"bucket {config.bucket}")
                continue
            except BadRequestError:
                pass  # another init step created it meanwhile
        await _replicate_bucket(js, config)
    return created


async def _replicate_bucket(js: JetStreamContext, config: KeyValueConfig) -> None:
    """An existing bucket keeps its shape (history, TTL: fixed at creation) but takes the replica
    count: its stream is updated when that differs (JetStream moves the data itself)."""
    stream = (await js.stream_info(f"KV_{config.bucket}")).config
    if stream.num_replicas != config.replicas:
        stream.num_replicas = config.replicas
        await js.update_stream(stream)


async def bind_stream(js: JetStreamContext, settings: CommonSettings) -> None:
    """Services bind to the stream; they never create or reconfigure it."""
    try:
        await js.stream_info(settings.stream_name)
    except NotFoundError:
        raise MissingInfrastructure(f"the JetStream stream {settings.stream_name} does not exist: {INIT_HINT}") from None


async def bind_dead_letter_stream(js: JetStreamContext, settings: CommonSettings) -> None:
    try:
        await js.stream_info(settings.dead_letter_stream)
    except NotFoundError:
        raise MissingInfrastructure(
            f"the JetStream stream {settings.dead_letter_stream} (dead letters) does not exist: {INIT_HINT}") from None


async def bind_kv(js: JetStreamContext, bucket: str) -> KeyValue:
    """Services bind to buckets; they never create them."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        raise MissingInfrastructure(f"the KV bucket {bucket} does not exist: {INIT_HINT}") from None


async def ensure_kv(js: JetStreamContext, bucket: str, history: int = 1, ttl: float | None = None) -> KeyValue:
    """Bind to a KV bucket, creating it if missing; ``ttl`` (seconds) expires its entries."""
    try:
        return await js.key_value(bucket)
    except Exception:
        try:
            return await js.create_key_value(
                KeyValueConfig(bucket=bucket, history=history, storage=StorageType.FILE, ttl=ttl)
            )
        except BadRequestError:
            # Another replica created it between our two calls.
            return await js.key_value(bucket)


async def publish(js: JetStreamContext, subject: str, message: Message, timeout: float = 5.0):
    """Publish a fact to JetStream and wait for the stream's ack (raises if not stored)."""
    return await js.publish(
        subject, message.to_bytes(), timeout=timeout, headers={"Nats-Msg-Id": message.msg_id}
    )
