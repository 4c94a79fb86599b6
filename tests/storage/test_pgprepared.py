"""Reads by id through asyncpg's public API (``storage/postgres/reads/prepared.py``, the default
``GRAPHSEC_PG_READS=prepared``): a connection of its own, statements prepared at
their first use, reads of one turn in one statement, a refused statement failing its own batch only.

The promises every reader keeps (batching, cache, lost connections, the plan) are tested on each
in ``test_pgbatch.py``, ``test_pgcache.py``, ``test_pg_reconnect.py`` and ``test_plans.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from graphsec.app import create_store
from graphsec.config import PG_READS, Settings, SettingsError
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES, USER_SECURITY_PROFILES
from graphsec.schema.values import check_body, complete
from graphsec.storage.postgres import PostgresStore
from graphsec.storage.postgres.reads.prepared import PreparedReads
from graphsec.storage.postgres.store import READERS
from tests.conftest import TABLES, _pg, score

A = "11111111-1111-1111-1111-111111111111"
B = "22222222-2222-2222-2222-222222222222"


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    s = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2)
    await s.open()
    for tenant, offset in ((A, 0.0), (B, 1000.0)):
        for i in range(10):
            doc = complete(SECURE_SCORE, check_body(
                SECURE_SCORE, score(id=f"s{i}", currentScore=offset + i), "create"))
            await s.create(tenant, SECURE_SCORES, doc)
    yield s
    await s.close()


def reader(store: PostgresStore) -> PreparedReads:
    reads = store._reads
    assert isinstance(reads, PreparedReads)
    return reads


def current(body: bytes | None) -> float | None:
    return None if body is None else float(orjson.loads(body)["currentScore"])


def test_the_reader_is_a_setting(tmp_path: Path) -> None:
    env = {"GRAPHSEC_HOME": str(tmp_path), "GRAPHSEC_DATABASE_URL": "postgresql://h/db"}
    assert Settings.from_env(env).pg_reads == "prepared"
    assert set(PG_READS) == set(READERS)  # each setting names a reader, each reader a setting
    for name in PG_READS:
        settings = Settings.from_env({**env, "GRAPHSEC_PG_READS": name})
        assert Settings.from_env(settings.environ()).pg_reads == name  # reaches the workers
        store = create_store(settings)
        assert isinstance(store, PostgresStore)
        assert store.reads == name
    with pytest.raises(SettingsError, match="GRAPHSEC_PG_READS"):
        Settings.from_env({**env, "GRAPHSEC_PG_READS": "fast"})


async def test_the_store_reads_by_id_over_its_own_connection(store: PostgresStore) -> None:
    reads = reader(store)
    assert reads._conn is not None
    assert reads._conn not in store.pool._idle  # not one of the pool's
    before = reads.statements
    assert current(await store.get(A, SECURE_SCORES, "s3")) == 3.0
    assert reads.statements == before + 1
    assert list(reads._prepared) == [reads._sql[SECURE_SCORES.name]]  # at its first use
    assert current(await store.get(A, SECURE_SCORES, "s4")) == 4.0
    assert reads.statements == before + 2
    assert len(reads._prepared) == 1


async def test_an_idle_reader_holds_no_transaction_open(store: PostgresStore,
                                                        postgres_url: str) -> None:
    """A statement prepared and not run yet would keep its implicit transaction, and the
    locks on its table, until the next statement: nothing may wait on an idle worker."""
    assert await store.get(A, SECURE_SCORES, "s1") is not None
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("SET lock_timeout = '2s'")
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN ACCESS EXCLUSIVE MODE")
    finally:
        await conn.close()


async def test_the_reads_of_one_turn_share_one_statement(store: PostgresStore) -> None:
    reads = reader(store)
    before = reads.statements
    got = await asyncio.gather(*(store.get(t, SECURE_SCORES, f"s{i}")
                                 for i in range(12) for t in (A, B)))
    assert reads.statements == before + 1
    assert [current(b) for b in got] == [
        None if i >= 10 else i + offset for i in range(12) for offset in (0.0, 1000.0)]


async def test_a_refused_statement_fails_its_own_batch_only(store: PostgresStore) -> None:
    """Reads of another entity set, sent in the same turn as their own batch, are unaffected;
    once the statement is right again, its reads work (it is prepared again)."""
    reads = reader(store)
    name = USER_SECURITY_PROFILES.name
    good = reads._sql[name]
    reads._sql[name] = good.replace("user_security_profiles", "no_such_table")
    try:
        results = await asyncio.gather(
            store.get(A, SECURE_SCORES, "s1"), store.get(A, USER_SECURITY_PROFILES, "u1"),
            store.get(A, SECURE_SCORES, "s2"), return_exceptions=True)
        assert current(results[0]) == 1.0  # type: ignore[arg-type]
        assert isinstance(results[1], asyncpg.UndefinedTableError), results[1]
        assert current(results[2]) == 2.0  # type: ignore[arg-type]
    finally:
        reads._sql[name] = good
    assert await store.get(A, USER_SECURITY_PROFILES, "u1") is None  # prepared anew, answers
    assert current(await store.get(A, SECURE_SCORES, "s3")) == 3.0


async def test_an_id_json_cannot_carry_fails_no_read(store: PostgresStore) -> None:
    """A lone surrogate cannot be encoded, so no stored entity has it: not found, and the
    reads batched with it are answered."""
    got = await asyncio.gather(store.get(A, SECURE_SCORES, "s1"),
                               store.get(A, SECURE_SCORES, "x\ud800"),
                               store.get(A, SECURE_SCORES, "s2"))
    assert [current(b) for b in got] == [1.0, None, 2.0]


async def test_closing_fails_the_reads_still_waiting(store: PostgresStore) -> None:
    task = asyncio.ensure_future(store.get(A, SECURE_SCORES, "s1"))
    await asyncio.sleep(0)
    await reader(store).close()
    with pytest.raises(RuntimeError, match="closed"):
        await task


async def test_closing_while_reconnecting_fails_the_waiting_reads_cleanly(
        store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = reader(store)
    opening = asyncio.Event()

    async def slow_open() -> Any:
        opening.set()
        await asyncio.sleep(30)

    monkeypatch.setattr(store.pool, "open_dedicated", slow_open)
    assert reads._conn is not None
    reads._conn.terminate()  # the connection goes; the next read must open another
    task = asyncio.ensure_future(store.get(A, SECURE_SCORES, "s1"))
    await asyncio.wait_for(opening.wait(), 5)
    await reads.close()
    with pytest.raises(RuntimeError, match="closed"):
        await task
