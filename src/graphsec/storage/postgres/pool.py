"""A small pool of asyncpg connections for one event loop.

asyncpg's own ``Pool`` wraps every use in timeouts, ``asyncio.shield`` and an inactivity timer;
measured in-process on this machine kind (32 concurrent primary-key reads, uvloop), it served
14-17k reads/s where handing connections out of a deque served 25-33k/s. graphsec needs no
more than the deque: connections are opened on demand up to ``size``, handed back warm (last in,
first out), and given to waiters in arrival order.

A connection goes back to the pool only in a known state: after success, or after a database
error (the statement's own transaction is over then). Any other failure (a lost connection, a
cancelled request in the middle of a query, a transaction left open) discards it, and the
freed place lets a waiter open a new one. A discarded connection that is still open is closed
in the background, politely: asyncpg first sends PostgreSQL a cancel request for a statement
cut short by a cancelled request (the client went away) and waits for it to stop, so nothing
goes on running for nobody (dropping the socket alone leaves the backend running the statement
to its end).

Every connection is opened with ``statement_timeout`` (the store's time budget) when one is set:
PostgreSQL stops a statement that runs longer (``QueryCanceledError``, SQLSTATE 57014), which
is a refused statement, not a lost connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from graphsec.errors import ServiceUnavailable
from graphsec.storage.sql.statements import Compiled

log = logging.getLogger("graphsec.storage")


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to PostgreSQL is gone (a restart, a failover, a
    terminated backend, the server unreachable) rather than that a statement was refused."""
    return isinstance(exc, (
        asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError, ConnectionFailureError …
        asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, asyncpg.CannotConnectNowError,
        asyncpg.InterfaceError, asyncpg.InternalClientError,  # a connection left mid-operation
        OSError,  # refused, reset, unreachable
    ))


def unavailable(exc: BaseException) -> ServiceUnavailable:
    """The 503 for a database that cannot be reached (the cause goes to the server log)."""
    log.warning("PostgreSQL unreachable: %s: %s", type(exc).__name__, exc)
    return ServiceUnavailable("The database is not reachable at the moment; retry in a few "
                              "seconds.")


@functools.cache
def _server_started() -> str:
    """When the server a connection reaches started (a restart or a failover changes it)."""
    dialect = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
    return Compiled(select(func.pg_postmaster_start_time()), dialect).sql


class PoolClosed(RuntimeError):
    pass


