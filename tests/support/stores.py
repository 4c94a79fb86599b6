"""Open a store directly (no HTTP) on either backend, for storage-level tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphsec.schema.security import ENTITY_SETS
from graphsec.storage.base import Store


def store_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """A new, unopened store: a fresh SQLite file, or the session's PostgreSQL database
    emptied (tests/conftest.py ``postgres_url``)."""
    if backend == "sqlite":
        from graphsec.storage.sqlite import SQLiteStore

        return SQLiteStore(tmp_path / "store.db", ENTITY_SETS)
    import asyncio

    from graphsec.storage.postgres import PostgresStore
    from tests.support.postgres import empty

    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(empty(url))
    return PostgresStore(url, ENTITY_SETS, pool_size=4)
