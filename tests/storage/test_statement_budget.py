"""Every statement that can scan runs within a time budget, on both backends: past it, 504
``GatewayTimeout`` and the store serves on; a read whose caller is cancelled (the client went
away) stops, leaving nothing running; a write stopped by the budget is rolled back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from graphsec.errors import GatewayTimeout
from graphsec.odata.filter import parse_filter
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
from graphsec.storage.base import Store
from tests.support.activity import active_lambda_statements
from tests.support.postgres import empty

TENANT = "1d5a1bd0-0000-4000-8000-000000000001"
OTHER = "2e6b2ce1-0000-4000-8000-000000000002"
SCORES = SECURE_SCORES
# Two lambdas deep (the most the filter language allows), correlated so that neither backend
# can evaluate the inner one once per row: every pair of items of every score is compared.
EXPENSIVE = "controlScores/any(a: controlScores/any(b: b/score eq a/score sub 1000))"
ORDER = (OrderKey(("createdDateTime",), True), OrderKey(("id",), True))

StoreFactory = Callable[..., Awaitable[Store]]


def score(i: int, controls: int, tenant: str = TENANT) -> dict[str, Any]:
    return {"id": f"s{i}", "azureTenantId": tenant, "createdDateTime": "2024-03-19T15:21:00Z",
            "currentScore": float(i),
            "controlScores": [{"controlName": f"c{j}", "controlCategory": "Identity",
                               "score": float(j)} for j in range(controls)]}


def query(text: str | None, count: bool = False) -> ListQuery:
    return ListQuery(order=ORDER, limit=10, count=count,
                     filter=None if text is None else parse_filter(text, SECURE_SCORE))


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh SQLite path, or the session's PostgreSQL database emptied."""
    if backend == "sqlite":
        return str(tmp_path / "store.db")
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(empty(url))
    return url


@pytest.fixture
async def make_store(backend: str, database: str) -> AsyncIterator[StoreFactory]:
    """``await make_store(timeout_ms, scores=n, controls=k)``: an open store with that budget
    holding ``n`` scores of ``k`` control scores each, and one score of another tenant."""
    opened: list[Store] = []

    async def make(timeout_ms: int, scores: int, controls: int, **options: Any) -> Store:
        store: Store
        if backend == "sqlite":
            from graphsec.storage.sqlite import SQLiteStore

            store = SQLiteStore(Path(database), ENTITY_SETS, statement_timeout_ms=timeout_ms, **options)
        else:
            from graphsec.storage.postgres import PostgresStore

            store = PostgresStore(database, ENTITY_SETS, pool_size=4, statement_timeout_ms=timeout_ms)
        await store.open()
        opened.append(store)
        for i in range(scores):
            await store.create(TENANT, SCORES, score(i, controls))
        await store.create(OTHER, SCORES, score(0, 1, OTHER))
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.mark.parametrize(("count", "text"), [
    pytest.param(True, EXPENSIVE, id="count"),
    pytest.param(False, EXPENSIVE, id="filtered-page"),
])
async def test_a_statement_past_its_budget_is_504_and_the_store_serves_on(
        make_store: StoreFactory, count: bool, text: str) -> None:
    store = await make_store(100, scores=60, controls=200)
    run = store.count if count else store.list
    with pytest.raises(GatewayTimeout) as info:
        await run(TENANT, SCORES, query(text))
    assert info.value.status == 504
    assert info.value.code == "GatewayTimeout"
    assert "100 ms" in info.value.message
    assert "$filter" in info.value.message

    assert await store.count(TENANT, SCORES, query(None)) == 60
    assert await store.count(TENANT, SCORES, query("controlScores/any(a: a/score eq 3)")) == 60
    assert await store.get(OTHER, SCORES, "s0") is not None
    page = await store.list(TENANT, SCORES, query("currentScore lt 5", count=True))
    assert (len(page.docs), page.count) == (5, 5)


async def test_without_a_budget_the_same_query_runs_to_its_end(
        make_store: StoreFactory) -> None:
    store = await make_store(0, scores=3, controls=100)
    assert await store.count(TENANT, SCORES, query(EXPENSIVE)) == 0


async def _running_statements(store: Store, backend: str) -> int:
    """Statements of ``store`` running in the database right now (SQLite: in its threads)."""
    if backend == "sqlite":
        from graphsec.storage.sqlite import SQLiteStore

        assert isinstance(store, SQLiteStore)
        return store.scans.running
    from graphsec.storage.postgres import PostgresStore

    assert isinstance(store, PostgresStore)
    return await active_lambda_statements(store.url)


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.mark.parametrize("count", [pytest.param(True, id="count"),
                                   pytest.param(False, id="filtered-page")])
async def test_a_cancelled_read_leaves_nothing_running(
        make_store: StoreFactory, backend: str, count: bool) -> None:
    # one scan thread on SQLite: the query after the cancelled one needs that very thread.
    # The expensive query would run for a minute or more on either backend.
    options = {"scan_threads": 1} if backend == "sqlite" else {}
    store = await make_store(600_000, scores=400, controls=300, **options)
    work = (store.count(TENANT, SCORES, query(EXPENSIVE)) if count
            else store.list(TENANT, SCORES, query(EXPENSIVE, count=True)))
    task = asyncio.ensure_future(work)

    async def running() -> bool:
        return await _running_statements(store, backend) == 1

    assert await _until(running, 20), "the expensive query never started"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def stopped() -> bool:
        return await _running_statements(store, backend) == 0

    assert await _until(stopped, 10), "the cancelled statement is still running"
    async with asyncio.timeout(10):  # the freed thread / a pooled connection answers
        assert await store.count(TENANT, SCORES, query("currentScore lt 7")) == 7


async def test_a_write_stopped_by_the_budget_is_rolled_back(
        make_store: StoreFactory, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite writes run inline, bounded by the document limits; a write that "
                    "waits for another process's lock is a 503 (test_sqlite_busy.py)")
    from graphsec.storage.postgres import PostgresStore

    store = await make_store(200, scores=1, controls=2)
    assert isinstance(store, PostgresStore)
    before = await store.get(TENANT, SCORES, "s0")
    holder = await asyncpg.connect(store.url)  # another writer holds the row's lock
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1 FROM secure_scores WHERE tenant_id = $1 AND id = 's0' "
                             "FOR UPDATE", TENANT)
        with pytest.raises(GatewayTimeout, match="200 ms"):
            await store.update(TENANT, SCORES, "s0", lambda doc: {**doc, "currentScore": -5.0})
        await transaction.rollback()
    finally:
        await holder.close()
    assert await store.get(TENANT, SCORES, "s0") == before
    assert await store.update(TENANT, SCORES, "s0", lambda doc: {**doc, "currentScore": 9.0})
    got = await store.get(TENANT, SCORES, "s0")
    assert got is not None
    assert b'"currentScore":9.0' in got
