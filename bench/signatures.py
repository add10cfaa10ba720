"""XML signature micro-benchmark: the gateway codec's sign and verify against openleadr's, same run.

    uv run python bench/signatures.py [--seconds 1.0]

Two messages: the answer to an idle poll (oadrResponse) and an oadrDistributeEvent with one event
(one signal, six intervals). For each signer (RSA-2048 and P-256, certificates made on the spot
in a temp dir, removed afterwards):
  * sign: ``Signer.sign`` of the rendered bytes, against openleadr's ``create_message(...,
    cert=, key=)`` (which renders with its templates too; the render is ~1 us of ours);
  * verify: ``signature.verify`` of the parsed tree of what openleadr signed (the gateway's
    reader parses anyway; parse + XSD is the same for both), against openleadr's
    ``validate_xml_signature`` of the same tree (its replay window, 5 s, is widened to a day and its nonce cache cleared
    between calls, so that one message can be verified again and again).
Each figure is the median of 5 runs of ``--seconds`` each, in microseconds per message, on one
core (run it pinned, e.g. ``taskset -c 1``, for steadier figures). The last line is the summary.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from openleadr import messaging

from adrstack.gateway.codec import render
from adrstack.gateway.codec.signature import Signer, verify

RUNS = 5


def make_pair(directory: Path, kind: str) -> tuple[Path, Path]:
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{kind}")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{kind}.crt", directory / f"{kind}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def per_call(fn, seconds: float) -> float:
    """Median over RUNS of the mean time of one call, in microseconds."""
    fn()  # warm (caches, first-use imports)
    figures = []
    for _ in range(RUNS):
        calls, started = 0, time.perf_counter()
        deadline = started + seconds
        while True:
            fn()
            calls += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        figures.append((now - started) / calls * 1e6)
    return statistics.median(figures)


def messages() -> dict[str, tuple[bytes, str, dict]]:
    """name -> (our rendered bytes, openleadr message type, openleadr payload) of the same message."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    parts = render.EventParts(event_id="event-1", modification_number=0, created_at=now, status="far",
                              start_at=now + timedelta(hours=1), duration=timedelta(hours=1),
                              signals=[render.EventSignal("simple", "level", "signal-1",
                                                          [(timedelta(minutes=10), 1.0)] * 6, 0.0)],
                              market_context="http://market.example.com")
    ours = {"poll answer": render.poll_ok("ven-1"),
            "distribute event": render.distribute_event("BENCH-VTN", [render.event(parts).for_ven("ven-1")],
                                                        request_id="r-1")}
    event = {"event_descriptor": {"event_id": "event-1", "modification_number": 0, "priority": 0,
                                  "market_context": "http://market.example.com", "created_date_time": now,
                                  "event_status": "far", "test_event": False},
             "active_period": {"dtstart": now + timedelta(hours=1), "duration": timedelta(hours=1)},
             "event_signals": [{"signal_name": "simple", "signal_type": "level", "signal_id": "signal-1",
                                "current_value": 0.0,
                                "intervals": [{"uid": i, "duration": timedelta(minutes=10), "signal_payload": 1.0}
                                              for i in range(6)]}],
             "targets": [{"ven_id": "ven-1"}], "response_required": "always"}
    openleadr = {"poll answer": ("oadrResponse", {"response": {"response_code": 200, "response_description": "OK",
                                                               "request_id": None}, "ven_id": "ven-1"}),
                 "distribute event": ("oadrDistributeEvent", {"request_id": "r-1", "vtn_id": "BENCH-VTN",
                                                              "response": {"response_code": 200,
                                                                           "response_description": "OK",
                                                                           "request_id": None},
                                                              "events": [event]})}
    return {name: (ours[name], *openleadr[name]) for name in ours}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="length of each of the 5 runs per figure")
    args = ap.parse_args()
    messaging.REPLAY_PROTECT_MAX_TIME_DELTA = timedelta(days=1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="adrstack-bench-sig-") as tmp:
        for kind in ("rsa", "ecc"):
            cert_path, key_path = make_pair(Path(tmp), kind)
            signer = Signer.from_files(cert_path, key_path)
            cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
            for name, (body, ol_type, ol_payload) in messages().items():
                signed = signer.sign(body)
                tree = etree.fromstring(signed)
                ol_signed = messaging.create_message(ol_type, cert=cert_pem, key=key_pem, **ol_payload)
                ol_tree = etree.fromstring(ol_signed.encode("utf-8"))

                def ol_verify():
                    messaging.NONCE_CACHE.clear()
                    messaging.validate_xml_signature(ol_tree)

                # The two implementations accept each other's output.
                assert verify(ol_tree).fingerprint == signer.fingerprint
                messaging.validate_xml_signature(tree, cert_fingerprint=signer.fingerprint)
                figures = {
                    "sign": per_call(lambda: signer.sign(body), args.seconds),
                    "ol sign": per_call(lambda: messaging.create_message(ol_type, cert=cert_pem, key=key_pem,
                                                                         **ol_payload),
                                        min(args.seconds, 2.0) if kind == "rsa" else args.seconds),
                    "verify": per_call(lambda: verify(ol_tree), args.seconds),
                    "ol verify": per_call(ol_verify, args.seconds),
                }
                rows.append((kind, name, figures))
                print(f"{kind:3} {name:16} {len(signed):5} B  sign {figures['sign']:8.1f} us "
                      f"(openleadr {figures['ol sign']:9.1f} us, x{figures['ol sign'] / figures['sign']:.0f})  "
                      f"verify {figures['verify']:7.1f} us (openleadr {figures['ol verify']:8.1f} us, "
                      f"x{figures['ol verify'] / figures['verify']:.1f})", flush=True)
    worst_sign = min(f["ol sign"] / f["sign"] for _, _, f in rows)
    worst_verify = min(f["ol verify"] / f["verify"] for _, _, f in rows)
    print(f"summary: signing at least x{worst_sign:.0f} and verifying at least x{worst_verify:.1f} "
          "openleadr's speed (per message, same run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
