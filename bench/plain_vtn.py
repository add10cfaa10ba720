"""The baseline VTN: a plain ``openleadr.OpenADRServer`` as a library user would run it, in its own
process so that it can be pinned to the server CPU and its CPU time measured like the gateway's.

It keeps VENs in a dict (``ven_lookup`` must return a dict with ven_id and registration_id, or
openleadr answers every message with oadrRequestReregistration), accepts registrations, and uses
openleadr's own per-VEN event queues (no on_poll handler) for ``add_event``.

Talks to the benchmark over pipes: lines on stdout that start with ``BENCH `` are JSON for it (the
rest is openleadr's banner); commands come one per line on stdin:

  add_events   add_event() for every known VEN, timed; answers {"added", "start", "end"}
  status       answers {"responses", "last_response_at"} (on_created_event callbacks so far)
  readings     answers {"reports", "readings"}: oadrReports and their intervals taken in by
               on_update_report (which only counts them, like a library user who stores nothing)

Times are time.monotonic(), comparable with the benchmark process's.

mTLS mode (``--tls-cert/--tls-key/--tls-ca``) is openleadr's own: ``OpenADRServer(http_cert=,
http_key=, http_ca_file=)`` makes an ``ssl.SSLContext(PROTOCOL_TLS_SERVER)`` (Python's defaults:
TLS 1.2+, its default cipher list, which has the 2.0b ECC suite but not the RSA one) with
``CERT_REQUIRED`` and one certificate chain. On a TLS request that names a venID, openleadr then
requires the connection's client-certificate fingerprint to equal the ``fingerprint`` its
``ven_lookup`` returns for that venID (hence the third column of ``--vens-file``), and with
``--verify-signatures`` also that the message is signed by that certificate, that the XMLDSig
verifies and that its ReplayProtect timestamp is at most 5 s old and the nonce unused. Signing is
separate: openleadr signs every response (``create_message(cert=, key=)``) whenever it has a
``cert``/``key`` pair (``--sign-cert/--sign-key``), with or without TLS, and never otherwise.
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
    def __init__(self, port: int, poll_interval: float, tls: tuple[str, str, str] | None = None,
                 sign: tuple[str, str] | None = None, verify_signatures: bool = False):
        self.vens: dict[str, dict] = {}
        self.responses = 0
        self.last_response_at = 0.0
        self.reports = 0
        self.readings = 0
        tls_cert, tls_key, tls_ca = tls or (None, None, None)
        sign_cert, sign_key = sign or (None, None)
        self.server = OpenADRServer(vtn_id=VTN_ID, http_host="127.0.0.1", http_port=port,
                                    ven_lookup=self.ven_lookup,
                                    requested_poll_freq=timedelta(seconds=poll_interval),
                                    http_cert=tls_cert, http_key=tls_key, http_ca_file=tls_ca,
                                    cert=sign_cert, key=sign_key, show_fingerprint=False,
                                    verify_message_signatures=verify_signatures)
        self.server.add_handler("on_create_party_registration", self.on_create_party_registration)
        self.server.add_handler("on_update_report", self.on_update_report)

    def ven_lookup(self, ven_id: str) -> dict | None:
        return self.vens.get(ven_id)

    def add_ven(self, ven_id: str, registration_id: str, ven_name: str = "", fingerprint: str | None = None) -> None:
        self.vens[ven_id] = {"ven_id": ven_id, "ven_name": ven_name, "registration_id": registration_id,
                             "fingerprint": fingerprint}

    async def on_create_party_registration(self, payload: dict):
        ven_id, registration_id = "ven-" + secrets.token_hex(6), "reg-" + secrets.token_hex(8)
        # Over TLS openleadr adds the client certificate's fingerprint to the payload.
        self.add_ven(ven_id, registration_id, payload.get("ven_name") or "", payload.get("fingerprint"))
        return ven_id, registration_id

    def on_update_report(self, report: dict) -> None:
        """One oadrReport of an oadrUpdateReport (openleadr calls this per report when no report
        callbacks were registered): counted, nothing kept."""
        self.reports += 1
        self.readings += len(report.get("intervals") or ())

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
            elif command == "readings":
                say(reports=self.reports, readings=self.readings)
            elif command == "status":
                say(responses=self.responses, last_response_at=self.last_response_at)
            elif command:
                say(error=f"unknown command {command!r}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--vens-file", help="lines 'venID registrationID [fingerprint]' to preload into ven_lookup")
    parser.add_argument("--tls-cert", help="mTLS: the server certificate (PEM)")
    parser.add_argument("--tls-key", help="mTLS: its key")
    parser.add_argument("--tls-ca", help="mTLS: the CA that issued the VENs' certificates")
    parser.add_argument("--sign-cert", help="sign every response with this certificate ...")
    parser.add_argument("--sign-key", help="... and this key")
    parser.add_argument("--verify-signatures", action="store_true",
                        help="with TLS: require and verify the VENs' XML signatures (openleadr's default is on; "
                             "here it is off unless asked for)")
    args = parser.parse_args()
    tls = (args.tls_cert, args.tls_key, args.tls_ca)
    if any(tls) and not all(tls):
        parser.error("--tls-cert, --tls-key and --tls-ca go together")
    if bool(args.sign_cert) != bool(args.sign_key):
        parser.error("--sign-cert and --sign-key go together")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("openleadr").setLevel(logging.WARNING)
    vtn = PlainVtn(args.port, args.poll_interval, tls=tls if all(tls) else None,
                   sign=(args.sign_cert, args.sign_key) if args.sign_cert else None,
                   verify_signatures=args.verify_signatures)
    if args.vens_file:
        with open(args.vens_file) as f:
            for line in f:
                ven_id, registration_id, *fingerprint = line.split()
                vtn.add_ven(ven_id, registration_id, fingerprint=fingerprint[0] if fingerprint else None)
    await vtn.server.run()
    say(ready=True, vens=len(vtn.vens), tls=all(tls), signs=bool(args.sign_cert),
        verifies=bool(all(tls) and args.verify_signatures))
    await vtn.serve_commands()  # until the benchmark closes our stdin or stops us


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
