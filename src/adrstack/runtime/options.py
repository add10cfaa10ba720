"""Command-line options of ``adrstack``; every ``up`` option also reads an environment variable.

Precedence: command line, then environment, then default. Parsing takes the environment as an
argument so that it is a pure function of its inputs.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence, TypeVar

T = TypeVar("T")

PROG = "adrstack"
# adrstack.shared.settings.DEFAULT_NATS_URL, without importing it to parse
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
ROLES = ("viewer", "operator", "admin")  # adrstack.shared.api_tokens.Role, without importing it to parse


def default_data_dir(env: Mapping[str, str] = os.environ, platform: str = sys.platform,
                     home: Path | None = None) -> Path:
    """Where ``up`` keeps NATS and Postgres data: the platform's per-user data folder, never cwd."""
    home = home or Path(env.get("HOME") or Path.home())
    if platform == "darwin":
        return home / "Library" / "Application Support" / "adrstack"
    if platform.startswith("win"):
        base = env.get("LOCALAPPDATA")
        return (Path(base) if base else home / "AppData" / "Local") / "adrstack"
    xdg = env.get("XDG_DATA_HOME")
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "adrstack"
    return home / ".local" / "share" / "adrstack"


@dataclass(frozen=True)
class UpOptions:
    vtn_port: int
    api_port: int
    data_dir: Path
    demo: int
    poll_interval: float
    host: str
    # Mutual TLS with provisioned VENs and API tokens; off is the plain-HTTP development default.
    secure: bool = False
    # Whether the bind address was chosen (--host / ADRSTACK_HOST) rather than defaulted.
    host_given: bool = True
    # With --demo: seconds from the demo VENs' registration to the start of the demo event; 0: none.
    demo_event_in: float = 90.0

    @property
    def poll_interval_text(self) -> str:
        # Whole seconds are passed as "10", not "10.0", so an integer setting accepts them too.
        v = self.poll_interval
        return str(int(v)) if float(v).is_integer() else repr(v)


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError("not a TCP port")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return value


def _named(fn: Callable[[str], T], name: str) -> Callable[[str], T]:
    # argparse names the type in its error message ("invalid port value: 'x'").
    fn.__name__ = name
    return fn


PORT = _named(_port, "port")
COUNT = _named(_non_negative_int, "count")
SECONDS = _named(_positive_seconds, "seconds")


def _non_negative_seconds(text: str) -> float:
    return 0.0 if float(text) == 0 else _positive_seconds(text)


DELAY = _named(_non_negative_seconds, "seconds")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other usage error of ours
        self.exit(2, f"{self.prog}: {message}\n")


def _from_env(parser: argparse.ArgumentParser, env: Mapping[str, str], name: str,
              convert: Callable[[str], T], fallback: T) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return fallback
    try:
        return convert(raw)
    except ValueError:
        parser.error(f"environment variable {name}={raw!r} is not a valid {convert.__name__}")
        raise  # unreachable: error() exits


# dest -> (environment variable, converter); the fallback default lives in _fallbacks().
UP_ENV = {
    "vtn_port": ("ADRSTACK_VTN_PORT", PORT),
    "api_port": ("ADRSTACK_API_PORT", PORT),
    "data_dir": ("ADRSTACK_DATA_DIR", _named(lambda text: Path(text), "path")),
    "demo": ("ADRSTACK_DEMO", COUNT),
    "poll_interval": ("ADRSTACK_POLL_INTERVAL", SECONDS),
    "host": ("ADRSTACK_HOST", _named(lambda text: text, "address")),
    "secure": ("ADRSTACK_SECURE", _named(lambda text: _flag(text), "boolean")),
    "demo_event_in": ("ADRSTACK_DEMO_EVENT_IN", DELAY),
}


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("not a boolean")


def _fallbacks(env: Mapping[str, str]) -> dict[str, object]:
    return {"vtn_port": 8080, "api_port": 8000, "data_dir": default_data_dir(env), "demo": 0,
            "poll_interval": 10.0, "host": None, "secure": False, "demo_event_in": 90.0}


