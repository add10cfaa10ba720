"""``adrstack token create|list|revoke``: operators' API tokens in the database.

``create`` prints the token alone on stdout (so ``TOKEN=$(adrstack token create ...)`` works) and
says the rest on stderr; it is never shown again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import TextIO

from sqlalchemy.exc import DBAPIError

from adrstack.shared.api_tokens import InvalidTokenName, Role, create_token, list_tokens, revoke_token
from adrstack.shared.db import async_engine
from adrstack.shared.tables import ApiToken

from .infra import display_url
from .up import first_line

UNDEFINED_TABLE = "42P01"  # the Postgres SQLSTATE when the migrations have not run
COLUMNS = ("ID", "NAME", "ROLE", "CREATED", "LAST USED", "REVOKED")


class TokenCommandError(Exception):
    """Said to the user on stderr; the command exits 1."""


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


def table(rows: list[ApiToken]) -> str:
    cells = [COLUMNS] + [(r.id, r.name or "-", r.role, _when(r.created_at), _when(r.last_used_at),
                          _when(r.revoked_at)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    engine = async_engine(args.database_url)
    try:
        if args.token_command == "create":
            issued = await create_token(engine, Role(args.role), args.name)
            print(issued.token, file=out)
            named = f" ({issued.row.name})" if issued.row.name else ""
            print(f"adrstack: created {issued.row.role} token {issued.row.id}{named}; it is shown only "
                  "this once", file=err)
        elif args.token_command == "list":
            rows = await list_tokens(engine)
            print(table(rows) if rows else "no tokens yet (create one with `adrstack token create --role ...`)",
                  file=out)
        elif args.token_command == "revoke":
            row = await revoke_token(engine, args.id)
            if row is None:
                raise TokenCommandError(f"no token with id {args.id!r} (see `adrstack token list`)")
            print(f"adrstack: token {row.id} is revoked (since {_when(row.revoked_at)})", file=out)
    finally:
        await engine.dispose()


def run_token(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        asyncio.run(_run(args, out, err))
    except (TokenCommandError, InvalidTokenName) as e:
        print(f"adrstack: {e}", file=err)
        return 1
    except (DBAPIError, OSError) as e:
        if getattr(getattr(e, "orig", None), "sqlstate", None) == UNDEFINED_TABLE:
            print(f"adrstack: {display_url(args.database_url)} has no api_tokens table yet; "
                  "run `adrstack migrate` first", file=err)
        else:
            print(f"adrstack: cannot use the database at {display_url(args.database_url)}: {first_line(e)}",
                  file=err)
        return 1
    return 0