class ConnectionPool:
    def __init__(self, url: str, size: int, on_lost: Callable[[], None] | None = None,
                 statement_timeout_ms: int = 0) -> None:
        if size < 1:
            raise ValueError("the pool needs at least one connection")
        self.url = url
        self.size = size
        self.statement_timeout_ms = statement_timeout_ms
        """``statement_timeout`` of every connection opened (0: the server's own setting)."""
        self.on_lost = on_lost
        """Called when the pool finds connections gone, or a new connection reaches a server
        started at another time than the last one did (a restart, a failover)."""
        self.server_started: object = None
        """``pg_postmaster_start_time()`` as the latest connection saw it."""
        self._idle: list[asyncpg.Connection] = []
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._count = 0  # connections open or being opened
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()  # discarded connections being closed

    @property
    def open_connections(self) -> int:
        return self._count

    @property
    def idle_connections(self) -> int:
        """Connections open and waiting in the pool (the others are in use or opening)."""
        return len(self._idle)

    async def open(self) -> None:
        """Open the first connection (so a wrong URL fails at start-up)."""
        self._give(await self._connect())

    async def _connect(self, reserved: bool = False) -> asyncpg.Connection:
        """Open a connection in a free place (``reserved``: one :meth:`_give` kept for us)."""
        if not reserved:
            self._count += 1
        try:
            return await self.open_dedicated()
        except BaseException:
            self._count -= 1
            self._give(None)  # the place is free again for a waiter
            raise

    async def open_dedicated(self) -> asyncpg.Connection:
        """A new connection outside the pool (the caller closes it), to the server the pool
        uses: when that server is not the one the last connection reached, ``on_lost`` hears."""
        settings = {}
        if self.statement_timeout_ms:
            settings["statement_timeout"] = str(int(self.statement_timeout_ms))
        conn: asyncpg.Connection = await asyncpg.connect(self.url, server_settings=settings)
        try:
            started = await conn.fetchval(_server_started())
        except BaseException:
            conn.terminate()
            raise
        if started != self.server_started:
            if self.server_started is not None:  # another server, or this one restarted
                self._lost()
            self.server_started = started
        return conn

    async def _acquire(self) -> asyncpg.Connection:
        if self._closed:
            raise PoolClosed("the PostgreSQL connection pool is closed")
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._count -= 1
            self._lost()
        if self._count < self.size:
            return await self._connect()
        waiter: asyncio.Future[asyncpg.Connection | None] = \
            asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            handed = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over, then cancelled
                handed = waiter.result()
                if handed is None:
                    self._count -= 1  # the place kept for us goes to the next waiter
                self._give(handed)
            else:
                self._waiters.remove(waiter)
            raise
        if handed is None:  # a place was freed and kept for us: open a connection in it
            if self._closed:
                self._count -= 1
                raise PoolClosed("the PostgreSQL connection pool is closed")
            return await self._connect(reserved=True)
        return handed

    def _give(self, conn: asyncpg.Connection | None) -> None:
        """Hand ``conn`` (or, with None, a free place) to the first live waiter, else keep it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                if conn is None:
                    self._count += 1  # keep the place for this waiter, or another take()
                    # could open a connection in it first and the pool outgrow its size
                waiter.set_result(conn)
                return
        if conn is not None:
            if self._closed:
                self._discard(conn)
            else:
                self._idle.append(conn)

    def _discard(self, conn: asyncpg.Connection, politely: bool = False) -> None:
        if politely and not conn.is_closed():
            closing = asyncio.get_running_loop().create_task(self._close_quietly(conn))
            self._closing.add(closing)  # the loop keeps only weak references to tasks
            closing.add_done_callback(self._closing.discard)
        elif not conn.is_closed():
            conn.terminate()
        self._count -= 1

    @staticmethod
    async def _close_quietly(conn: asyncpg.Connection) -> None:
        """Close ``conn`` after asyncpg has cancelled the statement a cancelled caller left
        running (its cancel request and the statement's end come first); terminate it when
        that takes more than a few seconds or fails."""
        try:
            await conn.close(timeout=5)
        except Exception:
            conn.terminate()
        except BaseException:  # the loop is shutting down
            conn.terminate()
            raise

    def _release(self, conn: asyncpg.Connection, healthy: bool) -> None:
        if healthy and not self._closed and not conn.is_closed() and not conn.is_in_transaction():
            self._give(conn)
        else:
            self._discard(conn, politely=True)  # a statement cut short may still run there
            self._give(None)

    def _lost(self) -> None:
        if self.on_lost is not None:
            self.on_lost()

    def discard_idle(self) -> None:
        """A connection was found lost (the server restarted, say): close every idle one, as
        they may be too, so that the next use opens a fresh one; tell ``on_lost``."""
        idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)
        self._lost()

    async def take(self) -> asyncpg.Connection:
        """A connection for the caller alone, until :meth:`give_back`."""
        return await self._acquire()

    def give_back(self, conn: asyncpg.Connection, healthy: bool) -> None:
        """Return ``conn``; ``healthy``: its last use ended in success or a database error."""
        self._release(conn, healthy)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._acquire()
        healthy = False
        try:
            yield conn
            healthy = True
        except asyncpg.PostgresError:
            healthy = True  # the database refused a statement; the connection is fine
            raise
        finally:
            self._release(conn, healthy)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

    async def execute(self, sql: str, *args: Any) -> str:
        async with self.acquire() as conn:
            status: str = await conn.execute(sql, *args)
            return status

    async def close(self) -> None:
        """Close the idle connections now and the others as they come back; waiters fail."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("the PostgreSQL connection pool is closed"))
        idle, self._idle = self._idle, []
        for conn in idle:
            self._count -= 1
            try:
                await conn.close(timeout=5)
            except Exception:
                conn.terminate()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
