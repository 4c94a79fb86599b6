"""Reads by id over a PostgreSQL connection spoken to directly (``storage/postgres/reads/wire.py``,
``GRAPHSEC_PG_READS=wire``): batches are pipelined, each read gets its own tenant's entity, a
batch the database refuses fails only its own reads.

The promises every reader keeps (batching, cache, lost connections, the plan) are tested on each
in ``test_pgbatch.py``, ``test_pgcache.py``, ``test_pg_reconnect.py`` and ``test_plans.py``; the
protocol parser without a server in ``test_pgwire_protocol.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES, USER_SECURITY_PROFILES
from graphsec.schema.values import check_body, complete
from graphsec.storage.postgres import PostgresStore
from graphsec.storage.postgres.reads import wire as pgwire
from graphsec.storage.postgres.reads.batch import BatchReads
from graphsec.storage.postgres.reads.wire import WireReads
from tests.conftest import TABLES, _pg, score

A = "11111111-1111-1111-1111-111111111111"
B = "22222222-2222-2222-2222-222222222222"
SCORES = SECURE_SCORES


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    s = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2, reads="wire")
    await s.open()
    for tenant, offset in ((A, 0.0), (B, 1000.0)):
        for i in range(10):
            doc = complete(SECURE_SCORE, check_body(
                SECURE_SCORE, score(id=f"s{i}", currentScore=offset + i), "create"))
            await s.create(tenant, SCORES, doc)
    yield s
    await s.close()


def reader(store: PostgresStore) -> WireReads:
    reads = store._reads
    assert isinstance(reads, WireReads)
    return reads


def current(body: bytes | None) -> float | None:
    return None if body is None else float(orjson.loads(body)["currentScore"])


async def test_the_store_reads_by_id_over_its_own_connection(store: PostgresStore) -> None:
    reads = reader(store)
    assert reads._conn is not None
    assert reads._conn not in store.pool._idle  # not one of the pool's
    assert current(await store.get(A, SCORES, "s3")) == 3.0


async def test_batches_sent_in_successive_turns_are_pipelined_and_answered_in_order(
        store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = reader(store)
    most = 0
    send = reads._send

    def counting(batch: Any) -> None:
        nonlocal most
        send(batch)
        most = max(most, len(reads.in_flight))

    monkeypatch.setattr(reads, "_send", counting)
    before = reads.statements
    pending = []
    for turn in range(12):  # a few reads a turn, each turn's batch sent before any answer
        for k in range(3):
            tenant = (A, B)[(turn + k) % 2]
            pending.append((tenant, turn % 12, asyncio.ensure_future(
                store.get(tenant, SCORES, f"s{turn % 12}"))))
        await asyncio.sleep(0)
    got = [(t, i, await f) for t, i, f in pending]
    assert reads.statements - before >= 2
    assert most >= 2  # a batch went out while an earlier one was unanswered
    for tenant, i, body in got:
        expected = None if i >= 10 else i + (1000.0 if tenant == B else 0.0)
        assert current(body) == expected


async def test_no_more_than_the_maximum_of_batches_is_in_flight(
        store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgwire, "MAX_IN_FLIGHT", 2)
    reads = reader(store)
    seen = []
    send = reads._send

    def watching(batch: Any) -> None:
        send(batch)
        seen.append(len(reads.in_flight))

    monkeypatch.setattr(reads, "_send", watching)
    tasks = []
    for turn in range(10):
        tasks.append(asyncio.ensure_future(store.get(A, SCORES, f"s{turn}")))
        await asyncio.sleep(0)
    assert [current(b) for b in await asyncio.gather(*tasks)] == [float(i) for i in range(10)]
    assert seen
    assert max(seen) == 2  # the rest waited, and the answers sent them


async def test_a_refused_statement_fails_its_own_batch_only(store: PostgresStore) -> None:
    """Reads of another entity set, sent in the same turn as their own batch, are unaffected;
    once the statement is right again, its reads work (it is prepared again)."""
    reads = reader(store)
    good = reads._sql["userSecurityProfiles"]
    reads._sql["userSecurityProfiles"] = good.replace("user_security_profiles", "no_such_table")
    try:
        results = await asyncio.gather(
            store.get(A, SCORES, "s1"), store.get(A, USER_SECURITY_PROFILES, "u1"),
            store.get(A, SCORES, "s2"), return_exceptions=True)
        assert current(results[0]) == 1.0  # type: ignore[arg-type]
        assert isinstance(results[1], asyncpg.UndefinedTableError), results[1]
        assert current(results[2]) == 2.0  # type: ignore[arg-type]
    finally:
        reads._sql["userSecurityProfiles"] = good
    assert await store.get(A, USER_SECURITY_PROFILES, "u1") is None  # prepared anew, answers
    assert current(await store.get(A, SCORES, "s3")) == 3.0


async def test_an_id_json_cannot_carry_fails_no_read(store: PostgresStore) -> None:
    """A lone surrogate cannot be encoded, so no stored entity has it: not found, and the
    reads batched with it are answered."""
    got = await asyncio.gather(store.get(A, SCORES, "s1"), store.get(A, SCORES, "x\ud800"),
                               store.get(A, SCORES, "s2"))
    assert [current(b) for b in got] == [1.0, None, 2.0]


async def test_closing_fails_the_reads_still_waiting(store: PostgresStore) -> None:
    task = asyncio.ensure_future(store.get(A, SCORES, "s1"))
    await asyncio.sleep(0)
    await reader(store).close()
    with pytest.raises(RuntimeError, match="closed"):
        await task


async def test_without_asyncpgs_transport_the_store_reads_through_asyncpg(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WireReads, "_attach", lambda self, conn: False)
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    s = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2, reads="wire")
    await s.open()
    try:
        assert isinstance(s._reads, BatchReads)
        doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id="s1"), "create"))
        await s.create(A, SCORES, doc)
        assert await s.get(A, SCORES, "s1") is not None
    finally:
        await s.close()


async def test_closing_while_reconnecting_fails_the_waiting_reads_cleanly(
        store: PostgresStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = reader(store)
    opening = asyncio.Event()

    async def slow_open() -> Any:
        opening.set()
        await asyncio.sleep(30)

    monkeypatch.setattr(store.pool, "open_dedicated", slow_open)
    assert reads._transport is not None
    reads._transport.abort()  # the connection goes; the next read must open another
    await asyncio.sleep(0.05)
    task = asyncio.ensure_future(store.get(A, SCORES, "s1"))
    await asyncio.wait_for(opening.wait(), 5)
    await reads.close()
    with pytest.raises(RuntimeError, match="closed"):
        await task
