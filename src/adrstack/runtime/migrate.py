"""Run the alembic migrations in ``migrations/`` against a database URL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config


def migrations_dir() -> Path:
    # A built wheel carries them beside this module; a checkout holds them at the workspace root.
    here = Path(__file__).resolve()
    packaged = here.parent / "migrations"
    if (packaged / "env.py").exists():
        return packaged
    for parent in here.parents:
        candidate = parent / "migrations"
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("cannot find the migrations/ folder of the adrstack checkout")


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    # '%' is alembic's interpolation character; a password may contain it.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the tables in shared/ differ from what the migrations build."""
    command.check(alembic_config(database_url))
