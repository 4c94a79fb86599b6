"""The PostgreSQL store: asyncpg with graphsec's own small connection pool (``pool.py``).

asyncpg is used directly (no ORM session on the hot path): measured on this machine kind,
``bench/pg_driver.py`` read one row by primary key ~1.3–1.6× faster than psycopg 3's async pool.
SQLAlchemy Core builds every statement, compiled for the asyncpg dialect (``$n`` parameters).
Every read is one statement, one round trip: the pool does not reset sessions (graphsec keeps
no session state), and ``$count=true`` rides in the page's statement.

``doc`` is ``jsonb`` here (for ``$filter``), which does not keep key order; beside it ``body``
holds the canonical JSON as bytes, which reads serve as they are (migrations 0002 and 0003:
re-encoding every row from jsonb was half of a list's time in the benchmark's profile).

Documents already read are kept by row version (``cache.py``, ``versions.py``): a page is read
as ids and versions, and a GET sends the version it holds, so the database sends only bodies
that changed.

An update reads the document with its row version and writes the new one ``WHERE xmin = ``
that version, with the history entries it pushes out appended by the same statement: two
statements, no transaction, one round trip each (``BEGIN``, ``SELECT … FOR UPDATE``,
``UPDATE``, the entries, ``COMMIT`` were five). When another writer came between, the row's
version changed, nothing was written, and the update starts again from the read; after
``OPTIMISTIC_TRIES`` such tries it runs as ``SELECT … FOR UPDATE`` then ``UPDATE`` in one
transaction, where concurrent writers of one entity queue on its row lock. Either way none of
their changes is lost.

Every statement runs within ``statement_timeout_ms`` (PostgreSQL's ``statement_timeout`` on
every connection, ``pool.py``). A statement stopped by it is 504 ``GatewayTimeout``, for
reads and writes alike (a write's transaction is rolled back); it is a statement the database
refused, so it is neither sent again nor taken for a lost connection.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Select, column, select, table
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from graphsec.errors import BadRequest
from graphsec.odata.query import ListQuery
from graphsec.schema.types import EntitySet
from graphsec.storage import migrate
from graphsec.storage.base import (
    Admit,
    AppRegistration,
    Change,
    Changed,
    ConnectionUse,
    Page,
    changed,
)
from graphsec.storage.budget import out_of_time
from graphsec.storage.postgres import health
from graphsec.storage.postgres.cache import BodyCache
from graphsec.storage.postgres.inserts import GroupInsert, batch_insert_sql
from graphsec.storage.postgres.pool import ConnectionPool, connection_lost, unavailable
from graphsec.storage.postgres.reads import PointReads
from graphsec.storage.postgres.reads.batch import BatchReads
from graphsec.storage.postgres.reads.prepared import PreparedReads
from graphsec.storage.postgres.versions import (
    VersionedStatements,
    bodies_by_version,
    versioned_writes,
)
from graphsec.storage.sql.items import (
    BUILDS,
    NONE_READY,
    ItemRows,
    build_from,
    build_step,
    compiled_builds,
    refresh_step,
)
from graphsec.storage.sql.listing import next_keys, split_page
from graphsec.storage.sql.registrations import from_row, insert_values, registration_statements
from graphsec.storage.sql.statements import (
    Compiled,
    conflict,
    encode_doc,
    fixed_statements,
    row_values,
)
from graphsec.storage.sql.tables import EntityTable, ItemTable, build_tables

DIALECT = "postgresql"

log = logging.getLogger("graphsec.storage")

OPTIMISTIC_TRIES = 3
"""Updates by row version tried before an update takes the row's lock."""

_LOCK = object()
"""An update by row version that did not write: take the lock."""

REVISION: Select[Any] = select(column("version_num")).select_from(table("alembic_version"))
"""The schema's revision, as Alembic records it."""


READERS: dict[str, Callable[[ConnectionPool, dict[str, str], BodyCache | None], PointReads]] = {
    "prepared": PreparedReads,
    "batch": BatchReads,
}
"""The readers by id a store can use, by ``Settings.pg_reads`` (``reads/__init__.py``)."""


class SchemaBehind(RuntimeError):
    """The database's schema is older than this graphsec; ``graphsec db upgrade`` fixes it."""


