"""Item rows (``storage/sql/items.py``): built per tenant in chunks, kept exact.

The rows of a tenant must equal what its documents say, item for item, for every document not
listed as stale, whatever wrote the documents and whenever: before, during and after a build,
from this worker, another worker, the bulk loader or the state store (import, reset); and for
every document once a refresh has run. Each test compares the item table with the rows derived
in Python from the documents the store returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from graphsec.app import create_store
from graphsec.config import Settings, SettingsError
from graphsec.odata.filter import parse_filter
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
from graphsec.schema.values import check_body, complete
from graphsec.storage.base import Store
from graphsec.storage.bulk import open_bulk
from graphsec.storage.postgres import PostgresStore
from graphsec.storage.sql.items import BUILD_CHUNK
from graphsec.storage.sqlite import SQLiteStore
from graphsec.storage.state import open_state
from tests.conftest import score
from tests.support.items import ANY, ITEMS, build_item_rows, reads_item_rows
from tests.support.stores import store_for

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"

Row = tuple[str, str, int, Any, Any, Any, Any]


def body(n: int, tenant: str = TENANT, controls: int = 3) -> dict[str, Any]:
    return complete(SECURE_SCORE, check_body(SECURE_SCORE, score(
        id=f"{tenant}_{n:05d}", azureTenantId=tenant,
        controlScores=[{"controlName": f"c{(n + i) % 7}", "score": float((n * i) % 11),
                        "controlCategory": None if i == 1 else "Identity",
                        "description": f"d{n}"} for i in range(controls)]), "create"))


def derived(docs: list[dict[str, Any]]) -> set[Row]:
    """The rows the item table must hold for these documents."""
    return {(d["azureTenantId"], d["id"], i, c.get("controlCategory"), c.get("controlName"),
             c.get("description"), None if c.get("score") is None else float(c["score"]))
            for d in docs for i, c in enumerate(d["controlScores"])}


async def stored_docs(store: Store, tenant: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    after = None
    while True:
        page = await store.list(tenant, SECURE_SCORES, ListQuery(
            order=(OrderKey(("id",)),), limit=500, after=after))
        docs += [orjson.loads(d) for d in page.docs]
        if page.next_after is None:
            return docs
        after = page.next_after


async def item_rows(store: Store, tenant: str) -> set[Row]:
    sql = ("SELECT tenant_id, parent_id, ordinal, control_category, control_name, description, "
           f"score FROM {ITEMS} WHERE tenant_id = ")
    if isinstance(store, SQLiteStore):
        return {tuple(r) for r in store.conn.execute(sql + "?", (tenant,))}
    assert isinstance(store, PostgresStore)
    async with store.pool.acquire() as conn:
        return {tuple(r) for r in await conn.fetch(sql + "$1", tenant)}


async def stale(store: Store, tenant: str) -> set[str]:
    """The ids of the tenant's documents listed as stale."""
    sql = "SELECT parent_id FROM item_rows_stale WHERE tenant_id = "
    if isinstance(store, SQLiteStore):
        return {r[0] for r in store.conn.execute(sql + "?", (tenant,))}
    assert isinstance(store, PostgresStore)
    async with store.pool.acquire() as conn:
        return {r[0] for r in await conn.fetch(sql + "$1", tenant)}


async def refresh(store: Store, tenant: str) -> None:
    et = store.tables["secureScores"]  # type: ignore[attr-defined]
    for _ in range(1_000):
        if await store._refresh_chunk(et, et.items["controlScores"], tenant):  # type: ignore[attr-defined]
            return
    raise AssertionError("the refresh never ended")


async def assert_exact(store: Store, tenant: str, docs: list[dict[str, Any]]) -> None:
    """The rows of ``docs`` (those whose rows are kept) are exact for each document not listed
    as stale, and for all of them after a refresh, which leaves none stale."""
    listed = await stale(store, tenant)
    assert {r for r in await item_rows(store, tenant) if r[1] not in listed} == derived(
        [d for d in docs if d["id"] not in listed])
    await refresh(store, tenant)
    assert await stale(store, tenant) == set()
    assert await item_rows(store, tenant) == derived(docs)


