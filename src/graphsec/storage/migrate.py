"""Schema migrations (Alembic): upgrade, and the current and head revisions of a database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlalchemy_url(database_url: str) -> str:
    """The SQLAlchemy URL for a graphsec database URL (PostgreSQL through asyncpg)."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+asyncpg://" + database_url[len(prefix):]
    return database_url


def _config(database_url: str, connect_args: dict[str, Any] | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = sqlalchemy_url(database_url)
    cfg.attributes["connect_args"] = connect_args or {}
    return cfg


def head() -> str:
    """The newest revision this version of graphsec knows."""
    revision = ScriptDirectory.from_config(_config("sqlite://")).get_current_head()
    assert revision is not None
    return revision


def upgrade(database_url: str, connect_args: dict[str, Any] | None = None,
            revision: str = "head") -> None:
    """Bring the database's schema to ``revision``, the newest by default (creating it when
    empty)."""
    command.upgrade(_config(database_url, connect_args), revision)


def current(database_url: str, connect_args: dict[str, Any] | None = None) -> str | None:
    """The database's revision, or None when graphsec's schema is not there at all."""
    url = sqlalchemy_url(database_url)
    if url.startswith("postgresql+asyncpg"):
        import asyncio

        from sqlalchemy.ext.asyncio import create_async_engine

        async def read() -> str | None:
            engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=connect_args or {})
            try:
                async with engine.connect() as conn:
                    return await conn.run_sync(
                        lambda c: MigrationContext.configure(c).get_current_revision())
            finally:
                await engine.dispose()

        return asyncio.run(read())
    path = url[len("sqlite:///"):].split("?", 1)[0] if url.startswith("sqlite:///") else ""
    if path and not Path(path).exists():
        return None  # never create the file just to read its revision
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
