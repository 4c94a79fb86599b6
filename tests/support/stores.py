"""Open a store directly (no HTTP) on either backend, for storage-level tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphsec.storage.base import Store


def store_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """A new, unopened store: a fresh SQLite file, or the session's PostgreSQL database
    emptied (tests/conftest.py ``postgres_url``)."""
    if backend == "sqlite":
        from graphsec.storage.sqlite import SQLiteStore

        return SQLiteStore(tmp_path / "store.db")
    import asyncio

    from graphsec.storage.postgres import PostgresStore
    from tests.conftest import TABLES, _pg

    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_pg([f"TRUNCATE {', '.join(TABLES)}"], url))
    return PostgresStore(url, pool_size=4)
