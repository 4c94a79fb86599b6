"""SQLite primary-key reads through libsqlite3 directly (``storage/sqlite/reader.py``): the same
bytes as the stdlib path, every committed write visible, and the stdlib fallback intact."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graphsec.app import create_store
from graphsec.config import Settings, SettingsError
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
from graphsec.schema.values import check_body, complete
from graphsec.storage.sqlite import SQLiteStore
from graphsec.storage.sqlite.reader import open_reader
from tests.conftest import score

TENANT = "11111111-1111-1111-1111-111111111111"


def doc(**values: object) -> dict[str, object]:
    return complete(SECURE_SCORE, check_body(SECURE_SCORE, score(**values), "create"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "store.db", ENTITY_SETS)
    await s.open()
    yield s
    await s.close()


def stdlib_get(store: SQLiteStore, entity_id: str, tenant: str = TENANT) -> bytes | None:
    c = store._plain[("secureScores", "get")]
    row = store.conn.execute(c.sql, c.params({"tenant": tenant, "id": entity_id})).fetchone()
    return None if row is None else bytes(row[0])


async def test_the_reader_is_in_use_here(store: SQLiteStore) -> None:
    # this machine's Python links libsqlite3 dynamically: the fast path must be the one tested
    assert store._reader is not None


async def test_reads_the_same_bytes_as_sqlite3(store: SQLiteStore) -> None:
    ids = ["plain", "ünïcödé-ид", "with'quote", "a/b%2Fc", "x" * 300]
    for i, entity_id in enumerate(ids):
        await store.create(TENANT, SECURE_SCORES, doc(id=entity_id, currentScore=float(i)))
    for entity_id in ids:
        got = await store.get(TENANT, SECURE_SCORES, entity_id)
        assert got is not None
        assert got == stdlib_get(store, entity_id)
    assert await store.get(TENANT, SECURE_SCORES, "missing") is None
    assert await store.get("22222222-2222-2222-2222-222222222222", SECURE_SCORES, "plain") is None


async def test_sees_every_committed_write_at_once(store: SQLiteStore, tmp_path: Path) -> None:
    await store.create(TENANT, SECURE_SCORES, doc(id="s1", currentScore=1.0))
    assert b'"currentScore":1.0' in (await store.get(TENANT, SECURE_SCORES, "s1") or b"")
    await store.update(TENANT, SECURE_SCORES, "s1", lambda d: {**d, "currentScore": 2.0})
    assert b'"currentScore":2.0' in (await store.get(TENANT, SECURE_SCORES, "s1") or b"")
    # a write by another connection (another worker) is seen by the next read
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    other.execute("UPDATE secure_scores SET doc = json_set(doc, '$.currentScore', 3.0) "
                  "WHERE id = 's1'")
    other.close()
    assert b'"currentScore":3.0' in (await store.get(TENANT, SECURE_SCORES, "s1") or b"")
    assert await store.delete(TENANT, SECURE_SCORES, "s1")
    assert await store.get(TENANT, SECURE_SCORES, "s1") is None


async def test_falls_back_to_sqlite3_when_switched_off(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHSEC_SQLITE_POINT_READER", "0")
    s = SQLiteStore(tmp_path / "store.db", ENTITY_SETS)
    await s.open()
    try:
        assert s._reader is None
        await s.create(TENANT, SECURE_SCORES, doc(id="s1"))
        got = await s.get(TENANT, SECURE_SCORES, "s1")
        assert got is not None
        assert got == stdlib_get(s, "s1")
    finally:
        await s.close()


def test_a_missing_file_gives_no_reader(tmp_path: Path) -> None:
    assert open_reader(tmp_path / "absent" / "store.db") is None


async def test_both_connections_keep_the_configured_page_cache(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "store.db", ENTITY_SETS, cache_kib=3 * 1024)
    await s.open()
    try:
        assert s.conn.execute("PRAGMA cache_size").fetchone()[0] == -3 * 1024
        assert s._reader is not None
        got = s._reader.one("test-cache-size", "SELECT cache_size FROM pragma_cache_size() "
                            "WHERE ?1 IS NOT NULL AND ?2 IS NOT NULL", "a", "b")
        assert got == b"-3072"
    finally:
        await s.close()


def test_the_page_cache_is_a_setting(tmp_path: Path) -> None:
    env = {"GRAPHSEC_HOME": str(tmp_path)}
    assert Settings.from_env(env).sqlite_cache_mb == 64
    settings = Settings.from_env({**env, "GRAPHSEC_SQLITE_CACHE_MB": "5"})
    assert Settings.from_env(settings.environ()).sqlite_cache_mb == 5  # reaches the workers
    store = create_store(settings)
    assert isinstance(store, SQLiteStore)
    assert store.cache_kib == 5 * 1024
    for bad in ("-1", "65537", "lots"):
        with pytest.raises(SettingsError, match="GRAPHSEC_SQLITE_CACHE_MB"):
            Settings.from_env({**env, "GRAPHSEC_SQLITE_CACHE_MB": bad})
