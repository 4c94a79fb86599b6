"""Count the statements a PostgreSQL store sends, from the client's side: exact, no sleeps.

Two counters together see every statement:

- asyncpg's own query log (``Connection.add_query_logger``) on every connection opened while
  counting: the pool's connections and the set-up query of each
  (``graphsec.storage.postgres.pool.ConnectionPool.open_dedicated``);
- the executions of prepared statements (``Connection.prepare`` then ``fetch``, ``fetchrow``,
  ``fetchval``, ``fetchmany``, ``executemany``), which asyncpg does not log: one statement each,
  the way the prepared-statement reader (``storage/postgres/reads/``) reads by id.

Preparing a statement runs nothing (asyncpg prepares the statements of ``Connection.fetch`` too,
and logs them once, when they run), so it is not counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import pytest
from asyncpg.prepared_stmt import PreparedStatement

T = TypeVar("T")

RUNS = ("fetch", "fetchrow", "fetchval", "fetchmany", "executemany")
"""The methods of asyncpg's ``PreparedStatement`` that run it (``explain`` runs an ``EXPLAIN``
through the connection, which the query log sees)."""


class StatementCounter:
    """The statements sent since counting began (asyncpg's log: on the connections opened
    since then)."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        """What asyncpg ran, in order."""

    def log(self, record: Any) -> None:
        """asyncpg's query logger: one call per statement run."""
        self.queries.append(str(record.query))

    async def total(self) -> int:
        """Statements so far. asyncpg hands each query to its loggers with ``call_soon``: one
        turn of the event loop runs those of every query that has returned."""
        await asyncio.sleep(0)
        return len(self.queries)

    async def of(self, operation: Awaitable[T]) -> tuple[T, int]:
        """``operation``'s result and the statements it sent (nothing else may run meanwhile)."""
        before = await self.total()
        result = await operation
        return result, await self.total() - before


def _logged(counter: StatementCounter, run: Callable[..., Awaitable[Any]]) -> Any:
    """``run`` (a method of ``PreparedStatement``) that adds its statement to ``counter``'s log
    once it has run, as asyncpg's query log does for the connection's own methods."""

    async def logged(statement: PreparedStatement, *args: Any, **kwargs: Any) -> Any:
        try:
            return await run(statement, *args, **kwargs)
        finally:
            counter.queries.append(statement.get_query())

    return logged


def count_statements(monkeypatch: pytest.MonkeyPatch) -> StatementCounter:
    """Start counting: every ``asyncpg.connect`` from now on (the store's pool calls it at
    each use, so the patch reaches it) gets the counter as a query logger, every run of a
    prepared statement is logged. ``monkeypatch`` undoes both at the end of the test."""
    counter = StatementCounter()
    connect = asyncpg.connect

    async def logged_connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        conn: asyncpg.Connection = await connect(*args, **kwargs)
        conn.add_query_logger(counter.log)
        return conn

    monkeypatch.setattr(asyncpg, "connect", logged_connect)
    for name in RUNS:
        monkeypatch.setattr(PreparedStatement, name, _logged(counter, getattr(PreparedStatement, name)))
    return counter
