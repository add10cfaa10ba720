"""The ``adrstack`` command: ``up`` runs the stack, ``migrate`` upgrades a database, ``token``
manages operators' API tokens."""

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
        return run_migrate(args.database_url)
    if args.command == "token":
        from .tokens import run_token

        return run_token(args)
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


if __name__ == "__main__":
    sys.exit(main())