async def built_state(store: Store, tenant: str) -> tuple[Any, Any] | None:
    sql = "SELECT upto, complete FROM item_rows_built WHERE tenant_id = "
    if isinstance(store, SQLiteStore):
        row = store.conn.execute(sql + "?", (tenant,)).fetchone()
    else:
        assert isinstance(store, PostgresStore)
        async with store.pool.acquire() as conn:
            row = await conn.fetchrow(sql + "$1", tenant)
    return None if row is None else (row[0], bool(row[1]))


def url_of(store: Store) -> str:
    return f"sqlite:///{store.path}" if isinstance(store, SQLiteStore) else store.url  # type: ignore[attr-defined]


def twin(store: Store) -> Store:
    """Another worker's store on the same database."""
    if isinstance(store, SQLiteStore):
        return SQLiteStore(store.path, ENTITY_SETS)
    assert isinstance(store, PostgresStore)
    return PostgresStore(store.url, ENTITY_SETS, pool_size=4)


@pytest.fixture
def unopened(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    return store_for(backend, tmp_path, request)


@pytest.fixture
async def store(unopened: Store) -> Any:
    s = unopened
    await s.open()
    yield s
    await s.close()


async def test_writes_before_a_build_leave_no_rows_and_a_build_makes_them_exact(
        store: Store) -> None:
    docs = [body(n) for n in range(2 * BUILD_CHUNK + 7)]
    for doc in docs:
        await store.create(TENANT, SECURE_SCORES, doc)
    await store.create(OTHER, SECURE_SCORES, body(1, OTHER))
    assert await item_rows(store, TENANT) == set()  # nothing asked for them: nothing is kept
    assert await built_state(store, TENANT) is None
    await build_item_rows(store, TENANT)
    assert await item_rows(store, TENANT) == derived(docs)
    assert await built_state(store, TENANT) == (docs[-1]["id"], True)
    assert await item_rows(store, OTHER) == set()  # another tenant's are built on its own
    # complete is remembered: the next lambda needs no read to know it
    ready = store.items.ready(TENANT, store.tables["secureScores"], ANY)  # type: ignore[attr-defined]
    assert ready == frozenset({"controlScores"})


async def test_a_build_in_progress_keeps_what_it_covered_and_reads_the_rest(store: Store) -> None:
    docs = [body(n) for n in range(0, 6 * BUILD_CHUNK, 2)]  # even numbers: room between them
    for doc in docs:
        await store.create(TENANT, SECURE_SCORES, doc)
    et = store.tables["secureScores"]  # type: ignore[attr-defined]
    assert not await store._build_chunk(et, et.items["controlScores"], TENANT)  # type: ignore[attr-defined]
    upto = docs[BUILD_CHUNK - 1]["id"]
    assert await built_state(store, TENANT) == (upto, False)
    # a write below upto is listed as stale, one above is left to a later chunk
    below, above = body(BUILD_CHUNK - 3), body(5 * BUILD_CHUNK + 1)
    assert below["id"] < upto < above["id"]
    await store.create(TENANT, SECURE_SCORES, below)
    await store.create(TENANT, SECURE_SCORES, above)
    assert await stale(store, TENANT) == {below["id"]}
    covered = [d for d in docs if d["id"] <= upto]
    assert await item_rows(store, TENANT) == derived(covered)
    # a deletion above upto and an update below it
    await store.delete(TENANT, SECURE_SCORES, docs[-1]["id"])
    await store.update(TENANT, SECURE_SCORES, below["id"],
                       lambda d: {**d, "controlScores": [{"controlName": "new", "score": 1.5}]})
    await build_item_rows(store, TENANT)
    await assert_exact(store, TENANT, await stored_docs(store, TENANT))
    assert ("new", 1.5) in {(r[4], r[6]) for r in await item_rows(store, TENANT)}


async def test_writes_of_another_worker_during_a_build_are_kept(store: Store) -> None:
    """Another store on the same database writes while this one builds, chunk by chunk;
    every row is right at the end (PostgreSQL: the chunk's lock orders them)."""
    for n in range(0, 8 * BUILD_CHUNK, 2):
        await store.create(TENANT, SECURE_SCORES, body(n))
    other = twin(store)
    await other.open()
    try:
        def controls(n: int) -> Any:
            def change(d: dict[str, Any]) -> dict[str, Any]:
                return {**d, "controlScores": [{"controlName": f"u{n}", "score": float(n)}]}
            return change

        async def writes(again: int = 0) -> None:
            for n in range(1, 8 * BUILD_CHUNK, 5):  # odd and even ids, all over the range
                await other.create(TENANT, SECURE_SCORES,
                                   body(n + 10_000 + again if n % 2 else n + 1 + again))
                updated = f"{TENANT}_{(n * 3) % 400 // 2 * 2:05d}"  # an even one: created above
                await other.update(TENANT, SECURE_SCORES, updated, controls(n))
                if n % 3 == 0:
                    gone = f"{TENANT}_{(n * 7) % 400 // 2 * 2:05d}"
                    await other.delete(TENANT, SECURE_SCORES, gone)
                await asyncio.sleep(0)

        await asyncio.gather(build_item_rows(store, TENANT), writes())
        await other.create(TENANT, SECURE_SCORES, body(99_999))  # after: listed as stale
        assert body(99_999)["id"] in await stale(store, TENANT)
        # a refresh while the other worker writes (PostgreSQL: the chunk's lock orders them)
        await asyncio.gather(refresh(store, TENANT), writes(again=20_000))
    finally:
        await other.close()
    assert (await built_state(store, TENANT) or (None, False))[1]
    await assert_exact(store, TENANT, await stored_docs(store, TENANT))
    assert any(r[4].startswith("u") for r in await item_rows(store, TENANT))


async def test_the_bulk_loader_and_the_state_store_keep_the_rows(store: Store) -> None:
    for n in range(30):
        await store.create(TENANT, SECURE_SCORES, body(n))
    await build_item_rows(store, TENANT)
    url = url_of(store)

    def load() -> None:  # graphsec seed: new documents and a changed one, upserted
        bulk = open_bulk(url, ENTITY_SETS)  # (its own event loop, hence a thread)
        try:
            changed = {**body(3), "controlScores": [{"controlName": "bulk", "score": 2.0}]}
            bulk.write(SECURE_SCORES, [body(n) for n in range(30, 40)] + [changed])
        finally:
            bulk.close()

    await asyncio.to_thread(load)
    assert len(await stale(store, TENANT)) == 11
    await assert_exact(store, TENANT, await stored_docs(store, TENANT))
    assert ("bulk", 2.0) in {(r[4], r[6]) for r in await item_rows(store, TENANT)}
    state = open_state(url, ENTITY_SETS)
    try:  # an export imported again, then the tenant reset
        entries = [dataclasses.replace(e, doc=orjson.loads(e.data))
                   async for page in state.export(TENANT) for e in page]
        assert await state.upsert(entries) == len(entries)
        await assert_exact(store, TENANT, await stored_docs(store, TENANT))
        await state.reset(TENANT)
    finally:
        await state.close()
    assert await item_rows(store, TENANT) == set()
    await store.create(TENANT, SECURE_SCORES, body(7))  # complete stays complete
    assert await stale(store, TENANT) == {body(7)["id"]}
    await assert_exact(store, TENANT, [body(7)])


def test_sqlite_has_a_trigger_for_deletes_only(tmp_path: Path) -> None:
    """SQLite pays for a trigger after an insert or an update on every such write, whatever it
    does (it copies the row for it): the writers list what they write as stale
    (``items.Written``, the tests above), and only deletes have a trigger."""
    store = SQLiteStore(tmp_path / "t.db", ENTITY_SETS)
    store.open_sync()
    try:
        triggers = {r[0] for r in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert triggers == {f"tr_{ITEMS}_delete"}
    finally:
        asyncio.run(store.close())


def test_item_row_builds_is_a_setting_and_zero_turns_them_off(tmp_path: Path) -> None:
    env = {"GRAPHSEC_HOME": str(tmp_path)}
    assert Settings.from_env(env).item_row_builds == 4
    settings = Settings.from_env({**env, "GRAPHSEC_ITEM_ROW_BUILDS": "0"})
    assert Settings.from_env(settings.environ()).item_row_builds == 0  # reaches the workers
    store = create_store(settings)
    assert isinstance(store, SQLiteStore)
    for bad in ("-1", "65", "many"):
        with pytest.raises(SettingsError, match="GRAPHSEC_ITEM_ROW_BUILDS"):
            Settings.from_env({**env, "GRAPHSEC_ITEM_ROW_BUILDS": bad})

    async def run() -> None:
        await store.open()
        try:
            await store.create(TENANT, SECURE_SCORES, body(1))
            et = store.tables["secureScores"]
            for _ in range(3):  # nothing starts, nothing is read as rows
                assert store.items.ready(TENANT, et, ANY) == frozenset()
                await store.items.settled()
            assert await built_state(store, TENANT) is None
        finally:
            await store.close()

    asyncio.run(run())


async def test_a_build_that_makes_most_of_the_table_vacuums_it(store: Store) -> None:
    """PostgreSQL: the new rows get statistics and become all-visible at once (index-only
    scans), not a minute later when autovacuum comes; a tenant's rows that are a small part
    of the table leave it to autovacuum. (SQLite has no such step: its plans of the item rows
    need no statistics, tests/storage/test_plans.py.)"""
    if not isinstance(store, PostgresStore):
        assert store.items._finished is None  # type: ignore[attr-defined]
        return
    for n in range(60):
        await store.create(TENANT, SECURE_SCORES, body(n))
    await store.create(OTHER, SECURE_SCORES, body(1, OTHER))
    it = store.tables["secureScores"].items["controlScores"]
    await build_item_rows(store, TENANT)
    async with store.pool.acquire() as conn:
        vacuums = await conn.fetchval(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = $1", ITEMS)
        tuples = await conn.fetchval("SELECT reltuples FROM pg_class WHERE relname = $1", ITEMS)
    assert vacuums >= 1
    assert tuples == 180  # 60 scores of 3 items: analysed
    assert not await store._items_built(it, OTHER)  # 3 rows of 183: autovacuum's


async def test_lambdas_that_arrive_together_start_one_build(store: Store) -> None:
    """Requests that find a tenant's rows missing at the same moment (each waits for its read
    of ``item_rows_built``) start one build between them, which ends cleanly."""
    for n in range(3 * BUILD_CHUNK):
        await store.create(TENANT, SECURE_SCORES, body(n))
    items = store.items  # type: ignore[attr-defined]
    et = store.tables["secureScores"]  # type: ignore[attr-defined]
    started: list[Any] = []
    create_task = asyncio.get_running_loop().create_task

    def spy(coro: Any, **kw: Any) -> Any:
        task = create_task(coro, **kw)
        started.append(task)
        return task

    asyncio.get_running_loop().create_task = spy  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(items.ready(TENANT, et, ANY) for _ in range(8)))
    finally:
        asyncio.get_running_loop().create_task = create_task  # type: ignore[method-assign]
    assert len([t for t in started if t.get_name().startswith("graphsec-items")]) == 1
    await items.settled()
    assert all(t.done() and t.exception() is None for t in started)
    await assert_exact(store, TENANT, await stored_docs(store, TENANT))


async def test_an_update_that_leaves_the_collection_leaves_its_rows(store: Store) -> None:
    """A PATCH of ``currentScore`` does not list the score as stale (the same rows stay, with
    their physical ids); one that changes ``controlScores`` does, and its refresh rewrites
    them."""
    for n in range(5):
        await store.create(TENANT, SECURE_SCORES, body(n))
    await build_item_rows(store, TENANT)
    target = body(2)["id"]

    async def physical() -> set[Any]:
        if isinstance(store, SQLiteStore):
            sql = f"SELECT rowid FROM {ITEMS} WHERE parent_id = ?"
            return {r[0] for r in store.conn.execute(sql, (target,))}
        assert isinstance(store, PostgresStore)
        async with store.pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT ctid::text FROM {ITEMS} WHERE parent_id = $1",
                                    target)
        return {r[0] for r in rows}

    first = await physical()
    assert len(first) == 3
    await store.update(TENANT, SECURE_SCORES, target, lambda d: {**d, "currentScore": 1.5})
    assert await physical() == first
    assert await stale(store, TENANT) == set()
    await store.update(TENANT, SECURE_SCORES, target, lambda d: {
        **d, "controlScores": [*d["controlScores"], {"controlName": "more", "score": 2.0}]})
    assert await stale(store, TENANT) == {target}
    assert await physical() == first  # the write lists it; the refresh rewrites its rows
    await assert_exact(store, TENANT, await stored_docs(store, TENANT))
    assert len(await physical()) == 4


async def test_a_write_lists_its_document_and_a_lambda_reads_it_then_refreshes(
        store: Store) -> None:
    """After a build, a write adds one row to the stale list and none to the item table; a
    lambda's answer counts the stale documents from their JSON, and starts the refresh that
    makes their rows (one per tenant within ``REFRESH_SECONDS``)."""
    for n in range(20):
        await store.create(TENANT, SECURE_SCORES, body(n))
    await build_item_rows(store, TENANT)
    items = store.items  # type: ignore[attr-defined]
    await items.settled()  # (the build's last lambda started a refresh: nothing to do)
    before = await item_rows(store, TENANT)
    new = {**body(100), "controlScores": [{"controlName": "fresh", "score": 9.0}]}
    await store.create(TENANT, SECURE_SCORES, new)
    await store.update(TENANT, SECURE_SCORES, body(4)["id"], lambda d: {
        **d, "controlScores": [{"controlName": "fresh", "score": 3.0}]})
    await store.delete(TENANT, SECURE_SCORES, body(5)["id"])
    assert await stale(store, TENANT) == {new["id"], body(4)["id"]}
    assert await item_rows(store, TENANT) == {r for r in before if r[1] != body(5)["id"]}
    items._refreshed.clear()  # (so that the next lambda starts one)
    pair = (TENANT, ITEMS)
    query = ListQuery(order=(OrderKey(("id",)),), limit=10, count=True, filter=parse_filter(
        "controlScores/any(c: c/controlName eq 'fresh' and c/score ge 2)", SECURE_SCORE))
    page = await store.list(TENANT, SECURE_SCORES, query)
    assert sorted(orjson.loads(d)["id"] for d in page.docs) == [body(4)["id"], new["id"]]
    assert page.count == 2
    assert reads_item_rows(store, TENANT, "controlScores/any(c: c/score ge 2)")
    started = items._refreshed[pair]  # the read started a refresh
    await items.settled()
    await store.create(TENANT, SECURE_SCORES, body(101))
    await store.list(TENANT, SECURE_SCORES, query)
    assert items._refreshed[pair] == started  # not another one within REFRESH_SECONDS
    assert await stale(store, TENANT) == {body(101)["id"]}
    await store.delete(TENANT, SECURE_SCORES, body(101)["id"])
    await refresh(store, TENANT)
    assert await stale(store, TENANT) == set()
    assert await item_rows(store, TENANT) == derived(await stored_docs(store, TENANT))
    page = await store.list(TENANT, SECURE_SCORES, query)
    assert sorted(orjson.loads(d)["id"] for d in page.docs) == [body(4)["id"], new["id"]]
    none = ListQuery(order=(OrderKey(("id",)),), limit=10, count=True, filter=parse_filter(
        "controlScores/all(c: c/controlName eq 'fresh')", SECURE_SCORE))
    page = await store.list(TENANT, SECURE_SCORES, none)
    assert page.count == 2
