"""Concurrent primary-key reads on PostgreSQL, coalesced into one statement per round trip.

A GET by id is one short statement; its cost is the round trip (a send, a wake-up, a receive in
the event loop), not the lookup. Under load, reads that arrive while every pooled connection is
busy wait in a queue, and the next free connection takes the whole queue (up to ``MAX_BATCH``)
in one statement that looks up all their keys through the primary-key index. A lone read is a
batch of one, sent at once: batching adds no delay, it only forms while reads would wait anyway.

Each read gets its own entity or None. A batch is one statement, hence one snapshot: every
read in it sees each write committed before the batch began, as a statement of its own would
have at that moment.

With a :class:`BodyCache`, each key travels with the row version held for it, and the database
sends the body only for rows whose version differs (``pgcache.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable

import asyncpg

from graphsec.storage.pgcache import BodyCache, Key
from graphsec.storage.pgpool import ConnectionPool, connection_lost, unavailable

MAX_BATCH = 256

Read = tuple[str, str, str, "asyncio.Future[bytes | None]", int]
"""entity set, tenant, id, the reader's future, how many times the read was sent already"""


def key_probe_sql(table: str) -> str:
    """One primary-key probe per key ``k``: a LATERAL subquery the planner cannot flatten
    (``OFFSET 0``). As a join, a small table and a batch of 64 keys made it a hash join over a
    sequential scan of the whole table."""
    return (f'CROSS JOIN LATERAL (SELECT s.xmin, s.body FROM {table} AS s '
            f'WHERE s.tenant_id = k.tenant_id COLLATE "C" AND s.id = k.id COLLATE "C" '
            f'OFFSET 0) AS t')


def fail_reads(reads: Iterable[Read], exc: BaseException) -> None:
    """Every read still waiting gets ``exc``."""
    for read in reads:
        if not read[3].done():
            read[3].set_exception(exc)


def retry_or_fail(queue: deque[Read], reads: Iterable[Read], exc: BaseException) -> None:
    """The connection was lost under ``reads``: those sent once go back to the front of
    ``queue``, for a fresh connection; those already retried fail with a 503."""
    waiting = [r for r in reads if not r[3].done()]
    queue.extendleft(reversed([(r[0], r[1], r[2], r[3], r[4] + 1) for r in waiting
                               if r[4] == 0]))
    failed = [r for r in waiting if r[4] > 0]
    if failed:
        fail_reads(failed, unavailable(exc))


def versioned_body(cache: BodyCache | None, key: Key, held: tuple[int, bytes] | None,
                   version: int, body: bytes | None) -> bytes | None:
    """What a versioned read returns for a row found at ``version`` (``body`` sent only when
    that is not the version held): the held document, or the new one, kept in ``cache``; None
    for a row whose body is NULL (not written by graphsec)."""
    if held is not None and version == held[0]:
        if cache is not None:
            cache.hits += 1
        return held[1]
    if body is not None and cache is not None:
        cache.misses += 1
        cache.put(key, version, body)
    return body


def batch_sql(table: str) -> str:
    """The lookup of many (tenant, id) keys; ``$1``/``$2`` are parallel text arrays, and the
    first column says which of them each row answers."""
    return (f'SELECT k.n, t.body FROM unnest($1::text[], $2::text[]) WITH ORDINALITY '
            f'AS k(tenant_id, id, n) {key_probe_sql(table)}')


def versioned_batch_sql(table: str) -> str:
    """:func:`batch_sql` with ``$3``, the version held for each key (NULL for none): each row
    comes with its version, whether that is the one held, and its body only when it is not."""
    return (f'SELECT k.n, t.xmin, (t.xmin = k.held) IS TRUE, '
            f'CASE WHEN t.xmin = k.held THEN NULL ELSE t.body END '
            f'FROM unnest($1::text[], $2::text[], $3::xid[]) WITH ORDINALITY '
            f'AS k(tenant_id, id, held, n) {key_probe_sql(table)}')


