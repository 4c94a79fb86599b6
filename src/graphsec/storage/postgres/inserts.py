"""Creates that reach a PostgreSQL store together are one ``INSERT``: one round trip, one commit.

Each create used to be its own statement on its own connection: a round trip (on this machine
kind some 140 µs of graphsec's CPU each, bench/RESULTS.md, issue 19) and a commit that waits
for the log to reach the disk. The creates of one entity set that arrive in the same turn of the
event loop are now sent as one statement,

    INSERT INTO <table> (<columns>) SELECT * FROM unnest($1::<type>[], …)
    ON CONFLICT (tenant_id, id) DO NOTHING RETURNING tenant_id, id

one array per column, and answered once it has committed: the rows it returns were written,
every other create of the batch took an id already in use (409, as before). Two creates of one
id in the same batch would be indistinguishable in what comes back, so the second waits for the
next batch (where it meets the first's row: 409). A statement that fails fails every create of
its batch with the same error, none of which was written (one statement is one transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Dialect

from graphsec.storage.postgres.pool import ConnectionPool
from graphsec.storage.sql.tables import EntityTable

MAX_BATCH = 64
"""Creates per statement at most."""

Row = list[Any]
Pending = tuple[tuple[str, str], Row, asyncio.Future[None]]


def batch_insert_sql(et: EntityTable, dialect: Dialect) -> str:
    """The statement of a batch, its parameters one array per column of the table, in order."""
    t = et.table
    columns = [c.name for c in t.columns]
    arrays = ", ".join(f"${i}::{c.type.compile(dialect=dialect).split(' COLLATE')[0]}[]"
                       for i, c in enumerate(t.columns, start=1))
    return (f"INSERT INTO {t.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
            "ON CONFLICT (tenant_id, id) DO NOTHING RETURNING tenant_id, id")


class GroupInsert:
    """Batches the creates of one table: :meth:`insert` returns once its row is committed,
    raises ``conflict(id)`` when the id was taken, or what ``failed(exc)`` makes of the
    statement's error."""

    def __init__(self, pool: Callable[[], ConnectionPool], sql: str,
                 conflict: Callable[[str], Exception],
                 failed: Callable[[Exception], Exception]) -> None:
        self._pool = pool
        self._sql = sql
        self._conflict = conflict
        self._failed = failed
        self._pending: list[Pending] = []
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()
        self.statements = 0
        """Statements sent so far (with :attr:`rows`: the batches' mean size)."""
        self.rows = 0
        """Creates sent so far."""

    async def insert(self, tenant: str, entity_id: str, row: Row) -> None:
        """``row``: the table's column values, in the table's order."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append(((tenant, entity_id), row, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        await future

    def _flush(self) -> None:
        batch: list[Pending] = []
        later: list[Pending] = []
        keys: set[tuple[str, str]] = set()
        for entry in self._pending:
            if entry[2].cancelled():
                continue
            if entry[0] in keys or len(batch) >= MAX_BATCH:
                later.append(entry)
            else:
                keys.add(entry[0])
                batch.append(entry)
        self._pending = later
        self._scheduled = bool(later)
        loop = asyncio.get_running_loop()
        if later:
            loop.call_soon(self._flush)
        if batch:
            task = loop.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[Pending]) -> None:
        columns = [list(values) for values in zip(*(row for _, row, _ in batch), strict=True)]
        self.statements += 1
        self.rows += len(batch)
        try:
            written = {(r[0], r[1]) for r in await self._pool().fetch(self._sql, *columns)}
        except Exception as exc:
            error = self._failed(exc)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for key, _, future in batch:
            if future.done():
                continue
            if key in written:
                future.set_result(None)
            else:
                future.set_exception(self._conflict(key[1]))

    async def close(self) -> None:
        """Waits for the statements under way."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
