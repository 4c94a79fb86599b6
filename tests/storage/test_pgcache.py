"""PostgreSQL's documents kept by row version (``storage/postgres/cache.py``): what a read returns is
always what the database holds at that moment, whoever wrote it, while unchanged documents are
not sent again."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from graphsec.config import Settings, SettingsError
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
from graphsec.schema.values import check_body, complete
from graphsec.storage.postgres import PostgresStore
from graphsec.storage.postgres.cache import ENTRY_OVERHEAD, BodyCache
from tests.conftest import TABLES, _pg, score

A = "11111111-1111-1111-1111-111111111111"
B = "22222222-2222-2222-2222-222222222222"
ORDER = (OrderKey(("createdDateTime",), True), OrderKey(("id",), True))
SCORES = "secureScores"


# -- the cache itself -------------------------------------------------------------------------

def test_a_document_is_served_only_at_the_version_it_was_stored_with() -> None:
    cache = BodyCache(10_000)
    cache.put((SCORES, A, "x"), 7, b"seven")
    now = time.monotonic()
    assert cache.get((SCORES, A, "x"), 7, now) == b"seven"
    assert cache.get((SCORES, A, "x"), 8, now) is None
    assert cache.get((SCORES, B, "x"), 7, now) is None  # another tenant's key
    cache.put((SCORES, A, "x"), 8, b"eight")
    assert cache.get((SCORES, A, "x"), 7, now) is None
    assert cache.get((SCORES, A, "x"), 8, now) == b"eight"
    assert len(cache) == 1
    assert cache.size == len(b"eight") + ENTRY_OVERHEAD


def test_entries_expire_after_their_ttl() -> None:
    cache = BodyCache(10_000, ttl=600)
    cache.put((SCORES, A, "x"), 1, b"doc")
    now = time.monotonic()
    assert cache.get((SCORES, A, "x"), 1, now) == b"doc"
    assert cache.held((SCORES, A, "x"), now) == (1, b"doc")
    assert cache.get((SCORES, A, "x"), 1, now + 601) is None
    assert cache.held((SCORES, A, "x"), now + 601) is None


def test_the_byte_bound_drops_the_least_recently_used_first() -> None:
    body = b"x" * 800
    cache = BodyCache(3 * (len(body) + ENTRY_OVERHEAD))
    for i in range(3):
        cache.put((SCORES, A, str(i)), 1, body)
    now = time.monotonic()
    assert cache.get((SCORES, A, "0"), 1, now) == body  # 0 is now the most recently used
    cache.put((SCORES, A, "3"), 1, body)
    assert cache.size <= cache.max_bytes
    assert len(cache) == 3
    assert cache.get((SCORES, A, "1"), 1, now) is None  # the least recently used went
    assert cache.get((SCORES, A, "0"), 1, now) == body
    assert cache.get((SCORES, A, "3"), 1, now) == body
    cache.put((SCORES, A, "big"), 1, b"y" * cache.max_bytes)  # larger than the whole cache
    assert cache.get((SCORES, A, "big"), 1, now) is None
    assert len(cache) == 3


def test_the_cache_size_is_a_setting(tmp_path: Any) -> None:
    env = {"GRAPHSEC_HOME": str(tmp_path), "GRAPHSEC_DATABASE_URL": "postgresql://h/db"}
    assert Settings.from_env(env).pg_cache_mb == 64
    settings = Settings.from_env({**env, "GRAPHSEC_PG_CACHE_MB": "0"})
    assert Settings.from_env(settings.environ()).pg_cache_mb == 0  # reaches the workers
    for bad in ("-1", "65537", "lots"):
        with pytest.raises(SettingsError, match="GRAPHSEC_PG_CACHE_MB"):
            Settings.from_env({**env, "GRAPHSEC_PG_CACHE_MB": bad})
    from graphsec.app import create_store

    store = create_store(Settings.from_env({**env, "GRAPHSEC_PG_CACHE_MB": "3"}))
    assert isinstance(store, PostgresStore)
    assert store.cache is not None
    assert store.cache.max_bytes == 3 * 2**20
    assert isinstance(create_store(settings), PostgresStore)
    assert create_store(settings).cache is None  # type: ignore[attr-defined]


# -- on PostgreSQL: two stores stand for two worker processes --------------------------------

@pytest.fixture
async def stores(postgres_url: str,
                 pg_reads: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    reader = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2, reads=pg_reads)
    writer = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2)
    await reader.open()
    await writer.open()
    yield reader, writer
    await reader.close()
    await writer.close()


async def put(store: PostgresStore, tenant: str, entity_id: str, value: float, day: int) -> None:
    doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(
        id=entity_id, currentScore=value, createdDateTime=f"2026-01-{day:02d}T00:00:00Z"),
        "create"))
    await store.create(tenant, SECURE_SCORES, doc)


async def set_score(store: PostgresStore, tenant: str, entity_id: str, value: float) -> None:
    def change(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "currentScore": value}

    assert await store.update(tenant, SECURE_SCORES, entity_id, change) is not None


def current(body: bytes | None) -> float:
    assert body is not None
    return float(orjson.loads(body)["currentScore"])


async def listed(store: PostgresStore, tenant: str, limit: int = 10) -> dict[str, float]:
    page = await store.list(tenant, SECURE_SCORES, ListQuery(order=ORDER, limit=limit))
    return {orjson.loads(d)["id"]: current(d) for d in page.docs}


async def test_another_workers_update_is_seen_at_once(
        stores: tuple[PostgresStore, PostgresStore]) -> None:
    reader, writer = stores
    cache = reader.cache
    assert cache is not None
    for i in range(3):
        await put(writer, A, f"s{i}", float(i), i + 1)
    assert current(await reader.get(A, SECURE_SCORES, "s1")) == 1.0
    assert await listed(reader, A) == {"s0": 0.0, "s1": 1.0, "s2": 2.0}
    hits = cache.hits
    assert current(await reader.get(A, SECURE_SCORES, "s1")) == 1.0
    assert await listed(reader, A) == {"s0": 0.0, "s1": 1.0, "s2": 2.0}
    assert cache.hits == hits + 4  # the unchanged documents were not sent again

    await set_score(writer, A, "s1", 41.0)
    assert current(await reader.get(A, SECURE_SCORES, "s1")) == 41.0
    await set_score(writer, A, "s2", 42.0)
    assert await listed(reader, A) == {"s0": 0.0, "s1": 41.0, "s2": 42.0}


async def test_a_deleted_entity_is_gone_at_once(
        stores: tuple[PostgresStore, PostgresStore]) -> None:
    reader, writer = stores
    await put(writer, A, "s0", 0.0, 1)
    await put(writer, A, "s1", 1.0, 2)
    assert current(await reader.get(A, SECURE_SCORES, "s0")) == 0.0
    assert set(await listed(reader, A)) == {"s0", "s1"}
    assert await writer.delete(A, SECURE_SCORES, "s0")
    assert await reader.get(A, SECURE_SCORES, "s0") is None
    assert set(await listed(reader, A)) == {"s1"}
    await put(writer, A, "s0", 100.0, 1)  # the same id again, a new row
    assert current(await reader.get(A, SECURE_SCORES, "s0")) == 100.0
    assert (await listed(reader, A))["s0"] == 100.0


async def test_tenants_sharing_ids_never_see_each_others_documents(
        stores: tuple[PostgresStore, PostgresStore]) -> None:
    reader, writer = stores
    for i in range(3):
        await put(writer, A, f"s{i}", float(i), i + 1)
        await put(writer, B, f"s{i}", 1000.0 + i, i + 1)
    for _ in range(2):  # cold, then warm
        assert await listed(reader, A) == {"s0": 0.0, "s1": 1.0, "s2": 2.0}
        assert await listed(reader, B) == {"s0": 1000.0, "s1": 1001.0, "s2": 1002.0}
        assert current(await reader.get(A, SECURE_SCORES, "s2")) == 2.0
        assert current(await reader.get(B, SECURE_SCORES, "s2")) == 1002.0


def record_queries(store: PostgresStore, monkeypatch: pytest.MonkeyPatch,
                   after: Callable[[list[str]], Awaitable[None]] | None = None) -> list[str]:
    """The SQL of every statement ``store`` runs from now on (``after`` is awaited once each
    has run, with the list so far)."""
    statements: list[str] = []
    original = store._query

    async def recording(sql: str, params: list[Any]) -> Any:
        rows = await original(sql, params)
        statements.append(sql)
        if after is not None:
            await after(statements)
        return rows

    monkeypatch.setattr(store, "_query", recording)
    return statements


async def test_a_row_rewritten_between_a_pages_two_statements_is_read_again(
        stores: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch) -> None:
    """The page names s1 at its old version; the bodies not held are fetched by id *and*
    version, which no longer matches: the page is read again, whole, the ordinary way."""
    reader, writer = stores
    for i in range(3):
        await put(writer, A, f"s{i}", float(i), i + 1)
    async def write_after_the_first(statements: list[str]) -> None:
        if len(statements) == 1:  # the page of ids and versions has been read
            await set_score(writer, A, "s1", 99.0)

    statements = record_queries(reader, monkeypatch, write_after_the_first)
    page = await reader.list(A, SECURE_SCORES, ListQuery(order=ORDER, limit=2, count=True))
    assert len(statements) == 3  # versions, bodies (s1 no longer matches), the whole page
    assert [current(d) for d in page.docs] == [2.0, 99.0]
    assert page.count == 3
    assert page.next_after is not None
    monkeypatch.undo()
    rest = await reader.list(A, SECURE_SCORES, ListQuery(order=ORDER, limit=2, after=page.next_after))
    assert [current(d) for d in rest.docs] == [0.0]


async def test_without_the_cache_reads_send_every_document(postgres_url: str,
                                                          pg_reads: str) -> None:
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    store = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2, cache_bytes=0, reads=pg_reads)
    await store.open()
    try:
        assert store.cache is None
        await put(store, A, "s0", 5.0, 1)
        for _ in range(2):
            assert current(await store.get(A, SECURE_SCORES, "s0")) == 5.0
            assert await listed(store, A) == {"s0": 5.0}
        await set_score(store, A, "s0", 6.0)
        assert current(await store.get(A, SECURE_SCORES, "s0")) == 6.0
    finally:
        await store.close()


async def test_a_warm_page_is_one_statement(stores: tuple[PostgresStore, PostgresStore],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    reader, writer = stores
    for i in range(5):
        await put(writer, A, f"s{i}", float(i), i + 1)
    statements = record_queries(reader, monkeypatch)
    query = ListQuery(order=ORDER, limit=3, count=True)
    cold = await reader.list(A, SECURE_SCORES, query)
    assert len(statements) == 2  # ids and versions with the count, then the 3 bodies
    warm = await reader.list(A, SECURE_SCORES, query)
    assert len(statements) == 3
    assert warm == cold
    assert warm.count == 5
    assert "body" not in statements[0]
    assert "body" in statements[1]
