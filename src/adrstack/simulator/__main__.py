"""``python -m adrstack.simulator --count N --vtn-url URL``: a fleet of simulated buildings as VENs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

DEFAULT_VTN_URL = "http://127.0.0.1:8080/OpenADR2/Simple/2.0b"


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m adrstack.simulator",
                                description="Run N real OpenADR 2.0b VENs (openleadr) that report a building load.")
    p.add_argument("--count", type=int, default=int(os.environ.get("ADRSTACK_DEMO") or 3),
                   help="how many VENs (default: ADRSTACK_DEMO or 3)")
    p.add_argument("--vtn-url", default=os.environ.get("ADRSTACK_VTN_URL") or DEFAULT_VTN_URL,
                   help=f"the VTN's OpenADR URL (default: ADRSTACK_VTN_URL or {DEFAULT_VTN_URL})")
    p.add_argument("--report-interval", type=float, default=10.0, help="seconds between readings (default 10)")
    p.add_argument("--name-prefix", default="demo-ven", help="VEN names are <prefix>-1 .. <prefix>-N")
    p.add_argument("--cert-dir", type=Path, default=os.environ.get("ADRSTACK_CERT_DIR") or None,
                   help="connect with mutual TLS: DIR holds ca.crt and <name>.crt/.key per VEN, as written by "
                        "`adrstack certs --dir DIR --ven NAME` (env ADRSTACK_CERT_DIR)")
    p.add_argument("--log-level", default=os.environ.get("ADRSTACK_LOG_LEVEL") or "INFO")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error("--count must be at least 1")
    if args.report_interval <= 0:
        p.error("--report-interval must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from adrstack.shared.runner import run_service

    from .fleet import MissingCertificates, build_fleet, run_fleet

    args = parse(argv)
    try:
        fleet = build_fleet(args.count, args.vtn_url, args.report_interval, args.name_prefix, cert_dir=args.cert_dir)
    except MissingCertificates as e:
        print(f"simulator: {e}", file=sys.stderr)
        return 2

    async def simulate(stop: asyncio.Event) -> None:
        # openleadr and its apscheduler log every sample and poll at INFO; keep warnings and errors.
        for noisy in ("openleadr", "apscheduler"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
        await run_fleet(fleet, stop)

    run_service(simulate, args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
