"""Fixtures for tests against the real server process on a database of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_database


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database for one test: a new SQLite file, or a new migrated PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'system.db'}"
    else:
        yield from fresh_postgres_database()
