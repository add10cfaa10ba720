"""Alembic environment: the target metadata is the SQLModel tables in adrstack.shared.tables."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool, text

from adrstack.shared.db import sqlalchemy_url
from adrstack.shared.tables import metadata

config = context.config
target_metadata = metadata


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL (postgresql://user@host:port/db)")
    return sqlalchemy_url(url)


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def partitions(connection) -> set[str]:
    """Tables that are partitions of a partitioned table (the readings' days and default).

    The models describe the partitioned parent; its partitions are made by migrations and by
    telemetry's partition upkeep, so autogenerate (``alembic check``) must not see them as tables
    to drop."""
    rows = connection.execute(text(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where c.relispartition and n.nspname = current_schema()"))
    return {r[0] for r in rows}


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:  # its own: a transaction left open here would keep the
        skip = partitions(connection)      # migrations below from committing
    with engine.connect() as connection:

        def include_name(name, type_, parent_names) -> bool:
            return not (type_ == "table" and name in skip)

        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True,
                          include_name=include_name)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