def build_parser(env: Mapping[str, str] = os.environ) -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="adrstack: an OpenADR 2.0b VTN over NATS JetStream and Postgres")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    up = sub.add_parser("up", help="run the whole stack on this machine",
                        description="Start NATS and Postgres (embedded unless NATS_URL / DATABASE_URL are set), "
                                    "migrate, and run the four services as supervised processes.")
    # Defaults stay None so that the environment is consulted only for `up`, after parsing.
    up.add_argument("--vtn-port", type=PORT, metavar="PORT",
                    help="OpenADR VTN port (env ADRSTACK_VTN_PORT, default 8080)")
    up.add_argument("--api-port", type=PORT, metavar="PORT",
                    help="GraphQL API and dashboard port (env ADRSTACK_API_PORT, default 8000)")
    up.add_argument("--data-dir", type=Path, metavar="DIR",
                    help=f"where embedded NATS/Postgres keep data and logs "
                         f"(env ADRSTACK_DATA_DIR, default {default_data_dir(env)})")
    up.add_argument("--demo", type=COUNT, metavar="N",
                    help="also run N simulated VENs (env ADRSTACK_DEMO, default 0) and, once they have "
                         "registered, schedule a one-hour demand-response event for them")
    up.add_argument("--demo-event-in", type=DELAY, metavar="SECONDS",
                    help="with --demo: the demo event starts this long after the VENs registered; 0 for no "
                         "event (env ADRSTACK_DEMO_EVENT_IN, default 90)")
    up.add_argument("--poll-interval", type=SECONDS, metavar="SECONDS",
                    help="poll frequency the VTN asks VENs for (env ADRSTACK_POLL_INTERVAL, default 10)")
    up.add_argument("--host", metavar="ADDRESS",
                    help="bind address of the VTN and the API (env ADRSTACK_HOST; default 127.0.0.1, "
                         "or 0.0.0.0 with --secure)")
    up.add_argument("--secure", action="store_const", const=True,
                    help="serve the VTN over mutual TLS with certificates in <data-dir>/certs (created when "
                         "absent), admit only provisioned VENs, and require API tokens; prints an admin token "
                         "(env ADRSTACK_SECURE)")

    parser.up_parser = up
    # Listed here for `adrstack --help`; its own parser (adrstack.simulator) reads its arguments.
    sub.add_parser("simulate", add_help=False,
                   help="run a fleet of simulated VENs against a VTN (adrstack simulate --help)")
    certs = sub.add_parser(
        "certs", help="create (or reuse) a development CA and VTN/VEN certificates",
        description="Create, or reuse when present, a development CA and the VTN's certificates in DIR: "
                    "ca.crt/ca.key (ECC P-256 CA), vtn-ecc.crt/.key (ECC P-256) and vtn-rsa.crt/.key (RSA 2048) "
                    "for the two OpenADR 2.0b TLS suites, naming localhost, 127.0.0.1 and every --host-name; "
                    "and for each --ven NAME, NAME.crt/NAME.key (ECC P-256, clientAuth) issued by that CA. "
                    "Prints one line 'NAME FINGERPRINT' per VEN certificate (also for reused ones); what was "
                    "created or reused goes to stderr. Existing files are never overwritten: when the VTN "
                    "certificates exist but lack a requested --host-name, they are kept (their fingerprint "
                    "may be pinned by VENs), the missing names are reported and the exit status is 1; remove "
                    "vtn-ecc.* and vtn-rsa.* to have them reissued by the same CA with the new names.")
    certs.add_argument("--dir", type=Path, metavar="DIR",
                       help=f"where the files are (default <data-dir>/certs, data-dir from env ADRSTACK_DATA_DIR, "
                            f"default {default_data_dir(env)})")
    certs.add_argument("--ven", action="append", default=[], metavar="NAME",
                       help="also a certificate for this VEN (repeatable); letters, digits, '.', '_', '-'")
    certs.add_argument("--host-name", action="append", default=[], metavar="NAME",
                       help="a DNS name or IP address the VTN is reached by, added to the VTN certificates' "
                            "subject alternative names (repeatable)")
    parser.certs_parser = certs
    migrate = sub.add_parser("migrate", help="run the database migrations and create the NATS stream and buckets",
                             description="Upgrade the database at DATABASE_URL to the latest schema "
                                         "(creating the database when it does not exist), and create the "
                                         "JetStream stream and KV buckets at NATS_URL (or bring the stream to "
                                         "its configured retention). The services only bind to them.")
    migrate.add_argument("--database-url", metavar="URL",
                         help="postgresql://user@host:port/db (env DATABASE_URL)")
    migrate.add_argument("--nats-url", metavar="URL",
                         help="nats://host:port (env NATS_URL, default nats://127.0.0.1:4222)")
    migrate.add_argument("--skip-nats", action="store_true",
                         help="only the database (the stream and buckets are set up elsewhere)")

    token = sub.add_parser("token", help="create, list and revoke API tokens",
                           description="Operators' API tokens in the database at DATABASE_URL (run "
                                       "`adrstack migrate` first). The API asks for one when "
                                       "ADRSTACK_API_AUTH is on.")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", parser_class=_Parser)
    token_sub.required = True
    create = token_sub.add_parser("create", help="create a token and print it (shown only this once)")
    create.add_argument("--role", required=True, choices=ROLES,
                        help="viewer (queries, subscriptions), operator (also event and VEN mutations), "
                             "admin (also provisioning and tokens)")
    create.add_argument("--name", help="what the token is for (shown by `list`, recorded as who provisioned)")
    token_sub.add_parser("list", help="list tokens: id, name, role, created, last used, revoked")
    revoke = token_sub.add_parser("revoke", help="revoke a token: it is refused from then on")
    revoke.add_argument("id", metavar="ID", help="the token's id (the part after adrs_, as `list` shows it)")
    tail = sub.add_parser("tail", help="print the messages published on NATS (what `nats sub` shows)",
                          description="Subscribe to SUBJECT on NATS and print one line per message: the subject, "
                                      "the time it was received (ISO 8601, UTC) and the payload as compact JSON "
                                      "(a payload that is not JSON is shown as text:\"...\" or base64:...). "
                                      "Ctrl-C or SIGTERM stops it.")
    tail.add_argument("subject", nargs="?", metavar="SUBJECT",
                      help="a NATS subject, wildcards allowed (default '<prefix>.>', the prefix from env "
                           "ADRSTACK_SUBJECT_PREFIX, default openadr)")
    tail.add_argument("--nats-url", metavar="URL",
                      help="nats://host:port: the NATS URL `adrstack up` prints (env NATS_URL; else the NATS of "
                           "the `adrstack up` running on the data dir; else nats://127.0.0.1:4222)")
    tail.add_argument("--data-dir", type=Path, metavar="DIR",
                      help=f"the data dir of the `adrstack up` whose NATS to tail when no URL is given "
                           f"(env ADRSTACK_DATA_DIR, default {default_data_dir(env)})")
    parser.tail_parser = tail
    for action in (create, token_sub.choices["list"], revoke):
        action.add_argument("--database-url", metavar="URL",
                            help="postgresql://user@host:port/db (env DATABASE_URL)")
    return parser


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        return argparse.Namespace(command="simulate", args=argv[1:])
    parser = build_parser(env)
    args = parser.parse_args(argv)
    if args.command == "up":
        up_parser = parser.up_parser  # its errors start with "adrstack up:"
        fallbacks = _fallbacks(env)
        for dest, (name, convert) in UP_ENV.items():
            if getattr(args, dest) is None:
                setattr(args, dest, _from_env(up_parser, env, name, convert, fallbacks[dest]))
        if args.vtn_port == args.api_port:
            up_parser.error(f"--vtn-port and --api-port are both {args.vtn_port}; they must differ")
        host_given = args.host is not None
        # Plain HTTP with open enrollment and no API tokens must not be reachable from the network
        # unless asked for; --secure is meant to be.
        host = args.host if host_given else ("0.0.0.0" if args.secure else "127.0.0.1")
        # Relative paths are resolved once, here, so children never depend on the cwd.
        args.options = UpOptions(
            vtn_port=args.vtn_port, api_port=args.api_port,
            data_dir=Path(os.path.abspath(args.data_dir.expanduser())),
            demo=args.demo, poll_interval=args.poll_interval, host=host, secure=args.secure,
            host_given=host_given, demo_event_in=args.demo_event_in,
        )
    elif args.command == "certs":
        if args.dir is None:
            data_dir = _from_env(parser.certs_parser, env, *UP_ENV["data_dir"], default_data_dir(env))
            args.dir = data_dir / "certs"
        args.dir = Path(os.path.abspath(args.dir.expanduser()))
    elif args.command == "tail":
        # Given or from the environment; else (None) adrstack.runtime.tail.resolve looks for a running
        # `up` on the data dir, then falls back to the default.
        args.nats_url_source = "--nats-url" if args.nats_url else None
        for name in ("NATS_URL", "ADRSTACK_NATS_URL"):
            if not args.nats_url and env.get(name):
                args.nats_url, args.nats_url_source = env[name], name
        prefix = env.get("ADRSTACK_SUBJECT_PREFIX")
        args.subject = args.subject or (f"{prefix}.>" if prefix else None)
        if args.data_dir is None:
            args.data_dir = _from_env(parser.tail_parser, env, *UP_ENV["data_dir"], default_data_dir(env))
        args.data_dir = Path(os.path.abspath(args.data_dir.expanduser()))
    elif args.command in ("migrate", "token"):
        if args.command == "migrate":
            args.nats_url = args.nats_url or env.get("NATS_URL") or env.get("ADRSTACK_NATS_URL")
        args.database_url = args.database_url or env.get("DATABASE_URL")
        if not args.database_url:
            parser.error(f"{args.command} needs a database: set DATABASE_URL or pass --database-url")
    return args