class PostgresStore:
    """:class:`graphsec.storage.base.Store` on PostgreSQL, for the entity sets of the
    catalogue ``entity_sets``."""

    def __init__(self, url: str, entity_sets: tuple[EntitySet, ...], *, pool_size: int = 10,
                 cache_bytes: int = 64 * 2**20, reads: str = "prepared",
                 statement_timeout_ms: int = 10_000, item_row_builds: int = BUILDS) -> None:
        self.url = url
        self.pool_size = pool_size
        self.statement_timeout_ms = statement_timeout_ms
        """How long any statement may run before PostgreSQL stops it (0: no limit)."""
        self.reads = reads
        """Which reader serves reads by id (a key of :data:`READERS`); where it cannot open,
        ``batch``."""
        if reads not in READERS:
            raise ValueError(f"no reader {reads!r}: one of {', '.join(READERS)}")
        self.cache = BodyCache(cache_bytes) if cache_bytes > 0 else None
        """Documents by row version; None when ``cache_bytes`` is 0."""
        self.metadata, self.tables = build_tables(entity_sets)
        self._dialect = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
        self._pool: ConnectionPool | None = None
        self._reads: PointReads | None = None
        self._plain: dict[tuple[str, str], Compiled] = {}
        self._statements = VersionedStatements(self._dialect, DIALECT)
        self._fetch = {name: Compiled(bodies_by_version(et), self._dialect)
                       for name, et in self.tables.items()}
        for name, et in self.tables.items():
            for op, stmt in (fixed_statements(et, DIALECT) | versioned_writes(et)).items():
                self._plain[(name, op)] = Compiled(stmt, self._dialect)
        self._registrations = {op: Compiled(stmt, self._dialect) for op, stmt
                               in registration_statements(self.metadata).items()}
        self._revision_sql = Compiled(REVISION, self._dialect).sql
        self._inserts = {
            name: GroupInsert(lambda: self.pool, batch_insert_sql(et, self._dialect),
                              functools.partial(conflict, et),
                              lambda exc: _write_failed(exc, self.pool))
            for name, et in self.tables.items()}
        """Creates, batched by entity set (``inserts.py``)."""
        quote = self._dialect.identifier_preparer.quote
        self._builds = compiled_builds(self.tables, DIALECT,
                                       lambda stmt: Compiled(stmt, self._dialect))
        self._locks = {name: f"LOCK TABLE {quote(et.table.name)} IN SHARE ROW EXCLUSIVE MODE"
                       for name, et in self.tables.items()}
        self.items = ItemRows(self._build_chunk, self._items_complete, item_row_builds,
                              self._items_built, self._refresh_chunk)
        """The item rows of collections lambdas filter on (``storage/sql/items.py``)."""

    async def open(self) -> None:
        """Connect; refuse to serve a schema that is not at the newest migration."""
        if self._pool is not None:
            return
        pool = ConnectionPool(self.url, self.pool_size, on_lost=self._server_changed,
                              statement_timeout_ms=self.statement_timeout_ms)
        await pool.open()
        async with pool.acquire() as conn:
            try:
                revision = await conn.fetchval(self._revision_sql)
            except asyncpg.UndefinedTableError:
                revision = None
        if revision != migrate.head():
            await pool.close()
            raise SchemaBehind(
                f"the database schema is at revision {revision or '(none)'}, this graphsec "
                f"needs {migrate.head()}: run `graphsec db upgrade --database <url>` first"
            )
        self._pool = pool
        tables = {name: et.table.name for name, et in self.tables.items()}
        reader = READERS[self.reads](pool, tables, self.cache)
        try:
            opened = await reader.open()
        except BaseException:
            await pool.close()
            self._pool = None
            raise
        self._reads = reader if opened else BatchReads(pool, tables, self.cache)

    async def readiness(self, seconds: float) -> str | None:
        return await health.readiness(self._pool, self._revision_sql, self.url, seconds)

    def connection_use(self) -> ConnectionUse:
        """The pool's connections (a reader by id's own connection is not counted)."""
        return health.connection_use(self._pool)

    def _server_changed(self) -> None:
        """Connections were lost or reach a server that restarted: row versions seen before
        may be reused there (transactions lost in a crash or an asynchronous failover give
        their ids out again), so nothing held is trusted any more."""
        if self.cache is not None:
            self.cache.clear()

    async def close(self) -> None:
        await self.items.close()
        for inserts in self._inserts.values():
            await inserts.close()
        reads, self._reads = self._reads, None
        if reads is not None:
            await reads.close()
        if self.cache is not None:
            self.cache.clear()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> ConnectionPool:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL store is not open")
        return self._pool

    def _stmt(self, name: str, op: str, values: dict[str, Any]) -> tuple[str, list[Any]]:
        c = self._plain[(name, op)]
        return c.sql, c.params(values)

    async def create(self, tenant: str, entity_set: EntitySet, doc: dict[str, Any],
                     admit: Admit | None = None) -> bytes:
        et = self.tables[entity_set.name]
        data = _encode(doc, admit)
        values = row_values(et, tenant, doc["id"], doc, data, DIALECT)
        await self._inserts[entity_set.name].insert(
            tenant, doc["id"], [values[c.name] for c in et.table.columns])
        return data

    async def get(self, tenant: str, entity_set: EntitySet, entity_id: str) -> bytes | None:
        if self._reads is None:
            raise RuntimeError("the PostgreSQL store is not open")
        if "\x00" in entity_id or "\x00" in tenant:  # PostgreSQL text cannot hold it, so no
            return None  # such entity exists; sent, it would fail every read batched with it
        try:
            return await self._reads.get(entity_set.name, tenant, entity_id)
        except asyncpg.QueryCanceledError:  # a batch of probes by key cannot take that long,
            raise out_of_time(self.statement_timeout_ms) from None  # but say so if it does

    async def update(
        self, tenant: str, entity_set: EntitySet, entity_id: str, change: Change,
        admit: Admit | None = None,
    ) -> bytes | None:
        name = entity_set.name
        et = self.tables[name]
        if "\x00" in entity_id:
            return None  # no such entity can exist (see get)
        key = {"tenant": tenant, "id": entity_id}
        held = None if self.cache is None else self.cache.held((name, tenant, entity_id),
                                                                time.monotonic())
        if held is not None:
            try:
                outcome = await self._update_held(name, et, key, change, admit, *held)
            except Exception as exc:
                raise _write_failed(exc, self.pool) from None
            if isinstance(outcome, bytes):
                return outcome
        for _ in range(OPTIMISTIC_TRIES):
            try:
                outcome = await self._update_by_version(name, et, key, change, admit)
            except Exception as exc:
                raise _write_failed(exc, self.pool) from None
            if outcome is None or isinstance(outcome, bytes):
                return outcome
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                sql, params = self._stmt(name, "get_for_update", key)
                body = await conn.fetchval(sql, *params)
                if body is None:
                    return None
                result, data = _applied(change, body, admit)
                sql, params = self._stmt(name, "update", row_values(
                    et, tenant, entity_id, result.doc, data, DIALECT))
                await conn.execute(sql, *params)
                if result.history:
                    append = self._plain[(name, "append_history")]
                    await conn.executemany(append.sql, [
                        append.params(key | {"entry": encode_doc(e).decode()})
                        for e in result.history])
        except Exception as exc:
            raise _write_failed(exc, self.pool) from None
        return data

    async def _update_held(self, name: str, et: EntityTable, key: dict[str, Any],
                           change: Change, admit: Admit | None, version: int,
                           body: bytes) -> bytes | object:
        """An update in one statement, from the document the cache holds at ``version``
        (``cache.py``): written only where the row still has that version, so the result is
        the one a read would have given. :data:`_LOCK` when it did not write (the row has
        moved on), and also when the change fails on the held document: that is then decided
        on a document read anew, as an update without a held one is."""
        try:
            result, data = _applied(change, body, admit)
        except Exception:  # whatever it is, the stored document decides it
            return _LOCK
        async with self.pool.acquire() as conn:
            written = await self._write_version(conn, name, et, key, result, data, version)
        return data if written else _LOCK

    async def _update_by_version(self, name: str, et: EntityTable, key: dict[str, Any],
                                 change: Change, admit: Admit | None) -> bytes | object | None:
        """An update in two statements, no transaction: read the document and its version,
        write the new one where the row still has that version (with the entries it pushes
        out to the history table, in the same statement). :data:`_LOCK` when that wrote
        nothing: another writer came between; the caller tries again."""
        async with self.pool.acquire() as conn:
            sql, params = self._stmt(name, "get_versioned", key)
            row = await conn.fetchrow(sql, *params)
            if row is None:
                return None
            result, data = _applied(change, row[0], admit)
            written = await self._write_version(conn, name, et, key, result, data, row[1])
        return data if written else _LOCK

    async def _write_version(self, conn: asyncpg.Connection, name: str, et: EntityTable,
                             key: dict[str, Any], result: Changed, data: bytes,
                             version: int) -> bool:
        """Write ``result`` where the row still has ``version`` (and the history entries it
        pushes out, in the same statement); whether it wrote. The new version and document go
        to the cache, so that the next read or update of the entity need not fetch them."""
        values = row_values(et, key["tenant"], key["id"], result.doc, data, DIALECT)
        values["version"] = version
        if result.history:
            values["entries"] = [encode_doc(e).decode() for e in result.history]
        op = "update_versioned_history" if result.history else "update_versioned"
        sql, params = self._stmt(name, op, values)
        new_version = await conn.fetchval(sql, *params)
        if new_version is None:
            return False
        if self.cache is not None:
            self.cache.put((name, key["tenant"], key["id"]), new_version, data)
        return True

    async def delete(self, tenant: str, entity_set: EntitySet, entity_id: str) -> bool:
        if "\x00" in entity_id:
            return False  # no such entity can exist (see get)
        key = {"tenant": tenant, "id": entity_id}
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                sql, params = self._stmt(entity_set.name, "delete", key)
                status: str = await conn.execute(sql, *params)
                if status != "DELETE 0":
                    sql, params = self._stmt(entity_set.name, "delete_history", key)
                    await conn.execute(sql, *params)
        except Exception as exc:
            raise _write_failed(exc, self.pool) from None
        return status != "DELETE 0"

    async def _query(self, sql: str, params: list[Any]) -> list[asyncpg.Record]:
        """A read; sent again, once, on a fresh connection when the connection was lost (a
        server restart closes every pooled connection), then a 503."""
        for attempt in range(2):
            try:
                rows: list[asyncpg.Record] = await self.pool.fetch(sql, *params)
                return rows
            except asyncpg.QueryCanceledError:
                raise out_of_time(self.statement_timeout_ms) from None
            except asyncpg.DataError as exc:
                # SQLSTATE class 22: the client's $filter computed something the database
                # refuses (a float overflow, say), where SQLite would give infinity
                raise BadRequest(f"The $filter cannot be evaluated on the stored data: {exc}. "
                                 "Narrow the expression (e.g. avoid dividing by tiny values)."
                                 ) from None
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                if attempt:
                    raise unavailable(exc) from None
                self.pool.discard_idle()
        raise AssertionError("unreachable")

    async def _ready(self, tenant: str, et: EntityTable, query: ListQuery) -> frozenset[str]:
        """The collections whose item rows the query's lambdas may read (``items.py``)."""
        if not et.items or query.filter is None:
            return NONE_READY
        ready = self.items.ready(tenant, et, query.filter)
        return ready if isinstance(ready, frozenset) else await ready

    async def list(self, tenant: str, entity_set: EntitySet, query: ListQuery) -> Page:
        ready = await self._ready(tenant, self.tables[entity_set.name], query)
        if self.cache is not None:
            page = await self._list_versions(tenant, entity_set, query, self.cache, ready)
            if page is not None:
                return page
        return await self._list_bodies(tenant, entity_set, query, ready)

    async def _list_versions(self, tenant: str, entity_set: EntitySet, query: ListQuery,
                             cache: BodyCache, ready: frozenset[str]) -> Page | None:
        """The page as ids and versions, its documents from the cache and, for those not held,
        fetched by id and version; None when a row changed between the two statements."""
        name = entity_set.name
        et = self.tables[name]
        rows = await self._query(*self._statements.versions_page(et, tenant, query, ready))
        extra = 1 if query.count else 0
        head = rows[:query.limit]
        now = time.monotonic()
        held = [cache.get((name, tenant, r[0]), r[1], now) for r in head]
        missing = [i for i, body in enumerate(held) if body is None]
        if missing:
            fetch = self._fetch[name]
            fetched = await self._query(fetch.sql, fetch.params({
                "tenant": tenant, "ids": [head[i][0] for i in missing],
                "versions": [head[i][1] for i in missing]}))
            if len(fetched) != len(missing):
                return None  # a row was rewritten or deleted since the page was read
            for n, body in fetched:
                i = missing[int(n) - 1]
                held[i] = body
                cache.put((name, tenant, head[i][0]), head[i][1], body)
        docs = [body for body in held if body is not None]
        total = None
        if query.count:
            total = int(rows[0][-1]) if rows else await self._count(et, tenant, query, ready)
        return Page(docs, next_keys(rows, query.limit, 2, extra), total)

    async def _list_bodies(self, tenant: str, entity_set: EntitySet, query: ListQuery,
                           ready: frozenset[str]) -> Page:
        et = self.tables[entity_set.name]
        if not query.count:
            rows = await self._query(*self._statements.page(et, tenant, query, None, ready))
            return Page(*split_page(rows, query.limit))
        # one round trip for the page and its count (each costs about as much as the query)
        rows = await self._query(*self._statements.counted_page(et, tenant, query, None, ready))
        docs, next_after = split_page(rows, query.limit, extra=1)
        total = int(rows[0][-1]) if rows else await self._count(et, tenant, query, ready)
        return Page(docs, next_after, total)

    async def count(self, tenant: str, entity_set: EntitySet, query: ListQuery) -> int:
        et = self.tables[entity_set.name]
        return await self._count(et, tenant, query, await self._ready(tenant, et, query))

    async def _count(self, et: EntityTable, tenant: str, query: ListQuery,
                     ready: frozenset[str]) -> int:
        rows = await self._query(*self._statements.total(et, tenant, query, ready))
        return int(rows[0][0])

    async def _items_complete(self, it: ItemTable, tenant: str) -> bool:
        if "\x00" in tenant:
            return False  # PostgreSQL text cannot hold it: no such tenant has rows
        state = self._builds[it.table.name].state
        rows = await self._query(state.sql, state.params({"tenant": tenant}))
        return bool(rows and rows[0][1])

    async def _items_built(self, it: ItemTable, tenant: str) -> bool:
        """After a build: ``VACUUM (ANALYZE)`` the item table when the tenant's rows are a
        tenth of it or more (or it was never analysed), as ``graphsec seed`` analyses what it
        loaded. Autovacuum would get there a minute later; until then the new rows have no
        statistics (the planner guesses one row) and are not all-visible, so that every
        index-only scan of them reads the heap: the bench's lambda page and count took 0.77 ms
        before and 0.41 ms after."""
        table = self._dialect.identifier_preparer.quote(it.table.name)
        try:
            async with self.pool.acquire() as conn:
                tuples = await conn.fetchval(
                    "SELECT reltuples FROM pg_class WHERE oid = $1::regclass", it.table.name)
                rows = await conn.fetchval(
                    f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant)
                if tuples is not None and tuples >= 0 and rows < 0.1 * tuples:
                    return False
                await conn.execute(f"VACUUM (ANALYZE) {table}")
        except Exception as exc:  # autovacuum will do it: nothing depends on it
            log.warning("vacuuming %s after a build failed: %s", it.table.name, exc)
            return False
        return True

    async def _build_chunk(self, et: EntityTable, it: ItemTable, tenant: str) -> bool:
        """One transaction of a tenant's item rows (``items.py``). ``SHARE ROW EXCLUSIVE``
        waits for the writes of the entity table in flight to commit and holds new ones until
        this commits: a chunk reads every committed document, and a write after it sees the
        new ``upto`` in its trigger. It conflicts with itself, so two workers' chunks of one
        table take turns."""
        c = self._builds[it.table.name]
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(self._locks[et.entity_set.name])
                after = build_from(await conn.fetchrow(c.state.sql, *c.state.params(
                    {"tenant": tenant})))
                if after is None:
                    return True
                insert, mark = build_step(tenant, after, await conn.fetch(
                    c.next_ids.sql, *c.next_ids.params({"tenant": tenant, "after": after})))
                if insert is not None:
                    await conn.execute(c.insert.sql, *c.insert.params(insert))
                await conn.execute(c.mark.sql, *c.mark.params(mark))
                return bool(mark["complete"])
        except Exception as exc:
            raise _write_failed(exc, self.pool) from None

    async def _refresh_chunk(self, et: EntityTable, it: ItemTable, tenant: str) -> bool:
        """One transaction of a refresh of stale documents' item rows (``items.py``), under
        the build's lock: a write in flight of one of them commits before, and its trigger
        lists it again if it comes after; True once none is left."""
        c = self._builds[it.table.name]
        try:
            async with self.pool.acquire() as conn:
                # most refreshes find nothing stale: one read, no lock
                if not await conn.fetch(c.stale.sql, *c.stale.params({"tenant": tenant})):
                    return True
                async with conn.transaction():
                    await conn.execute(self._locks[et.entity_set.name])
                    step = refresh_step(tenant, await conn.fetch(
                        c.stale.sql, *c.stale.params({"tenant": tenant})))
                    if step is None:
                        return True
                    for statement in (c.unmake, c.remake, c.clear):
                        await conn.execute(statement.sql, *statement.params(step))
                    return False
        except Exception as exc:
            raise _write_failed(exc, self.pool) from None


    # app registrations (graphsec.storage.base.Registrations)

    async def add_registration(self, tenant: str, client_id: str, name: str,
                               secret_sha256: str | None, roles: tuple[str, ...],
                               certificates: tuple[str, ...]) -> None:
        c = self._registrations["insert"]
        values = insert_values(tenant, client_id, name, secret_sha256, roles, certificates)
        try:
            await self.pool.execute(c.sql, *c.params(values))
        except Exception as exc:
            raise _write_failed(exc, self.pool) from None

    async def registration(self, tenant: str, client_id: str) -> AppRegistration | None:
        if "\x00" in tenant or "\x00" in client_id:
            return None  # PostgreSQL text cannot hold it: no such registration exists
        c = self._registrations["get"]
        rows = await self._query(c.sql, c.params({"tenant": tenant, "client_id": client_id}))
        return from_row(rows[0]) if rows else None

    async def registrations(self, tenant: str | None) -> tuple[AppRegistration, ...]:
        if tenant is None:
            c, values = self._registrations["list"], {}
        else:
            c, values = self._registrations["list_tenant"], {"tenant": tenant}
        return tuple(from_row(r) for r in await self._query(c.sql, c.params(values)))

    async def delete_registration(self, tenant: str, client_id: str) -> bool:
        if "\x00" in tenant or "\x00" in client_id:
            return False
        c = self._registrations["delete"]
        try:
            status: str = await self.pool.execute(
                c.sql, *c.params({"tenant": tenant, "client_id": client_id}))
        except Exception as exc:
            raise _write_failed(exc, self.pool) from None
        return status != "DELETE 0"

    async def has_registrations(self, tenant: str) -> bool:
        if "\x00" in tenant:
            return False
        c = self._registrations["any"]
        return bool(await self._query(c.sql, c.params({"tenant": tenant})))


