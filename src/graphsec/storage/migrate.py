"""Schema migrations (Alembic): upgrade, and the current and head revisions of a database.

A database that cannot be reached or written fails :func:`upgrade` and :func:`current` with a
one-line :class:`~graphsec.storage.diagnose.DatabaseError` that says how to fix it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from graphsec.storage.diagnose import DatabaseError, explain

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


@contextlib.contextmanager
def _explained(database_url: str) -> Iterator[None]:
    """Failures to reach or write the database become a one-line :class:`DatabaseError`."""
    try:
        yield
    except Exception as exc:
        problem = explain(exc, database_url)
        if problem is None:
            raise
        raise problem from exc


def sqlite_file(database_url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names; None for other URLs and in-memory databases."""
    url = sqlalchemy_url(database_url)
    path = url[len("sqlite:///"):].split("?", 1)[0] if url.startswith("sqlite:///") else ""
    return Path(path) if path and path != ":memory:" else None


def prepare_sqlite_file(path: Path) -> None:
    """Make sure the SQLite file ``path`` exists and only its owner may read it, before SQLite
    opens it: its folder is created with mode 0700, the file with 0600, and an existing file
    of ours that group or others may read (made by an older graphsec) is changed to 0600, with
    its ``-wal`` and ``-shm``. SQLite gives the ``-wal`` and ``-shm`` files it creates the main
    file's mode, so they follow. Raises :class:`DatabaseError` when the file cannot be written."""
    with _explained(f"sqlite:///{path}"):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to change
            info = file.stat()
            if info.st_mode & 0o077 and info.st_uid == os.geteuid():
                file.chmod(0o600)


def upgrade(database_url: str, connect_args: dict[str, Any] | None = None,
            revision: str = "head") -> None:
    """Bring the database's schema to ``revision``, the newest by default (creating it when
    empty; a SQLite file is created owner-only: :func:`prepare_sqlite_file`)."""
    path = sqlite_file(database_url)
    if path is not None:
        prepare_sqlite_file(path)
    with _explained(database_url):
        command.upgrade(_config(database_url, connect_args), revision)


def current(database_url: str, connect_args: dict[str, Any] | None = None) -> str | None:
    """The database's revision, or None when graphsec's schema is not there at all."""
    with _explained(database_url):
        return _current(database_url, connect_args)
    raise AssertionError("unreachable")  # for mypy: the context manager swallows nothing


def _current(database_url: str, connect_args: dict[str, Any] | None) -> str | None:
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
    path = sqlite_file(database_url)
    if path is not None and not path.exists():
        return None  # never create the file just to read its revision
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


__all__ = ["DatabaseError", "current", "head", "prepare_sqlite_file", "sqlite_file", "upgrade"]