class PointReads:
    def __init__(self, pool: ConnectionPool, tables: dict[str, str],
                 cache: BodyCache | None = None) -> None:
        self.pool = pool
        self.cache = cache
        # asyncio.get_running_loop() makes a getpid() system call each time (CPython 3.11): 61
        # of 1,197 samples of the worker's main thread in a py-spy profile of GET by id. A
        # store is opened, and then used, in one event loop.
        self._loop = asyncio.get_running_loop()
        sql = batch_sql if cache is None else versioned_batch_sql
        self._sql = {name: sql(table) for name, table in tables.items()}
        self._queue: deque[Read] = deque()
        self._draining = 0  # counted down as a drainer returns, not when its task is reaped
        self._starting = 0  # drainers that have not taken a batch yet
        self._drainers: set[asyncio.Task[None]] = set()
        self.statements = 0
        """Statements run so far (the tests read it)."""

    async def get(self, entity_set: str, tenant: str, entity_id: str) -> bytes | None:
        future: asyncio.Future[bytes | None] = self._loop.create_future()
        self._queue.append((entity_set, tenant, entity_id, future, 0))
        # a drainer that has not taken its first batch yet will take this read too: start
        # another only when none is on its way (under load, one per statement, not per read)
        if not self._starting and self._draining < self.pool.size:
            self._start_drainer()
        return await future

    def _start_drainer(self) -> None:
        self._draining += 1
        self._starting += 1
        # the loop keeps only weak references to tasks: hold each drainer until it ends
        drainer = self._loop.create_task(self._drain())
        self._drainers.add(drainer)
        drainer.add_done_callback(self._drainers.discard)

    async def close(self) -> None:
        """Nothing of its own to close: its connections are the pool's."""

    def _next_batch(self) -> list[Read]:
        return [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]


    async def _drain(self) -> None:
        starting = True
        try:
            while self._queue:
                try:
                    conn = await self.pool.take()
                except BaseException as exc:  # no connection: the waiting reads get the error
                    if starting:
                        starting = False
                        self._starting -= 1
                    fail_reads(self._next_batch(),
                               unavailable(exc) if connection_lost(exc) else exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                batch = self._next_batch()  # all that queued up while it waited
                if starting:
                    starting = False
                    self._starting -= 1
                healthy = False
                try:
                    if batch:
                        await self._run(conn, batch)
                    healthy = True
                except BaseException as exc:
                    if connection_lost(exc):
                        self.pool.discard_idle()  # a restarted server has closed them all
                        retry_or_fail(self._queue, batch, exc)
                    else:  # a statement the database refused leaves the connection usable
                        healthy = isinstance(exc, asyncpg.PostgresError)
                        fail_reads(batch, exc)
                        if not isinstance(exc, Exception):
                            raise
                finally:
                    self.pool.give_back(conn, healthy)
        finally:
            if starting:
                self._starting -= 1
            self._draining -= 1

    async def _run(self, conn: asyncpg.Connection, batch: list[Read]) -> None:
        by_set: dict[str, list[Read]] = {}
        for read in batch:
            by_set.setdefault(read[0], []).append(read)
        for entity_set, reads in by_set.items():
            self.statements += 1
            tenants = [r[1] for r in reads]
            ids = [r[2] for r in reads]
            if self.cache is None:
                rows = await conn.fetch(self._sql[entity_set], tenants, ids)
                found = {int(n): body for n, body in rows}
            else:
                found = await self._run_versioned(conn, entity_set, tenants, ids, self.cache)
            for i, read in enumerate(reads, start=1):
                if not read[3].done():
                    read[3].set_result(found.get(i))

    async def _run_versioned(self, conn: asyncpg.Connection, entity_set: str,
                             tenants: list[str], ids: list[str],
                             cache: BodyCache) -> dict[int, bytes]:
        now = time.monotonic()
        # what is held now, kept here: the cache may drop it while the statement runs
        held = [cache.held((entity_set, t, i), now) for t, i in zip(tenants, ids, strict=True)]
        rows = await conn.fetch(self._sql[entity_set], tenants, ids,
                                [None if h is None else h[0] for h in held])
        found: dict[int, bytes] = {}
        for n, version, _, body in rows:
            n = int(n)
            doc = versioned_body(cache, (entity_set, tenants[n - 1], ids[n - 1]), held[n - 1],
                                 int(version), body)
            if doc is not None:
                found[n] = doc
        return found
