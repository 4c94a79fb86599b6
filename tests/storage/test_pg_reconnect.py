"""PostgreSQL connections that go away: a restart or failover closes every pooled connection.

Reads are sent again, once, on a fresh connection, so the first requests after a restart do not
fail; while the database cannot be reached at all, every request gets Graph's 503
``serviceNotAvailable`` with ``Retry-After`` (which the SDKs' retry handlers honour), never a 500.
A write is not sent again: it may have committed before its connection went.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from graphsec.app import create_app
from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from graphsec.config import Settings
from graphsec.errors import ServiceUnavailable
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
from graphsec.schema.values import check_body, complete
from graphsec.storage.postgres import PostgresStore
from tests.conftest import TABLES, _pg, score

T = "11111111-1111-1111-1111-111111111111"
ORDER = (OrderKey(("createdDateTime",), True), OrderKey(("id",), True))
SCORES = SECURE_SCORES


async def terminate_pool(store: PostgresStore, url: str) -> int:
    """Terminate the server side of every connection the store's pool holds, as a restart
    does. It runs in another thread while this event loop is blocked, so that the store's
    connections have not read the termination yet: their next use fails in flight."""
    pids = [c.get_server_pid() for c in store.pool._idle]
    own: asyncpg.Connection | None = getattr(store._reads, "_conn", None)
    if own is not None:  # the connection of a reader by id that has one of its own
        pids.append(own.get_server_pid())

    async def terminate() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM unnest($1::int[]) AS pid", pids)
        finally:
            await conn.close()

    thread = threading.Thread(target=asyncio.run, args=(terminate(),))
    thread.start()
    thread.join()  # blocks this loop on purpose
    assert all(not c.is_closed() for c in store.pool._idle)  # not noticed yet
    return len(pids)


@pytest.fixture
async def store(postgres_url: str, pg_reads: str) -> AsyncIterator[PostgresStore]:
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    s = PostgresStore(postgres_url, ENTITY_SETS, pool_size=3, reads=pg_reads)
    await s.open()
    for i in range(3):
        doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id=f"s{i}"), "create"))
        await s.create(T, SCORES, doc)
    # three connections in the pool, all idle
    await asyncio.gather(*(s.list(T, SCORES, ListQuery(order=ORDER, limit=2)) for _ in range(3)))
    yield s
    await s.close()


async def test_reads_survive_the_pools_connections_being_terminated(
        store: PostgresStore, postgres_url: str) -> None:
    for read in ("get", "list", "count"):
        assert await terminate_pool(store, postgres_url) >= 1
        if read == "get":
            body = await store.get(T, SCORES, "s1")
            assert body is not None
            assert orjson.loads(body)["id"] == "s1"
        elif read == "list":
            page = await store.list(T, SCORES, ListQuery(order=ORDER, limit=2, count=True))
            assert len(page.docs) == 2
            assert page.count == 3
        else:
            assert await store.count(T, SCORES, ListQuery(order=ORDER, limit=1)) == 3
        # the pool keeps working afterwards
        await asyncio.gather(*(store.list(T, SCORES, ListQuery(order=ORDER, limit=2))
                               for _ in range(3)))


async def test_concurrent_reads_by_id_survive_it_too(store: PostgresStore,
                                                      postgres_url: str) -> None:
    await terminate_pool(store, postgres_url)
    bodies = await asyncio.gather(*(store.get(T, SCORES, f"s{i % 3}") for i in range(30)))
    assert [orjson.loads(b or b"{}").get("id") for b in bodies] == [f"s{i % 3}" for i in range(30)]


async def test_a_lost_connection_empties_the_document_cache(store: PostgresStore,
                                                             postgres_url: str) -> None:
    """Transactions lost in a crash or an asynchronous failover give their ids out again, so a
    row version seen before the loss may name another document after it."""
    assert store.cache is not None
    assert len(store.cache) == 2  # the two documents of the fixture's pages
    await terminate_pool(store, postgres_url)
    assert await store.get(T, SCORES, "s1") is not None
    assert len(store.cache) == 1  # only what was read after the loss


async def test_an_id_postgresql_cannot_store_fails_only_its_own_read(
        store: PostgresStore) -> None:
    """A NUL cannot be in a PostgreSQL text, so no entity has such an id: its GET finds nothing
    (sent in a batch, the database's refusal would fail every read batched with it)."""
    got = await asyncio.gather(store.get(T, SCORES, "s1"), store.get(T, SCORES, "a\x00b"),
                               store.get(T, SCORES, "s2"))
    assert [orjson.loads(b)["id"] if b else None for b in got] == ["s1", None, "s2"]
    assert await store.update(T, SCORES, "a\x00b", lambda d: d) is None
    assert await store.delete(T, SCORES, "a\x00b") is False


async def test_a_row_without_a_body_is_not_found_and_fails_no_other_read(
        store: PostgresStore, postgres_url: str) -> None:
    """Only a writer other than graphsec can leave ``body`` NULL; such a row is not served."""
    assert await store.get(T, SCORES, "s0") is not None  # held in the cache now
    await _pg(["UPDATE secure_scores SET body = NULL WHERE id = 's0'"], postgres_url)
    got = await asyncio.gather(store.get(T, SCORES, "s0"), store.get(T, SCORES, "s1"))
    assert got[0] is None
    assert got[1] is not None


def unreachable(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(store.pool, "open_dedicated", refused)  # every new connection


async def test_an_unreachable_database_is_a_503_for_reads_and_writes(
        store: PostgresStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await terminate_pool(store, postgres_url)
    unreachable(store, monkeypatch)
    doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id="new"), "create"))
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.get(T, SCORES, "s1"),
        lambda: store.list(T, SCORES, ListQuery(order=ORDER, limit=2)),
        lambda: store.count(T, SCORES, ListQuery(order=ORDER, limit=1)),
        lambda: store.create(T, SCORES, doc),
        lambda: store.update(T, SCORES, "s1", lambda d: {**d, "currentScore": 1.0}),
        lambda: store.delete(T, SCORES, "s1"),
    ]
    for call in calls:
        with pytest.raises(ServiceUnavailable):
            await call()
    monkeypatch.undo()  # the database is back
    assert await store.get(T, SCORES, "s1") is not None
    await store.create(T, SCORES, doc)
    assert await store.count(T, SCORES, ListQuery(order=ORDER, limit=1)) == 4


