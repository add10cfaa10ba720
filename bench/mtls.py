"""Idle polls over mutual TLS, unsigned and XML-signed, per server CPU-second.

    uv run python bench/mtls.py [--seconds 8] [--vens 1000] [--identities 1]

``measure_mtls(target, bench, ...)`` measures any server given its port, its processes and the
VEN certificates its VENs are bound to (``MtlsTarget``); this script demonstrates it on the plain
openleadr VTN in its own mTLS mode (``plain_vtn.py --tls-*``), three times, each in a fresh process:

  * unsigned: TLS 1.2 ECDHE-ECDSA-AES128-SHA256 with a client certificate, openleadr's signature
    verification off, no signing key (its responses are then unsigned);
  * signed: the same with ``verify_message_signatures=True`` and an ECC signing pair, polls
    XML-signed by the VEN's certificate (fresh timestamp, unique nonce), every response signed;
  * RSA-signed responses: unsigned polls, every response signed with the VTN's RSA-2048 pair.

The polls are signed on the load generator as they are sent (``signing.PollSigner``, ~35 us each
with ECC; openleadr's own create_message takes ~650 us) because openleadr refuses a signature more
than 5 s old; for a server whose replay window outlasts the run, ``SignedPolls.presign`` signs
them ahead. The generator's CPU per poll is printed with each figure.

Rules as in bench/README.md: server on CPU 0, load generator on CPU 1, raw keep-alive sockets
(uvloop), errors never count as throughput. The last line is the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rawload import (OADR_ECC_SUITE, ByIdentity, ClosedLoop, Messages, Pool, describe,
                     http_call, is_ok_response, now, tls_client_context)
from signing import PollSigner, SignedPolls, signing_cost
from stack import (HOST, LOADGEN_CPU, SERVER_CPU, Bench, BenchError, ForeignLoad, PlainVtn, cpu_seconds,
                   own_cpu_seconds, run_benchmark)

from adrstack.runtime.certs import CertSet, ensure_certs

_SIGNATURE = b"<ds:SignatureValue>"
STRANGER = "bench-stranger"  # a VEN certificate of the bench CA bound to no VEN
VTN_PATH = "/OpenADR2/Simple/2.0b"


@dataclass
class Identity:
    """One VEN certificate and the venIDs the server binds to it."""

    cert: Path
    key: Path
    fingerprint: str
    ven_ids: list[str]


@dataclass
class MtlsTarget:
    name: str
    port: int
    server_pids: list[int]
    ca: Path  # the CA that issued the server's certificate
    identities: list[Identity]
    signed_polls: bool  # send XML-signed polls (the server verifies them)
    signed_responses: bool  # the server signs its answers (checked on every answer)
    host: str = HOST
    # A certificate from the same CA bound to none of the VENs: a poll over it must be refused
    # (proof that the server binds venIDs to certificates); None skips that probe.
    stranger: tuple[Path, Path] | None = None
    # With signed_responses: the certificate the answers must be signed with, (kind "ecc"/"rsa",
    # its fingerprint). Every answer's SignatureMethod is then checked, and one answer is verified
    # by openleadr (signxml) against that certificate before measuring.
    response_signer: tuple[str, str] | None = None


@dataclass
class MtlsResult:
    name: str
    signed_polls: bool
    signed_responses: bool
    connections: int = 0
    polls: int = 0
    errors: int = 0
    wall: float = 0.0
    server_cpu: float = 0.0
    loadgen_cpu: float = 0.0
    probes: list[str] = field(default_factory=list)
    foreign: str = ""
    error_report: str = ""

    @property
    def throughput(self) -> float:
        return self.polls / self.wall if self.wall else 0.0

    @property
    def polls_per_cpu(self) -> float:
        return self.polls / self.server_cpu if self.server_cpu else 0.0

    @property
    def loadgen_us_per_poll(self) -> float:
        return self.loadgen_cpu / max(1, self.polls) * 1e6


_SIGNATURE_METHODS = {"ecc": b"xmldsig-more#ecdsa-sha256", "rsa": b"xmldsig-more#rsa-sha256"}


def answer_check(signed_responses: bool, signer_kind: str | None = None):
    """An OK oadrResponse, signed or not as the run says (a server that signs when it should not,
    or does not when it should, is not measuring what the line claims), and signed with the kind
    of key (``signer_kind`` "ecc"/"rsa") the run says."""
    method = _SIGNATURE_METHODS[signer_kind] if signer_kind else None

    def check(status: int, body: bytes, index: int) -> str | None:
        if not is_ok_response(status, body):
            return describe(status, body)
        if (_SIGNATURE in body) != signed_responses:
            return "signed response" if not signed_responses else "unsigned response"
        if method is not None and method not in body:
            return f"response not signed with {signer_kind.upper()}"
        return None

    return check


def poll_requests(target: MtlsTarget, messages: Messages, presign: int = 0) -> tuple[ByIdentity, list[PollSigner], float]:
    """The requests (by identity), the signers, and the CPU seconds spent pre-signing ``presign``
    polls (spread over the identities)."""
    signers = []
    groups: list[Sequence[bytes]] = []
    presign_cpu = 0.0
    for identity in target.identities:
        if target.signed_polls:
            signer = PollSigner(identity.cert.read_bytes(), identity.key.read_bytes())
            signers.append(signer)
            polls = SignedPolls(signer, messages.post, identity.ven_ids)
            presign_cpu += polls.prefill(-(-presign // len(target.identities)))
            groups.append(polls)
        else:
            groups.append([messages.poll(v) for v in identity.ven_ids])
    return ByIdentity(groups), signers, presign_cpu


async def probe_certificate_binding(target: MtlsTarget, messages: Messages) -> list[str]:
    """A VEN's poll over a certificate of the same CA that is not the VEN's must be refused."""
    if target.stranger is None:
        return []
    identity = target.identities[0]
    ctx = tls_client_context(target.ca, *target.stranger)
    body = messages.poll_body(identity.ven_ids[0])
    if target.signed_polls:
        body = PollSigner(target.stranger[0].read_bytes(), target.stranger[1].read_bytes()).poll_body(
            identity.ven_ids[0])
    status, answer = await http_call(target.host, target.port, "POST", f"{VTN_PATH}/OadrPoll", body,
                                     "application/xml", timeout=30, ssl=ctx)
    if is_ok_response(status, answer):
        raise BenchError(f"{target.name}: a VEN's poll over another certificate was accepted; the server "
                         "does not bind venIDs to certificates as this run needs")
    return [f"poll over a certificate not bound to the VEN: refused ({describe(status, answer)})"]


async def probe_signature_checks(target: MtlsTarget, messages: Messages, signer: PollSigner) -> list[str]:
    """Proof that the server verifies signatures: the same signed poll twice (the second is a
    replay), and an unsigned poll, must not be answered OK."""
    identity = target.identities[0]
    ctx = tls_client_context(target.ca, identity.cert, identity.key)
    path = f"{VTN_PATH}/OadrPoll"
    signed = signer.poll_body(identity.ven_ids[0])
    notes = []
    for what, body, must_pass in (("signed poll", signed, True), ("replayed signed poll", signed, False),
                                  ("unsigned poll", messages.poll_body(identity.ven_ids[0]), False)):
        status, answer = await http_call(target.host, target.port, "POST", path, body, "application/xml",
                                         timeout=30, ssl=ctx)
        ok = is_ok_response(status, answer)
        notes.append(f"{what}: {'accepted' if ok else 'refused (' + describe(status, answer) + ')'}")
        if ok != must_pass:
            raise BenchError(f"{target.name}: a {what} was {'accepted' if ok else 'refused'}; the server "
                             f"does not verify signatures as this run needs: {describe(status, answer)}")
    return notes


async def probe_signed_answer(target: MtlsTarget, messages: Messages, signer: PollSigner | None) -> list[str]:
    """One answer verified by openleadr (signxml, its ReplayProtect check included) and signed by
    the certificate the run says."""
    from openleadr.messaging import validate_xml_schema, validate_xml_signature

    kind, fingerprint = target.response_signer
    identity = target.identities[0]
    ctx = tls_client_context(target.ca, identity.cert, identity.key)
    body = signer.poll_body(identity.ven_ids[0]) if signer else messages.poll_body(identity.ven_ids[0])
    status, answer = await http_call(target.host, target.port, "POST", f"{VTN_PATH}/OadrPoll", body,
                                     "application/xml", timeout=60, ssl=ctx)
    if not is_ok_response(status, answer):
        raise BenchError(f"{target.name}: a poll was not answered OK: {describe(status, answer)}")
    try:
        validate_xml_signature(validate_xml_schema(answer), cert_fingerprint=fingerprint)
    except Exception as e:  # noqa: BLE001 -- whatever openleadr raises, the answer is not what the run needs
        raise BenchError(f"{target.name}: openleadr does not accept the answer's signature as the VTN's "
                         f"{kind.upper()} certificate's: {type(e).__name__}: {e}") from None
    return [f"an answer's signature verified by openleadr (signxml): the VTN's {kind.upper()} certificate "
            f"{fingerprint}"]


async def measure_mtls(target: MtlsTarget, bench: Bench, seconds: float, warmup: float,
                       connections: int = 64, presign: int = 0) -> MtlsResult:
    """Closed loop over keep-alive mTLS connections (TLS 1.2, the 2.0b ECC suite, one VEN
    certificate per connection, at least one connection per certificate): after ``warmup``
    seconds, polls answered OK, server CPU (user+sys of ``server_pids``) and the load generator's
    CPU over ``seconds``.

    Signed polls are signed as they are sent unless ``presign`` > 0: that many are signed before
    the loop starts (all with the same timestamp, so only for a server whose replay window is
    longer than warmup + seconds; once used up, the rest are signed as sent)."""
    result = MtlsResult(target.name, target.signed_polls, target.signed_responses)
    messages = Messages(target.host, target.port)
    requests, signers, presign_cpu = poll_requests(target, messages, presign if target.signed_polls else 0)
    result.probes = await probe_certificate_binding(target, messages)
    if signers:
        result.probes += await probe_signature_checks(target, messages, signers[0])
    if target.signed_responses and target.response_signer:
        result.probes += await probe_signed_answer(target, messages, signers[0] if signers else None)
    if signers and not presign:
        result.probes.append("polls signed as sent")
    contexts = [tls_client_context(target.ca, i.cert, i.key, OADR_ECC_SUITE) for i in target.identities]
    result.connections = max(connections, len(contexts))
    pool = await Pool(target.host, target.port, ssl=contexts).open(result.connections)
    try:
        cipher = pool.conns[0].transport.get_extra_info("cipher")
        result.probes.append(f"negotiated {cipher[1]} {cipher[0]}")
        closed = ClosedLoop(pool, requests, answer_check(
            target.signed_responses, target.response_signer[0] if target.response_signer else None))
        running = asyncio.create_task(closed.run())
        await asyncio.sleep(warmup)
        foreign = ForeignLoad(bench)
        ok0, err0, t0, cpu0, own0 = (closed.ok, closed.errors, now(), cpu_seconds(target.server_pids),
                                     own_cpu_seconds())
        await asyncio.sleep(seconds)
        ok1, err1, t1, cpu1, own1 = (closed.ok, closed.errors, now(), cpu_seconds(target.server_pids),
                                     own_cpu_seconds())
        result.foreign = foreign.verdict()
        closed.stop()
        await running
        result.polls, result.errors, result.wall = ok1 - ok0, err1 - err0, t1 - t0
        result.server_cpu, result.loadgen_cpu = cpu1 - cpu0, own1 - own0
    finally:
        pool.close()
        result.error_report = pool.error_report()
    if signers and presign:
        left = sum(group.ready for group in requests.groups)
        result.probes.append(f"{presign} polls signed ahead ({presign_cpu / presign * 1e6:.1f} us CPU each), "
                             + (f"{left} of them left unused" if left else "all used, the rest signed as sent"))
    return result


# --------------------------------------------------------------------------- the plain openleadr VTN


def bench_identities(certs_dir: Path, vens: int, identities: int) -> tuple[CertSet, list[Identity]]:
    """The CA, the VTN's certificates and ``identities`` VEN certificates in ``certs_dir``; the
    ``vens`` venIDs are spread over them (1: every bench VEN shares one certificate)."""
    names = [f"bench-ven-{k}" for k in range(identities)]
    certs = ensure_certs(certs_dir, [*names, STRANGER])
    ven_ids = [f"ven-{i:06d}" for i in range(vens)]
    groups = [ven_ids[k::identities] for k in range(identities)]
    return certs, [Identity(certs.vens[n].cert, certs.vens[n].key, certs.vens[n].fingerprint, g)
                   for n, g in zip(names, groups)]


async def start_plain_mtls(bench: Bench, certs: CertSet, identities: list[Identity], name: str,
                           verify: bool, sign_with: str | None) -> PlainVtn:
    """plain_vtn.py in openleadr's mTLS mode (the ECC chain), the VENs preloaded into its
    ven_lookup with their certificates' fingerprints; ``sign_with`` "ecc"/"rsa" signs responses
    with that VTN pair."""
    vens_file = bench.tmp / f"{name}-vens.txt"
    vens_file.write_text("".join(f"{v} reg-{v} {i.fingerprint}\n" for i in identities for v in i.ven_ids))
    argv = ["--tls-cert", str(certs.vtn_ecc.cert), "--tls-key", str(certs.vtn_ecc.key), "--tls-ca", str(certs.ca.cert)]
    if verify:
        argv.append("--verify-signatures")
    if sign_with:
        pair = certs.vtn_ecc if sign_with == "ecc" else certs.vtn_rsa
        argv += ["--sign-cert", str(pair.cert), "--sign-key", str(pair.key)]
    plain = await PlainVtn(bench, {SERVER_CPU}, vens_file=vens_file, name=name, extra_argv=argv).started()
    bench.note_placement(plain.child, name)
    return plain


# The three figures, keyed as ratio_lines() expects: (key, name, signed polls + verification, response signing).
PLAIN_RUNS = (
    ("unsigned", "plain openleadr mTLS, signatures off", False, None),
    ("signed", "plain openleadr mTLS, signatures on (ECC)", True, "ecc"),
    ("rsa", "plain openleadr mTLS, RSA-signed responses", False, "rsa"),
)


def response_signer(certs: CertSet, sign_with: str | None) -> tuple[str, str] | None:
    """(kind, fingerprint) of the VTN pair ``sign_with`` ("ecc"/"rsa") names, for MtlsTarget."""
    if not sign_with:
        return None
    return sign_with, (certs.vtn_ecc if sign_with == "ecc" else certs.vtn_rsa).fingerprint


async def measure_plain(bench: Bench, certs: CertSet, identities: list[Identity], args) -> dict[str, MtlsResult]:
    results = {}
    for key, name, signed, sign_with in PLAIN_RUNS:
        plain = await start_plain_mtls(bench, certs, identities, f"plain-mtls-{key}", verify=signed,
                                       sign_with=sign_with)
        try:
            stranger = certs.vens[STRANGER]
            target = MtlsTarget(name, plain.port, [plain.child.pid], certs.ca.cert, identities,
                                signed_polls=signed, signed_responses=sign_with is not None,
                                stranger=(stranger.cert, stranger.key),
                                response_signer=response_signer(certs, sign_with))
            results[key] = await measure_mtls(target, bench, args.seconds, args.warmup, args.connections)
            bench.check_alive(plain.child)
        finally:
            bench.stop(plain.child)
        report(results[key])
    return results


# --------------------------------------------------------------------------- output


def report(r: MtlsResult) -> None:
    print(f"\n== {r.name}")
    for note in r.probes:
        print(f"  {note}")
    print(f"  closed loop, {r.connections} connections, {r.wall:.1f} s: {r.polls} polls, {r.throughput:,.1f} polls/s, "
          f"{r.errors} errors")
    print(f"  server CPU {r.server_cpu:.2f} s ({r.server_cpu / max(r.wall, 1e-9):.0%} of one core) "
          f"-> {r.polls_per_cpu:,.1f} polls per server CPU-second")
    print(f"  load generator CPU {r.loadgen_cpu:.2f} s ({r.loadgen_cpu / max(r.wall, 1e-9):.0%} of one core, "
          f"{r.loadgen_us_per_poll:.1f} us per poll)")
    print(f"  {r.foreign}")
    if r.error_report:
        print(f"  errors: {r.error_report}")


def ratio_lines(gateway: dict[str, MtlsResult] | None, plain: dict[str, MtlsResult],
                targets: dict[str, float] | None = None) -> list[str]:
    """The figure lines for poll.py: mTLS polls per server CPU-second with signatures off, then
    on, and RSA-signed responses per server CPU-second, each against the plain library; both
    dicts keyed "unsigned", "signed", "rsa" (gateway None: the plain figures only). ``targets``
    (ratios by the same keys) adds "target >= Nx: met / NOT met"; a gateway "signed_rsa" result
    (signatures required, answers signed with RSA) is added to the signatures-on line."""
    lines = []
    for key, what in (("unsigned", "mTLS polls/CPU-s, signatures off"), ("signed", "mTLS polls/CPU-s, signatures on"),
                      ("rsa", "RSA-signed responses/CPU-s")):
        p = plain[key]
        if gateway is None:
            lines.append(f"{what}: plain openleadr {p.polls_per_cpu:,.1f}")
            continue
        g = gateway[key]
        ratio = g.polls_per_cpu / p.polls_per_cpu if p.polls_per_cpu else float("nan")
        line = f"{what}: {ratio:.2f}x plain openleadr ({g.polls_per_cpu:,.1f} vs {p.polls_per_cpu:,.1f})"
        if targets and key in targets:
            line += f", target >= {targets[key]:g}x: {'met' if ratio >= targets[key] else 'NOT met'}"
        if key == "signed" and "signed_rsa" in gateway:
            r = gateway["signed_rsa"].polls_per_cpu
            line += (f"; RSA-signed answers instead: {r:,.1f} "
                     f"({r / p.polls_per_cpu if p.polls_per_cpu else float('nan'):.2f}x plain's ECC figure)")
        lines.append(line)
    return lines


async def run(args, bench: Bench) -> int:
    certs, identities = bench_identities(bench.tmp / "certs", args.vens, args.identities)
    print(f"certificates in {certs.dir}: {args.vens} VENs on {args.identities} VEN certificate(s), "
          f"TLS 1.2 {OADR_ECC_SUITE}")
    signer = PollSigner(identities[0].cert.read_bytes(), identities[0].key.read_bytes())
    ecc_cost = signing_cost(signer)
    print(f"load generator: {args.loop}, pinned to CPU {LOADGEN_CPU}; signing one poll costs it "
          f"{ecc_cost * 1e6:.1f} us CPU (ECC P-256)")

    plain = await measure_plain(bench, certs, identities, args)
    print()
    bench.print_placement()
    bad = [r for r in plain.values() if r.errors]
    for r in bad:
        print(f"\n!!!!! {r.name}: {r.errors} errors -- NOT COUNTED AS THROUGHPUT; these figures are suspect: "
              f"{r.error_report}")
    print()
    for line in ratio_lines(None, plain):
        print(line)
    u, s, rsa = plain["unsigned"], plain["signed"], plain["rsa"]
    print(f"mtls: plain openleadr {u.polls_per_cpu:,.1f} unsigned / {s.polls_per_cpu:,.1f} signed polls per CPU-s, "
          f"{rsa.polls_per_cpu:,.1f} RSA-signed responses per CPU-s ({rsa.throughput:,.1f}/s); load generator "
          f"{u.loadgen_us_per_poll:.0f} / {s.loadgen_us_per_poll:.0f} / {rsa.loadgen_us_per_poll:.0f} us per poll")
    return 1 if bad else 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="measuring window of each run; default 8")
    p.add_argument("--warmup", type=float, default=3.0, help="closed-loop seconds before measuring; default 3")
    p.add_argument("--vens", type=int, default=1000, help="polling VENs; default 1000")
    p.add_argument("--identities", type=int, default=1,
                   help="VEN certificates the VENs are spread over; default 1 (all share one)")
    p.add_argument("--connections", type=int, default=64, help="keep-alive TLS connections; default 64")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, certificates)")
    return p.parse_args(argv)


def main() -> int:
    return run_benchmark("mtls", run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
