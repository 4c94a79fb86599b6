"""GETs by id on PostgreSQL through asyncpg's public API: a connection of their own, one
prepared statement per entity set, the keys as one parameter.

Reads queued during one turn of the event loop go out together at the start of the next, as
one ``PreparedStatement.fetch`` of the statement every reader runs
(:func:`graphsec.storage.postgres.reads.probe_sql`): the keys are one ``jsonb`` parameter
encoded by orjson in C (asyncpg's codec sees one string, not an array to check element by
element), each statement is prepared once per connection (``Connection.prepare``, at its first
use there), and each row's future is resolved directly by the one
drainer task of the connection, which no read wakes once it is running. Reads that arrive
while a statement is out wait for the next one: asyncpg sends one statement at a time on a
connection (no pipelining, as its maintainers keep it), so under load the batches grow instead.

The promises are those of every reader (``reads/__init__.py``). A connection is lost when
asyncpg says so (``is_closed()`` before a batch, or the error of one): its reads are sent again
once on a new connection (``ConnectionPool.open_dedicated``), the pool's idle connections are
dropped and the document cache emptied (a restarted server may reuse row versions).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import asyncpg

from graphsec.storage.postgres.cache import BodyCache
from graphsec.storage.postgres.pool import ConnectionPool, connection_lost, unavailable
from graphsec.storage.postgres.reads import (
    ReadRequest,
    answer,
    encode_keys,
    fail_reads,
    held_versions,
    next_batch,
    probe_sql,
    retry_or_fail,
    without_unencodable,
)


def _closed() -> RuntimeError:
    return RuntimeError("the PostgreSQL store is closed")


class PreparedReads:
    """:class:`graphsec.storage.postgres.reads.PointReads` over one connection of its own,
    with a statement prepared once per connection; see the module."""

    own_connection = True

    def __init__(self, pool: ConnectionPool, tables: dict[str, str],
                 cache: BodyCache | None = None) -> None:
        self.pool = pool
        self.cache = cache
        self._loop = asyncio.get_running_loop()  # bound once: each call costs a getpid()
        self._sql = {name: probe_sql(table) for name, table in tables.items()}
        self._prepared: dict[str, Any] = {}
        """The connection's prepared statements (``asyncpg.PreparedStatement``) by SQL text."""
        self._conn: asyncpg.Connection | None = None
        self._queue: deque[ReadRequest] = deque()
        self._sent: list[ReadRequest] = []  # the batch whose statement is out
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False
        self.statements = 0
        """Statements run so far (the tests read it); preparing one runs nothing."""

    async def open(self) -> bool:
        """Connect. Statements are prepared at their first use, just before they run: asyncpg
        ends a preparation with Flush, not Sync, so the server keeps the implicit transaction
        of a prepared statement open (with its tables' locks, blocking any ``ALTER TABLE``
        or ``TRUNCATE``) until the connection's next statement ends it."""
        self._conn = await self.pool.open_dedicated()
        return True

    async def get(self, entity_set: str, tenant: str, entity_id: str) -> bytes | None:
        if self._closed:
            raise _closed()
        future: asyncio.Future[bytes | None] = self._loop.create_future()
        self._queue.append(ReadRequest(entity_set, tenant, entity_id, future))
        if self._drainer is None:  # it starts next turn, with every read queued in this one
            self._drainer = self._loop.create_task(self._drain())
        return await future

    async def close(self) -> None:
        """Close the connection; reads still waiting fail."""
        self._closed = True
        waiting = [*self._sent, *self._queue]
        self._queue.clear()
        fail_reads(waiting, _closed())
        drainer, self._drainer = self._drainer, None
        if drainer is not None:
            drainer.cancel()
            with contextlib.suppress(BaseException):
                await drainer
        conn, self._conn = self._conn, None
        self._prepared.clear()
        if conn is not None:
            conn.terminate()

    async def _prepare(self, conn: asyncpg.Connection, sql: str) -> Any:
        stmt = await conn.prepare(sql)
        self._prepared[sql] = stmt
        return stmt

    async def _drain(self) -> None:
        try:
            while self._queue and not self._closed:
                conn = await self._connection()
                if conn is None:  # none could be opened: the reads waiting have failed
                    continue
                batch = next_batch(self._queue)
                if batch:
                    await self._run(conn, batch)
        finally:
            if self._drainer is asyncio.current_task():
                self._drainer = None

    async def _connection(self) -> asyncpg.Connection | None:
        """The reader's connection, a new one if it was lost; None (and the reads waiting
        failed) if none can be opened."""
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        if conn is not None:
            self._lose()
        try:
            conn = await self.pool.open_dedicated()
        except Exception as exc:  # nothing to send on: the waiting reads get the error
            waiting = list(self._queue)
            self._queue.clear()
            fail_reads(waiting, unavailable(exc) if connection_lost(exc) else exc)
            return None
        if self._closed:
            conn.terminate()
            return None
        self._conn = conn
        return conn

    def _lose(self) -> None:
        """The connection went (a restart, a failover, a network fault)."""
        conn, self._conn = self._conn, None
        self._prepared.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()
        self.pool.discard_idle()  # a restarted server has closed them all; empties the cache

    async def _run(self, conn: asyncpg.Connection, batch: list[ReadRequest]) -> None:
        now = time.monotonic()
        held = held_versions(self.cache, batch, now)
        keys = encode_keys(batch, [None if h is None else h[0] for h in held])
        if keys is None:  # a str orjson refuses (a lone surrogate) names no stored entity
            batch = without_unencodable(batch)
            held = held_versions(self.cache, batch, now)
            keys = encode_keys(batch, [None if h is None else h[0] for h in held])
            if not batch or keys is None:
                return
        sql = self._sql[batch[0].entity_set]
        self._sent = batch
        try:
            stmt = self._prepared.get(sql)
            if stmt is None:  # not prepared on this connection yet, or refused last time
                stmt = await self._prepare(conn, sql)
            self.statements += 1
            rows = await stmt.fetch(keys)
        except BaseException as exc:
            if connection_lost(exc):
                self._lose()
                retry_or_fail(self._queue, batch, exc)
            else:  # refused (the connection stays usable): prepared anew next time
                self._prepared.pop(sql, None)
                fail_reads(batch, exc)
                if not isinstance(exc, Exception):
                    raise
            return
        finally:
            self._sent = []
        answer(self.cache, batch, held, rows)
