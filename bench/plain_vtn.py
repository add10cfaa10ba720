"""The baseline VTN: a plain ``openleadr.OpenADRServer`` as a library user would run it, in its own
process so that it can be pinned to the server CPU and its CPU time measured like the gateway's.

It keeps VENs in a dict (``ven_lookup`` must return a dict with ven_id and registration_id, or
openleadr answers every message with oadrRequestReregistration), accepts registrations, and uses
openleadr's own per-VEN event queues (no on_poll handler) for ``add_event``.

Talks to the benchmark over pipes: lines on stdout that start with ``BENCH `` are JSON for it (the
rest is openleadr's banner); commands come one per line on stdin:

  add_events   add_event() for every known VEN, timed; answers {"added", "start", "end"}
  status       answers {"responses", "last_response_at"} (on_created_event callbacks so far)

Times are time.monotonic(), comparable with the benchmark process's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys
import time
from datetime import datetime, timedelta, timezone

from openleadr import OpenADRServer

VTN_ID = "BENCH-VTN"


def say(**payload) -> None:
    sys.stdout.write("BENCH " + json.dumps(payload) + "\n")
    sys.stdout.flush()


class PlainVtn:
    def __init__(self, port: int, poll_interval: float):
        self.vens: dict[str, dict] = {}
        self.responses = 0
        self.last_response_at = 0.0
        self.server = OpenADRServer(vtn_id=VTN_ID, http_host="127.0.0.1", http_port=port,
                                    ven_lookup=self.ven_lookup,
                                    requested_poll_freq=timedelta(seconds=poll_interval))
        self.server.add_handler("on_create_party_registration", self.on_create_party_registration)

    def ven_lookup(self, ven_id: str) -> dict | None:
        return self.vens.get(ven_id)

    def add_ven(self, ven_id: str, registration_id: str, ven_name: str = "") -> None:
        self.vens[ven_id] = {"ven_id": ven_id, "ven_name": ven_name, "registration_id": registration_id}

    async def on_create_party_registration(self, payload: dict):
        ven_id, registration_id = "ven-" + secrets.token_hex(6), "reg-" + secrets.token_hex(8)
        self.add_ven(ven_id, registration_id, payload.get("ven_name") or "")
        return ven_id, registration_id

    def on_opt(self, ven_id: str, event_id: str, opt_type: str) -> None:
        self.responses += 1
        self.last_response_at = time.monotonic()

    def add_events(self) -> dict:
        start = time.monotonic()
        dtstart = datetime.now(timezone.utc)
        for ven_id in self.vens:
            # One event per VEN (openleadr's queues are per VEN, and its callbacks per event id).
            self.server.add_event(ven_id=ven_id, signal_name="SIMPLE", signal_type="level",
                                  intervals=[{"dtstart": dtstart, "duration": timedelta(hours=1),
                                              "signal_payload": 2.0}],
                                  callback=self.on_opt)
        return {"added": len(self.vens), "start": start, "end": time.monotonic()}

    async def serve_commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            command = line.decode().strip()
            if command == "add_events":
                say(**self.add_events())
            elif command == "status":
                say(responses=self.responses, last_response_at=self.last_response_at)
            elif command:
                say(error=f"unknown command {command!r}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--vens-file", help="lines 'venID registrationID' to preload into ven_lookup")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("openleadr").setLevel(logging.WARNING)
    vtn = PlainVtn(args.port, args.poll_interval)
    if args.vens_file:
        with open(args.vens_file) as f:
            for line in f:
                ven_id, registration_id = line.split()
                vtn.add_ven(ven_id, registration_id)
    await vtn.server.run()
    say(ready=True, vens=len(vtn.vens))
    await vtn.serve_commands()  # until the benchmark closes our stdin or stops us


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
