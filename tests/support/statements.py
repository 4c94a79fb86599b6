"""Count the statements a PostgreSQL store sends, from the client's side: exact, no sleeps.

Two counters together see every statement: asyncpg's own query log
(``Connection.add_query_logger``) on every connection opened while counting, which covers the
pool's connections and the set-up query of each (``pgpool.ConnectionPool.open_dedicated``),
and, for the connection whose transport the wire reader takes over (``storage/pgwire.py``),
where asyncpg sees nothing any more, the wire reader's own count of the statements it sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import asyncpg
import pytest

from graphsec.storage.pgwire import WireReads

T = TypeVar("T")


class StatementCounter:
    """The statements sent on connections opened since counting began."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        """What asyncpg ran, in order (the wire reader's statements are not here)."""
        self.wire_readers: list[WireReads] = []

    def log(self, record: Any) -> None:
        """asyncpg's query logger: one call per statement run."""
        self.queries.append(str(record.query))

    async def total(self) -> int:
        """Statements so far. asyncpg hands each query to its loggers with ``call_soon``: one
        turn of the event loop runs those of every query that has returned."""
        await asyncio.sleep(0)
        return len(self.queries) + sum(w.statements for w in self.wire_readers)

    async def of(self, operation: Awaitable[T]) -> tuple[T, int]:
        """``operation``'s result and the statements it sent (nothing else may run meanwhile)."""
        before = await self.total()
        result = await operation
        return result, await self.total() - before


def count_statements(monkeypatch: pytest.MonkeyPatch) -> StatementCounter:
    """Start counting: every ``asyncpg.connect`` from now on (the store's pool calls it at
    each use, so the patch reaches it) gets the counter as a query logger, and every wire
    reader created is remembered. ``monkeypatch`` undoes both at the end of the test."""
    counter = StatementCounter()
    connect = asyncpg.connect

    async def logged_connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        conn: asyncpg.Connection = await connect(*args, **kwargs)
        conn.add_query_logger(counter.log)
        return conn

    init = WireReads.__init__

    def remembered_init(self: WireReads, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        counter.wire_readers.append(self)

    monkeypatch.setattr(asyncpg, "connect", logged_connect)
    monkeypatch.setattr(WireReads, "__init__", remembered_init)
    return counter