async def test_a_write_on_a_lost_connection_is_a_503_and_not_sent_twice(
        store: PostgresStore, postgres_url: str) -> None:
    await terminate_pool(store, postgres_url)
    doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id="w1"), "create"))
    with pytest.raises(ServiceUnavailable):
        await store.create(T, SCORES, doc)
    # the next write takes a fresh connection (the dead idle ones were dropped)
    doc2 = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id="w2"), "create"))
    await store.create(T, SCORES, doc2)
    assert await store.get(T, SCORES, "w2") is not None


async def test_the_client_gets_graphs_503_with_retry_after(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    settings = Settings.from_env({"GRAPHSEC_HOME": str(tmp_path),
                                  "GRAPHSEC_DATABASE_URL": postgres_url,
                                  "GRAPHSEC_ALLOWED_HOSTS": "graph.test"})
    token = LocalIssuer(load_or_create(tmp_path)).mint(T, ["SecurityEvents.ReadWrite.All"])
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://graph.test") as client:
        r = await client.get("/v1.0/security/secureScores?$top=1", headers=headers)
        assert r.status_code == 200
        store = app.resource.store
        assert isinstance(store, PostgresStore)
        await terminate_pool(store, postgres_url)
        unreachable(store, monkeypatch)
        for method, path in (("GET", "/v1.0/security/secureScores?$top=1"),
                             ("GET", "/v1.0/security/secureScores/x"),
                             ("POST", "/v1.0/security/secureScores")):
            r = await client.request(method, path, headers=headers,
                                     json=score(id="p1") if method == "POST" else None)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "serviceNotAvailable"
            assert int(r.headers["retry-after"]) >= 1
            assert "retry" in r.json()["error"]["message"]
    await store.close()
