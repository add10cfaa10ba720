"""The ``adrstack`` command: ``up`` runs the stack, ``migrate`` upgrades a database, ``certs`` makes
development certificates, ``token`` manages operators' API tokens, ``simulate`` runs simulated VENs,
``tail`` prints what is published on NATS."""

from __future__ import annotations

import sys
from typing import Mapping, Sequence


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    import os

    from .options import parse

    env = os.environ if env is None else env
    args = parse(argv, env)
    if args.command == "up":
        from .up import run_up

        return run_up(args.options, env)
    if args.command == "migrate":
        code = run_migrate(args.database_url)
        if code == 0 and not args.skip_nats:
            code = run_nats_init(args.nats_url, env)
        return code
    if args.command == "certs":
        return run_certs(args.dir, args.ven, args.host_name)
    if args.command == "simulate":
        from adrstack.simulator.__main__ import main as simulate

        return simulate(args.args, prog="adrstack simulate")
    if args.command == "token":
        from .tokens import run_token

        return run_token(args)
    if args.command == "tail":
        from .tail import resolve, run_tail

        return run_tail(resolve(args.nats_url, args.nats_url_source, args.subject, args.data_dir))
    raise AssertionError(f"unhandled command {args.command}")


def run_migrate(database_url: str) -> int:
    from . import migrate
    from .infra import display_url, ensure_database
    from .up import first_line

    try:
        if ensure_database(database_url):
            print(f"adrstack: created database {display_url(database_url)}")
    except Exception as e:  # maybe no CREATEDB right; upgrade() says whether the database is there
        print(f"adrstack: could not check for the database: {first_line(e)}", file=sys.stderr)
    try:
        migrate.upgrade(database_url)
    except Exception as e:
        print(f"adrstack: migrations failed: {first_line(e)}", file=sys.stderr)
        return 1
    print(f"adrstack: {display_url(database_url)} is at the latest schema")
    return 0


def run_nats_init(nats_url: str | None, env: Mapping[str, str]) -> int:
    """Create the stream and buckets the ADRSTACK_* settings name (the services only bind)."""
    import asyncio

    from .nats_init import init_nats
    from .up import first_line

    try:
        created, settings = asyncio.run(init_nats(nats_url, env))
    except Exception as e:
        print(f"adrstack: could not set up NATS: {first_line(e)}", file=sys.stderr)
        return 1
    what = ", ".join(created) if created else "nothing new"
    print(f"adrstack: NATS {settings.nats_url} has the stream {settings.stream_name} and its buckets "
          f"(created: {what})")
    return 0


def run_certs(directory, ven_names: Sequence[str], host_names: Sequence[str]) -> int:
    """stdout: one 'NAME FINGERPRINT' line per VEN; stderr: what was created or reused.
    Exit 0 when everything asked for is there, 1 when the VTN certificates lack a requested
    host name (or the files cannot be written), 2 for a bad name or files that do not fit."""
    from .certs import CertsError, ensure_certs

    try:
        certs = ensure_certs(directory, ven_names, host_names)  # checks every name before writing
    except CertsError as e:
        print(f"adrstack certs: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"adrstack certs: cannot write certificates in {directory}: {e}", file=sys.stderr)
        return 1
    pairs = certs.pairs
    created = [p.name for pair in pairs if pair.created for p in (pair.cert, pair.key)]
    kept = [p.name for pair in pairs if not pair.created for p in (pair.cert, pair.key)]
    print(f"adrstack certs: {certs.dir}: " + "; ".join(filter(None, [
        f"created {', '.join(created)}" if created else "",
        f"reused {', '.join(kept)}" if kept else ""])), file=sys.stderr)
    print(f"adrstack certs: VTN certificates name {', '.join(certs.host_names)}; "
          f"VTN fingerprints: ECC {certs.vtn_ecc.fingerprint}, RSA {certs.vtn_rsa.fingerprint}", file=sys.stderr)
    for name, pair in certs.vens.items():
        print(f"{name} {pair.fingerprint}")
    sys.stdout.flush()
    if certs.missing_host_names:
        print(f"adrstack certs: the existing VTN certificates do not name {', '.join(certs.missing_host_names)}; "
              f"they were kept (VENs may have pinned their fingerprints). Remove "
              f"{certs.dir / 'vtn-ecc.crt'}, vtn-ecc.key, vtn-rsa.crt and vtn-rsa.key and run this again to "
              "have them reissued by the same CA with these names.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
