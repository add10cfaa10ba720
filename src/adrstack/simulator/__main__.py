"""``adrstack simulate --vens N --vtn-url URL`` (also ``python -m adrstack.simulator``): a fleet of
simulated buildings as VENs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

DEFAULT_VTN_URL = "http://127.0.0.1:8080/OpenADR2/Simple/2.0b"
PROFILE_NAMES = ("office", "home", "ev")  # load.PROFILES, without importing it to parse


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def parse(argv: Sequence[str] | None = None, prog: str = "python -m adrstack.simulator") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Run N real OpenADR 2.0b VENs (openleadr) that report a "
                                "building's load, and shed it while an event they opted in to is active.")
    p.add_argument("--vens", "--count", dest="count", type=int, metavar="N",
                   default=int(os.environ.get("ADRSTACK_DEMO") or 3), help="how many VENs (default: ADRSTACK_DEMO or 3)")
    p.add_argument("--vtn-url", default=os.environ.get("ADRSTACK_VTN_URL") or DEFAULT_VTN_URL,
                   help=f"the VTN's OpenADR URL (default: ADRSTACK_VTN_URL or {DEFAULT_VTN_URL})")
    p.add_argument("--opt-out-rate", type=_rate, default=0.0, metavar="R",
                   help="share of the VENs (0..1) that opt out of every event: round(N*R) of them, the same "
                        "ones each run (default 0)")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="office",
                   help="daily load shape: office (40-250 kW, afternoon peak), home (3-12 kW, evening peak), "
                        "ev (20-150 kW chargers, evening and night) (default office)")
    p.add_argument("--report-interval", type=float, default=float(os.environ.get("ADRSTACK_REPORT_INTERVAL") or 10),
                   help="seconds between readings (default: ADRSTACK_REPORT_INTERVAL or 10)")
    p.add_argument("--name-prefix", default="demo-ven", help="VEN names are <prefix>-1 .. <prefix>-N")
    p.add_argument("--cert-dir", type=Path, default=os.environ.get("ADRSTACK_CERT_DIR") or None,
                   help="connect with mutual TLS: DIR holds ca.crt and <name>.crt/.key per VEN, as written by "
                        "`adrstack certs --dir DIR --ven NAME` (env ADRSTACK_CERT_DIR)")
    p.add_argument("--mqtt-url", metavar="URL", default=os.environ.get("ADRSTACK_MQTT_URL") or None,
                   help="mqtt://host[:port]: publish each event a VEN receives to <topic>/<ven name>/events and "
                        "report the number (W) last seen on <topic>/<ven name>/meter, if any; needs "
                        "adrstack[mqtt] (env ADRSTACK_MQTT_URL)")
    p.add_argument("--mqtt-topic", metavar="PREFIX", default="adrstack/simulator",
                   help="topic prefix of the MQTT bridge (default adrstack/simulator)")
    p.add_argument("--log-level", default=os.environ.get("ADRSTACK_LOG_LEVEL") or "INFO")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error("--vens must be at least 1")
    if args.report_interval <= 0:
        p.error("--report-interval must be positive")
    return args


def not_a_cancelled_job(record: logging.LogRecord) -> bool:
    return not (record.exc_info and record.exc_info[0] is asyncio.CancelledError)


def main(argv: Sequence[str] | None = None, prog: str = "python -m adrstack.simulator") -> int:
    from adrstack.shared.runner import run_service

    from .fleet import MissingCertificates, build_fleet, run_fleet

    args = parse(argv, prog)
    try:
        fleet = build_fleet(args.count, args.vtn_url, args.report_interval, args.name_prefix, cert_dir=args.cert_dir,
                            profile=args.profile, opt_out_rate=args.opt_out_rate)
    except MissingCertificates as e:
        print(f"simulator: {e}", file=sys.stderr)
        return 2
    bridge = None
    if args.mqtt_url:
        from importlib.util import find_spec

        from .mqtt import MqttBridge

        if find_spec("aiomqtt") is None:
            print("simulator: --mqtt-url needs the MQTT extra: pip install 'adrstack[mqtt]'", file=sys.stderr)
            return 2
        try:
            bridge = MqttBridge(args.mqtt_url, args.mqtt_topic)
        except ValueError as e:
            print(f"simulator: --mqtt-url: {e}", file=sys.stderr)
            return 2

    async def simulate(stop: asyncio.Event) -> None:
        # openleadr and its apscheduler log every sample and poll at INFO; keep warnings and errors.
        for noisy in ("openleadr", "apscheduler"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
        # A VEN stopped mid-poll: apscheduler cancels the poll and logs it as a failed job, with a
        # traceback; that is how a simulated VEN ends, not an error.
        logging.getLogger("apscheduler.executors.default").addFilter(not_a_cancelled_job)
        await run_fleet(fleet, stop, bridge)

    run_service(simulate, args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
