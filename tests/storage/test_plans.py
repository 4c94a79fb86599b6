"""The default order's pages come from the default-order index, without a sort, on both backends.

A page that sorts instead reads (and on PostgreSQL decompresses) every row of the tenant before
returning 100 of them: 10× slower at 1,000 scores a tenant. The order and the index are declared
in different places (``schema/security.py``, ``storage/sql/tables.py``), so a change to one can
silently cost the other its plan.

Reads by id on PostgreSQL probe the primary key once per key, however many keys a statement
carries (``storage/postgres/reads/__init__.py``), with each reader.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from itertools import product
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from graphsec.odata.filter import parse_filter
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.sample import Generator
from graphsec.schema.security import (
    ENTITY_SETS,
    SECURE_SCORE,
    SECURE_SCORE_CONTROL_PROFILES,
    SECURE_SCORES,
    USER_SECURITY_PROFILES,
)
from graphsec.schema.types import EntitySet
from graphsec.schema.values import check_body, complete
from graphsec.storage.bulk import open_bulk
from graphsec.storage.postgres import PostgresStore
from graphsec.storage.sql.tables import column_name, filter_indexes
from graphsec.storage.sqlite import SQLiteStore
from tests.conftest import TABLES, _pg, score
from tests.support.items import build_item_rows
from tests.support.plans import plan_nodes
from tests.support.stores import store_for

ORDERED = [es for es in ENTITY_SETS if es.default_order != (("id", False),)]
TENANT_A = "11111111-1111-1111-1111-111111111111"


def named(name: str) -> EntitySet:
    return next(e for e in ENTITY_SETS if e.name == name)


def default_order(name: str) -> tuple[OrderKey, ...]:
    es = named(name)
    return tuple(OrderKey((path,), desc) for path, desc in es.default_order)


async def plan_lines(store: Any, sql: str, params: list[Any]) -> list[str]:
    if isinstance(store, SQLiteStore):
        return [row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    assert isinstance(store, PostgresStore)
    async with store.pool.acquire() as conn, conn.transaction():
        # the test's tables are small enough for a sequential or bitmap scan and a sort to win;
        # what is checked is that the index gives the order (an index scan + sort would show)
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_bitmapscan = off")
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params)
    return plan_nodes(raw)


@pytest.fixture
def seeded(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    store = store_for(backend, tmp_path, request)
    if isinstance(store, SQLiteStore):
        store.open_sync()  # creates the file and its schema (PostgreSQL's is migrated already)
        asyncio.run(store.close())
        url = f"sqlite:///{store.path}"
    else:
        assert isinstance(store, PostgresStore)
        url = store.url
    gen = Generator(4, 600, 20, 150, 3, date(2026, 11, 1))
    gen.set_averages(gen.partial_sums(0, 4))
    writer = open_bulk(url, ENTITY_SETS)
    try:
        for t in gen.tenants:
            writer.write(SECURE_SCORES, list(gen.secure_scores(t)))
            writer.write(SECURE_SCORE_CONTROL_PROFILES, list(gen.control_profiles(t)))
            writer.write(USER_SECURITY_PROFILES, list(gen.user_profiles(t)))
        writer.analyze()
    finally:
        writer.close()
    return store, gen.tenants[0].id


@pytest.mark.parametrize("entity_set", [es.name for es in ORDERED])
async def test_default_order_pages_read_the_index_without_sorting(seeded: Any, entity_set: str) -> None:
    store, tenant = seeded
    await store.open()
    try:
        order = default_order(entity_set)
        size = 10 if entity_set == "secureScoreControlProfiles" else 100  # 20 controls a tenant
        first = ListQuery(order=order, limit=size)
        page = await store.list(tenant, named(entity_set), first)
        assert page.next_after is not None, "the data must span several pages"
        later = ListQuery(order=order, limit=size, after=page.next_after)
        # a later page is a UNION ALL of index ranges, each limited to the page size; only
        # their concatenation (at most ranges × (size + 1) rows) may be sorted
        statements = [store._statements.page]
        if isinstance(store, PostgresStore):  # the body cache's form: ids and row versions
            statements.append(store._statements.versions_page)
        for (query, sorts_allowed), statement in product(((first, 0), (later, 1)), statements):
            sql, params = statement(store.tables[entity_set], tenant, query)
            lines = await plan_lines(store, sql, params)
            assert any(f"ix_{store.tables[entity_set].table.name}_default_order" in line
                       for line in lines), lines
            sorts = [line for line in lines
                     if "TEMP B-TREE" in line or line.startswith(("Sort", "Incremental Sort"))]
            assert len(sorts) <= sorts_allowed, lines
    finally:
        await store.close()


def test_sqlite_plan_check_notices_a_sort(tmp_path: Path) -> None:
    """The check above recognises a sorted plan when it sees one (same reading of the plan)."""
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE t (a, b)")
    conn.execute("CREATE INDEX t_a ON t (a)")
    lines = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM t ORDER BY a DESC, b")]
    assert any("TEMP B-TREE" in line for line in lines), lines


@pytest.mark.parametrize("plan_mode", ["force_generic_plan", "force_custom_plan"])
async def test_each_key_read_by_id_is_a_primary_key_probe_however_many_keys(
        postgres_url: str, pg_reads: str, plan_mode: str) -> None:
    """64 keys on a small table: as a join, the planner chose a hash join over a sequential
    scan of the whole table; the form of the statement each reader runs leaves it only the
    index, whether PostgreSQL plans it for its parameter or once for any."""
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    store = PostgresStore(postgres_url, ENTITY_SETS, pool_size=1, reads=pg_reads)
    await store.open()
    try:
        for i in range(10):
            doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id=f"s{i}"), "create"))
            await store.create(TENANT_A, SECURE_SCORES, doc)
        reads: Any = store._reads
        sql: str = reads._sql[SECURE_SCORES.name]
    finally:
        await store.close()
    keys = orjson.dumps([[TENANT_A, f"s{i % 10}", None] for i in range(64)]).decode()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f"SET plan_cache_mode = {plan_mode}")
        await conn.execute(f"PREPARE probe(jsonb) AS {sql}")
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE probe('{keys}')")
    finally:
        await conn.close()
    nodes = plan_nodes(raw)
    assert "Index Scan secure_scores_pkey" in nodes, nodes
    assert not any(n.startswith(("Seq Scan", "Hash")) for n in nodes), nodes


# ---- the indexes of the properties users filter on (schema ``indexed``, migration 0007) ----


def _literal(value: Any) -> str:
    return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else repr(value)


def _filters(es: EntitySet, docs: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """(index, ``$filter``, whether the page too must read the index) for each index of
    ``es.indexed``, from stored entities' values. The count must always read the index; the
    page only where the filter selects one or two rows (``id``): a value many rows share may
    rightly be found by walking the default order until the page is full."""
    out = []
    for name, (index, _, lowered) in zip(es.indexed, filter_indexes(es), strict=True):
        value = next(d[name] for d in docs if d.get(name) is not None)
        if lowered:  # a string
            out.append((index, f"{name} eq {_literal(value.upper())}", name == "id"))
            out.append((index, f"startswith({name}, {_literal(value[:max(1, len(value) - 1)])})", False))
            if name == "id":
                out.append((index, f"id in ({_literal(docs[0]['id'])}, "
                                   f"{_literal(docs[-1]['id'])})", True))
        else:
            out.append((index, f"{name} ge {value} and {name} le {value}", False))
    return out


@pytest.mark.parametrize("entity_set", [es.name for es in ENTITY_SETS if es.indexed])
async def test_filters_on_indexed_properties_read_their_index(seeded: Any,
                                                              entity_set: str) -> None:
    """The count (and the page, where the filter selects one or two rows) of a filter on each
    property of ``indexed`` read that property's index, on both backends: an index whose
    expression stopped matching the compiled filter's (strings compare as ``lower(…)``) would
    leave it unused, and every such request would read the whole tenant again."""
    store, tenant = seeded
    await store.open()
    try:
        es = named(entity_set)
        et = store.tables[entity_set]
        first = await store.list(tenant, es, ListQuery(order=default_order(entity_set),
                                                       limit=50))
        docs = [orjson.loads(d) for d in first.docs]
        for index, text, page_too in _filters(es, docs):
            query = ListQuery(order=default_order(entity_set), limit=100, count=True,
                              filter=parse_filter(text, es.entity_type))
            page = await store.list(tenant, es, query)
            assert page.count is not None, text
            assert page.count >= 1, text  # the filter selects
            statements = [store._statements.total(et, tenant, query)]
            if page_too:
                statements.append(store._statements.versions_page(et, tenant, query)
                                  if isinstance(store, PostgresStore)
                                  else store._statements.page(et, tenant, query))
            for sql, params in statements:
                lines = await plan_lines(store, sql, params)
                assert any(index in line for line in lines), (text, lines)
    finally:
        await store.close()


def test_every_indexed_property_has_its_index_in_the_migrations(tmp_path: Path) -> None:
    """The schema's ``indexed`` and the migrations agree: a property added to ``indexed``
    without a migration that creates its index would be planned for and never read."""
    from graphsec.storage import migrate

    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    conn = sqlite3.connect(tmp_path / "m.db")
    try:
        for es in ENTITY_SETS:
            made = {r[1]: r[2] for r in conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ?", (es.table,))}
            for index, column, lowered in filter_indexes(es):
                assert index in made, index
                key = f"lower({column})" if lowered else column
                order = ", ".join(column_name(n) for n, _ in es.default_order)
                assert f"(tenant_id, {key}, {order})" in made[index], made[index]
    finally:
        conn.close()


ITEM_FILTERS = {  # each item index, and a lambda over controlScores that reads it
    "ix_secure_scores_control_scores_control_name_score":
        "controlScores/any(c: c/controlName eq {name} and c/score ge {score})",
    "ix_secure_scores_control_scores_score": "controlScores/any(c: c/score ge {score})",
}


async def test_lambdas_on_item_rows_read_their_index(seeded: Any) -> None:
    """Each index of the item rows (migration 0008) is what the count and the page of a lambda
    over ``controlScores`` read, once the tenant's rows are built, on both backends; and every
    index the schema declares is in this test."""
    store, tenant = seeded
    await store.open()
    try:
        et = store.tables[SECURE_SCORES.name]
        declared = {i.name for it in et.items.values() for i in it.table.indexes}
        assert declared == set(ITEM_FILTERS)
        await build_item_rows(store, tenant)
        first = await store.list(tenant, SECURE_SCORES, ListQuery(
            order=default_order(SECURE_SCORES.name), limit=1))
        control = orjson.loads(first.docs[0])["controlScores"][0]
        ready = frozenset({"controlScores"})
        for index, template in ITEM_FILTERS.items():
            text = template.format(name=_literal(control["controlName"]), score=control["score"])
            query = ListQuery(order=default_order(SECURE_SCORES.name), limit=100, count=True,
                              filter=parse_filter(text, SECURE_SCORE))
            page = await store.list(tenant, SECURE_SCORES, query)
            assert page.count is not None
            assert page.count >= 1, text  # the filter selects
            page_sql = (store._statements.versions_page(et, tenant, query, ready)
                        if isinstance(store, PostgresStore)
                        else store._statements.page(et, tenant, query, None, ready))
            count_sql = store._statements.total(et, tenant, query, ready)
            for sql, params in (count_sql, page_sql):
                lines = await plan_lines(store, sql, params)
                assert any(index in line for line in lines), (text, lines)
            # the count is of the items' distinct entities: no entity is looked up but the
            # stale ones, whose items come from their JSON (SQLite: ``sd``; PostgreSQL: in a
            # loop over the stale list)
            lines = await plan_lines(store, *count_sql)
            assert not any(("secure_scores_pkey" in line or "autoindex_secure_scores" in line)
                           and " sd" not in line and "item_rows_stale" not in lines[i - 1]
                           for i, line in enumerate(lines)), (text, lines)
            if isinstance(store, SQLiteStore):  # the page reads the default order and stops
                lines = await plan_lines(store, *page_sql)
                assert any("ix_secure_scores_default_order" in line for line in lines), lines
    finally:
        await store.close()