_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
r"""``\u0000`` in JSON text: an escape (an odd number of backslashes before ``u0000``), not a
backslash written as ``\\`` followed by the letters."""


def _encode(doc: dict[str, Any], admit: Admit | None) -> bytes:
    """The document as stored (``encode_doc``), or a 400 when a string in it holds the NUL
    character, which PostgreSQL's text and jsonb cannot store (every write of a document goes
    through here: the write would fail, and with it the other creates of its batch,
    ``inserts.py``)."""
    data = encode_doc(doc, admit)
    if b"\\u0000" in data and _NUL.search(data):
        raise BadRequest("A string in the body holds the NUL character (\\u0000), which "
                         "PostgreSQL cannot store in text; remove it from the value.")
    return data


def _applied(change: Change, body: bytes, admit: Admit | None) -> tuple[Changed, bytes]:
    """What ``change`` makes of the stored document ``body``, and the new document encoded."""
    result = changed(change(orjson.loads(body)))
    return result, _encode(result.doc, admit)


def _write_failed(exc: Exception, pool: ConnectionPool) -> Exception:
    """What a write's failure becomes: a lost connection a 503 (a write is not sent again: it
    may have been committed before the connection went), a statement stopped at the time budget
    a 504 (its transaction rolled back), anything else itself."""
    if isinstance(exc, asyncpg.QueryCanceledError):
        return out_of_time(pool.statement_timeout_ms)
    if not connection_lost(exc):
        return exc
    pool.discard_idle()
    return unavailable(exc)
