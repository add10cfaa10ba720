"""What every stand-in service does: show what `adrstack up` gave it, answer /health where the real
one would, prove NATS and Postgres are reachable, and exit 0 on SIGTERM.

The folder holding this file goes first on PYTHONPATH, so ``python -m adrstack.gateway`` runs the
stand-in (a regular package found earlier on the path wins over the installed one).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path in ("/health", "/readyz") else 404)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def serve_health(host: str, port: int) -> None:
    server = ThreadingHTTPServer((host, port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def check_postgres() -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        rows = conn.execute("select tablename from pg_tables where schemaname='public' order by 1").fetchall()
    print("tables:", ",".join(r[0] for r in rows), flush=True)


def check_nats() -> None:
    import asyncio

    import nats

    async def run():
        nc = await nats.connect(os.environ["NATS_URL"])
        await nc.jetstream().account_info()
        await nc.close()

    asyncio.run(run())
    print("jetstream ok", flush=True)


def main(name: str) -> None:
    signal.signal(signal.SIGTERM, lambda *a: (print("bye", flush=True), sys.exit(0)))
    seen = {k: v for k, v in os.environ.items() if k.startswith("ADRSTACK_") or k in ("NATS_URL", "DATABASE_URL")}
    print("env", json.dumps(seen, sort_keys=True), flush=True)
    print("argv", json.dumps(sys.argv[1:]), flush=True)
    if name == "gateway":
        serve_health(os.environ["ADRSTACK_VTN_HOST"], int(os.environ["ADRSTACK_VTN_PORT"]))
    elif name == "api":
        serve_health(os.environ["ADRSTACK_API_HOST"], int(os.environ["ADRSTACK_API_PORT"]))
    elif name == "telemetry":
        check_postgres()
    elif name == "scheduler":
        check_nats()
    if name in ("scheduler", "telemetry") and os.environ.get(f"ADRSTACK_{name.upper()}_HEALTH_PORT"):
        serve_health(os.environ.get("ADRSTACK_HEALTH_HOST", "127.0.0.1"),
                     int(os.environ[f"ADRSTACK_{name.upper()}_HEALTH_PORT"]))
    print("ready", os.getpid(), flush=True)
    while True:
        time.sleep(1)
