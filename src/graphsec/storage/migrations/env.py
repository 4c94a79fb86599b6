"""Alembic environment: graphsec's migrations, on SQLite or PostgreSQL.

The database URL comes from ``config.attributes["url"]`` (set by :mod:`graphsec.storage.migrate`);
PostgreSQL runs through asyncpg, the same driver the server uses. The revisions say what they
change; only autogenerating a new one compares against the tables a catalogue declares, passed
as ``config.attributes["metadata"]`` (``graphsec.storage.sql.tables.build_tables(ENTITY_SETS)``'s
metadata), so storage does not import the catalogue.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection, create_engine
from sqlalchemy.ext.asyncio import create_async_engine

metadata: MetaData | None = context.config.attributes.get("metadata")
url: str = context.config.attributes["url"]
connect_args: dict[str, object] = context.config.attributes.get("connect_args", {})


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=connect_args)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run)
            await connection.commit()
    finally:
        await engine.dispose()


if url.startswith("postgresql+asyncpg"):
    asyncio.run(run_async())
else:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        run(connection)
        connection.commit()
    engine.dispose()
