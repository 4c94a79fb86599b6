"""Migration 0004 moves the entries beyond the newest 100 of every stored control profile to the
history table, and its downgrade puts them back: no response carries a longer history after
the upgrade, and nothing is lost either way."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic import command
from alembic.config import Config

from graphsec.storage import migrate
from tests.conftest import fresh_postgres_database

PROFILES = "secure_score_control_profiles"


def entries(n: int) -> list[dict[str, Any]]:
    return [{"assignedTo": None, "comment": f"e{i}", "state": "Reviewed", "updatedBy": "ann",
             "updatedDateTime": f"2024-01-01T00:00:{i % 60:02d}Z"} for i in range(n)]


def document(entity_id: str, n: int) -> bytes:
    return orjson.dumps({"controlStateUpdates": entries(n), "id": entity_id, "rank": 1},
                        option=orjson.OPT_SORT_KEYS)


def downgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    config.attributes["url"] = migrate.sqlalchemy_url(url)
    command.downgrade(config, revision)


@pytest.fixture
def at_0003(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database URL whose schema is at revision 0003."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
        migrate.upgrade(url, revision="0003")
        yield url
        return
    databases = fresh_postgres_database(revision=None)
    url = next(databases)
    try:
        migrate.upgrade(url, revision="0003")
        yield url
    finally:
        next(databases, None)  # the generator goes on to drop the database


def run(url: str, sql: str, *params: Any) -> list[Any]:
    """One statement (``?`` parameters) on a connection of its own; its rows."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///"):])) as conn:
            rows = conn.execute(sql, params).fetchall()
            conn.commit()
            return rows

    async def on_postgres() -> list[Any]:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            numbered = sql
            for n in range(1, len(params) + 1):
                numbered = numbered.replace("?", f"${n}", 1)
            return list(await conn.fetch(numbered, *params))
        finally:
            await conn.close()

    return asyncio.run(on_postgres())


def insert(url: str, entity_id: str, n: int) -> None:
    data = document(entity_id, n)
    if url.startswith("sqlite:///"):
        run(url, f"INSERT INTO {PROFILES} (tenant_id, id, doc) VALUES ('t', ?, ?)",
            entity_id, data.decode())
    else:
        run(url, f"INSERT INTO {PROFILES} (tenant_id, id, doc, body) "
                 "VALUES ('t', ?, ?::jsonb, ?)", entity_id, data.decode(), data)


def stored(url: str, entity_id: str) -> dict[str, Any]:
    column = "doc" if url.startswith("sqlite:///") else "convert_from(body, 'UTF8')"
    rows = run(url, f"SELECT {column} FROM {PROFILES} WHERE tenant_id = 't' AND id = ?",
               entity_id)
    return orjson.loads(rows[0][0])  # type: ignore[no-any-return]


def test_0004_moves_entries_beyond_100_to_the_history_and_back(at_0003: str) -> None:
    url = at_0003
    insert(url, "long", 150)
    insert(url, "short", 3)
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()

    assert stored(url, "long")["controlStateUpdates"] == entries(150)[50:]
    assert stored(url, "short")["controlStateUpdates"] == entries(3)
    rows = run(url, "SELECT tenant_id, entity_set, entity_id, seq, entry FROM history "
                    "ORDER BY seq")
    assert [tuple(r[:4]) for r in rows] == [
        ("t", "secureScoreControlProfiles", "long", n) for n in range(1, 51)]
    assert [orjson.loads(r[4]) for r in rows] == entries(150)[:50]

    downgrade(url, "0003")
    assert stored(url, "long")["controlStateUpdates"] == entries(150)
    assert stored(url, "short")["controlStateUpdates"] == entries(3)
    migrate.upgrade(url)
    assert stored(url, "long")["controlStateUpdates"] == entries(150)[50:]
