"""``adrstack tail [SUBJECT]``: print what is published on NATS, one line per message, for those
without the ``nats`` CLI (``nats sub -s URL 'openadr.>'`` shows the same messages)."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from . import endpoints
from .options import DEFAULT_NATS_URL

DEFAULT_PREFIX = "openadr"


@dataclass(frozen=True)
class Target:
    nats_url: str
    subject: str
    origin: str  # where the URL came from, said on stderr


def resolve(nats_url: str | None, source: str | None, subject: str | None, data_dir: Path) -> Target:
    """The NATS to tail: the one given (--nats-url, NATS_URL), else that of the `adrstack up` running
    on ``data_dir`` (its endpoints file), else the default. The subject defaults to ``<prefix>.>``,
    the prefix that `up`'s if its NATS is the one tailed."""
    if nats_url:
        return Target(nats_url, subject or f"{DEFAULT_PREFIX}.>", f"from {source}")
    found = endpoints.read(data_dir)
    if found is not None and found.get("nats_url"):
        prefix = found.get("subject_prefix") or DEFAULT_PREFIX
        return Target(found["nats_url"], subject or f"{prefix}.>",
                      f"the NATS of the adrstack up running on {data_dir}, pid {found['pid']}")
    return Target(DEFAULT_NATS_URL, subject or f"{DEFAULT_PREFIX}.>",
                  f"the default: no adrstack up runs on {data_dir}; --nats-url or NATS_URL names another")


def render_payload(data: bytes) -> str:
    """Compact JSON when the payload is JSON; otherwise a marked, escaped form that cannot break the
    one-line-per-message layout (newlines, control characters, binary)."""
    try:
        return json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        return "text:" + json.dumps(data.decode("utf-8"), ensure_ascii=False)
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode("ascii")


def format_line(subject: str, received: datetime, data: bytes) -> str:
    return f"{subject} {received.isoformat(timespec='milliseconds')} {render_payload(data)}"


async def tail(nats_url: str, subject: str, out: TextIO, err: TextIO, connect_deadline: float = 10.0,
               origin: str | None = None) -> int:
    import nats

    where = f"{nats_url} ({origin})" if origin else nats_url

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def disconnected() -> None:
        if stop.is_set():  # nats-py reports its own close() as a disconnection
            return
        print(f"adrstack tail: lost {nats_url}; reconnecting", file=err, flush=True)

    async def reconnected() -> None:
        print(f"adrstack tail: reconnected to {nats_url}", file=err, flush=True)

    async def error(e: Exception) -> None:
        # nats-py reports every failed reconnect here; the disconnected line already said so.
        pass

    # Once connected it reconnects for ever; but nats-py retries a first connection for ever too,
    # so that one gets a deadline, and Ctrl-C ends it.
    connecting = asyncio.ensure_future(nats.connect(
        nats_url, connect_timeout=2, max_reconnect_attempts=-1,
        disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({connecting, stopping}, timeout=connect_deadline, return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done() or connecting.exception() is not None:
        why = repr(connecting.exception()) if connecting.done() else "no answer"
        for task in (connecting, stopping):
            task.cancel()
        await asyncio.gather(connecting, stopping, return_exceptions=True)
        if stop.is_set():
            return 0
        print(f"adrstack tail: cannot connect to {where}: {why} within {connect_deadline:g}s",
              file=err, flush=True)
        return 1
    stopping.cancel()
    nc = connecting.result()

    async def on_message(msg) -> None:
        try:
            out.write(format_line(msg.subject, datetime.now(timezone.utc), msg.data) + "\n")
            out.flush()  # a reader on a pipe wants each message as it arrives
        except BrokenPipeError:  # e.g. `adrstack tail | head`: the reader has gone
            stop.set()

    try:
        await nc.subscribe(subject, cb=on_message)
        await nc.flush()
        print(f"adrstack tail: {subject} on {where}; Ctrl-C to stop", file=err, flush=True)
        await stop.wait()
    finally:
        try:
            await nc.close()
        except Exception:  # closing a connection that is already gone
            pass
    return 0


def run_tail(target: Target) -> int:
    try:
        return asyncio.run(tail(target.nats_url, target.subject, sys.stdout, sys.stderr, origin=target.origin))
    except BrokenPipeError:
        return 0
