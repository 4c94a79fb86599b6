"""Reads by id through the store's pool (``Connection.fetch``), coalesced per round trip.

Reads that arrive while every pooled connection is busy wait in a queue, and the next free
connection takes the whole queue (up to ``MAX_BATCH``) in one statement per entity set
(:func:`graphsec.storage.postgres.reads.probe_sql`). A lone read is a batch of one, sent at
once: batching adds no delay, it only forms while reads would wait anyway.

This is the reader of last resort: the store uses it when another cannot open. It costs the
worker a drainer task woken by each statement and asyncpg's statement cache lookup per batch,
which the ``prepared`` reader avoids.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import asyncpg

from graphsec.storage.postgres.cache import BodyCache
from graphsec.storage.postgres.pool import ConnectionPool, connection_lost, unavailable
from graphsec.storage.postgres.reads import (
    MAX_BATCH,
    ReadRequest,
    answer,
    encode_keys,
    fail_reads,
    held_versions,
    probe_sql,
    retry_or_fail,
    without_unencodable,
)


class BatchReads:
    """:class:`graphsec.storage.postgres.reads.PointReads` on the store's pool."""

    own_connection = False

    def __init__(self, pool: ConnectionPool, tables: dict[str, str],
                 cache: BodyCache | None = None) -> None:
        self.pool = pool
        self.cache = cache
        # asyncio.get_running_loop() makes a getpid() system call each time (CPython 3.11): 61
        # of 1,197 samples of the worker's main thread in a py-spy profile of GET by id. A
        # store is opened, and then used, in one event loop.
        self._loop = asyncio.get_running_loop()
        self._sql = {name: probe_sql(table) for name, table in tables.items()}
        self._queue: deque[ReadRequest] = deque()
        self._draining = 0  # counted down as a drainer returns, not when its task is reaped
        self._starting = 0  # drainers that have not taken a batch yet
        self._drainers: set[asyncio.Task[None]] = set()
        self.statements = 0
        """Statements run so far (the tests read it)."""

    async def open(self) -> bool:
        """Nothing to open: its connections are the pool's."""
        return True

    async def get(self, entity_set: str, tenant: str, entity_id: str) -> bytes | None:
        future: asyncio.Future[bytes | None] = self._loop.create_future()
        self._queue.append(ReadRequest(entity_set, tenant, entity_id, future))
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

    def _next_batch(self) -> list[ReadRequest]:
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

    async def _run(self, conn: asyncpg.Connection, batch: list[ReadRequest]) -> None:
        by_set: dict[str, list[ReadRequest]] = {}
        for read in batch:
            by_set.setdefault(read.entity_set, []).append(read)
        now = time.monotonic()
        for entity_set, reads in by_set.items():
            held = held_versions(self.cache, reads, now)
            keys = encode_keys(reads, [None if h is None else h[0] for h in held])
            if keys is None:  # a key JSON cannot carry: it names no entity, the others go
                reads = without_unencodable(reads)
                held = held_versions(self.cache, reads, now)
                keys = encode_keys(reads, [None if h is None else h[0] for h in held])
                if not reads or keys is None:
                    continue
            self.statements += 1
            rows = await conn.fetch(self._sql[entity_set], keys)
            answer(self.cache, reads, held, rows)
