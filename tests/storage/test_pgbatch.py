"""Coalesced primary-key reads on PostgreSQL, with each reader (``storage/postgres/reads/``,
``GRAPHSEC_PG_READS``): each read gets exactly its own tenant's entity, however the reads are
batched, and failures reach every reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from graphsec.errors import GatewayTimeout
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
from graphsec.schema.values import check_body, complete
from graphsec.storage.postgres import PostgresStore
from graphsec.storage.postgres.reads import MAX_BATCH
from tests.conftest import TABLES, _pg, score

A = "11111111-1111-1111-1111-111111111111"
B = "22222222-2222-2222-2222-222222222222"


@pytest.fixture
async def store(postgres_url: str, pg_reads: str) -> AsyncIterator[PostgresStore]:
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    s = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2, reads=pg_reads)
    await s.open()
    yield s
    await s.close()


async def put(store: PostgresStore, tenant: str, entity_id: str, value: float) -> None:
    doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id=entity_id, currentScore=value),
                                            "create"))
    await store.create(tenant, SECURE_SCORES, doc)


async def test_concurrent_reads_are_batched_and_each_gets_its_own_answer(
        store: PostgresStore) -> None:
    for i in range(20):
        await put(store, A, f"s{i}", float(i))
        await put(store, B, f"s{i}", 1000.0 + i)  # same ids in another tenant
    wanted = [((A, B)[(k * 7) % 3 % 2], f"s{k % 25}") for k in range(600)]
    reads = store._reads
    assert reads is not None
    before = reads.statements
    got = await asyncio.gather(*(store.get(t, SECURE_SCORES, i) for t, i in wanted))
    assert reads.statements - before < len(wanted) // 4  # they did share statements
    for (tenant, entity_id), body in zip(wanted, got, strict=True):
        n = int(entity_id[1:])
        if n >= 20:
            assert body is None
        else:
            assert body is not None
            expected = float(n) + (1000.0 if tenant == B else 0.0)
            assert f'"currentScore":{expected}'.encode() in body
            assert f'"id":"{entity_id}"'.encode() in body


async def test_batches_never_exceed_the_maximum(store: PostgresStore) -> None:
    await put(store, A, "s0", 0.0)
    reads = store._reads
    assert reads is not None
    before = reads.statements
    n = MAX_BATCH * 2 + 10
    got = await asyncio.gather(*(store.get(A, SECURE_SCORES, "s0") for _ in range(n)))
    assert all(b is not None for b in got)
    assert reads.statements - before >= 3


async def test_a_read_sees_writes_committed_before_it(store: PostgresStore) -> None:
    assert await store.get(A, SECURE_SCORES, "s1") is None
    await put(store, A, "s1", 1.0)
    assert await store.get(A, SECURE_SCORES, "s1") is not None
    await store.update(A, SECURE_SCORES, "s1", lambda d: {**d, "currentScore": 2.0})
    body = await store.get(A, SECURE_SCORES, "s1")
    assert body is not None
    assert b'"currentScore":2.0' in body


async def test_a_failed_batch_fails_each_of_its_reads_and_the_next_one_works(
        store: PostgresStore) -> None:
    await put(store, A, "s0", 0.0)
    reads: Any = store._reads  # each reader keeps its statements by entity set in ``_sql``
    assert reads is not None
    good = reads._sql["secureScores"]
    reads._sql["secureScores"] = good.replace("secure_scores", "no_such_table")
    try:
        results = await asyncio.gather(*(store.get(A, SECURE_SCORES, "s0") for _ in range(5)),
                                       return_exceptions=True)
        assert all(type(r).__name__ == "UndefinedTableError" for r in results), results
    finally:
        reads._sql["secureScores"] = good
    assert await store.get(A, SECURE_SCORES, "s0") is not None
    assert store.pool.open_connections <= 2


async def test_a_cancelled_read_does_not_disturb_the_others(store: PostgresStore) -> None:
    for i in range(5):
        await put(store, A, f"s{i}", float(i))
    tasks = [asyncio.create_task(store.get(A, SECURE_SCORES, f"s{i}")) for i in range(5)]
    tasks[2].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[2], asyncio.CancelledError)
    for i in (0, 1, 3, 4):
        body = done[i]
        assert isinstance(body, bytes)
        assert f'"id":"s{i}"'.encode() in body


async def test_a_read_past_the_statement_budget_is_504_and_the_next_one_works(
        postgres_url: str, pg_reads: str) -> None:
    """A probe by key takes no time, but it can wait: here for a lock another session holds."""
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    store = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2, reads=pg_reads,
                          statement_timeout_ms=100)
    await store.open()
    try:
        await put(store, A, "s0", 0.0)
        locker = await asyncpg.connect(postgres_url)
        try:
            async with locker.transaction():
                await locker.execute("LOCK TABLE secure_scores IN ACCESS EXCLUSIVE MODE")
                with pytest.raises(GatewayTimeout):
                    await store.get(A, SECURE_SCORES, "s0")
        finally:
            await locker.close()
        assert await store.get(A, SECURE_SCORES, "s0") is not None
    finally:
        await store.close()
