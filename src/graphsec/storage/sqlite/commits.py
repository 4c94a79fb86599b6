"""Group commit: the writes one worker receives together share one SQLite transaction.

Each write used to be its own transaction: with WAL, a commit appends every page the write
changed to the log (the table's page, the page of each index, the overflow pages of the
document) and takes and gives back the file's locks, once per write. Writes that reach the
store in the same turn of the event loop now run in one ``BEGIN IMMEDIATE`` … ``COMMIT``, each
inside its own ``SAVEPOINT``: a write that fails (a conflicting id, a refused change) is rolled
back alone and answers its own error, the others commit. A write's caller gets its result only
after the ``COMMIT`` returned, so what is acknowledged is as durable as before (WAL with
``synchronous=NORMAL``: a commit survives a crash of the process). In-process, a 4.7 KB score
took 130–160 µs inserted in its own transaction and 44–56 µs in batches of 16 with a savepoint
each (bench/RESULTS.md, issue 19).

Batches form by themselves: the first write of a turn schedules the commit with
``call_soon``, and every write that arrives before the loop gets to it joins; one write alone
waits for nothing but the rest of the current turn. The work runs on the event loop, as every
write by primary key does (its cost is bounded by the document's size), at most
``MAX_BATCH`` writes per transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]

MAX_BATCH = 64
"""Writes per transaction at most: bounds how long one commit holds the event loop (64 writes
of the largest documents the limits admit are still tens of milliseconds)."""


class GroupCommit:
    """Runs write functions in shared transactions on the connection ``conn()`` returns.

    ``begin_failed`` turns an error of ``BEGIN IMMEDIATE`` (another process's write lock held
    past the busy timeout) into what every write of the batch raises.
    """

    def __init__(self, conn: Callable[[], sqlite3.Connection],
                 begin_failed: Callable[[sqlite3.OperationalError], Exception]) -> None:
        self._conn = conn
        self._begin_failed = begin_failed
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._scheduled = False
        self.transactions = 0
        """Transactions committed or rolled back so far (with :attr:`writes`: the batches'
        mean size)."""
        self.writes = 0
        """Writes run so far."""

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(conn)``'s result once the transaction it ran in has committed; its exception
        when it raised (its changes rolled back, the batch's other writes unaffected)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((work, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch = [(w, f) for w, f in self._pending[:MAX_BATCH] if not f.cancelled()]
        del self._pending[:MAX_BATCH]
        self._scheduled = bool(self._pending)
        if self._scheduled:
            asyncio.get_running_loop().call_soon(self._flush)
        if batch:
            self._commit(batch)

    def _commit(self, batch: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            error = self._begin_failed(exc)
            for _, future in batch:
                _settle(future, error, failed=True)
            return
        self.transactions += 1
        self.writes += len(batch)
        alone = len(batch) == 1
        outcomes: list[tuple[asyncio.Future[Any], Any, bool]] = []
        for work, future in batch:
            if not alone:
                conn.execute("SAVEPOINT w")
            try:
                result = work(conn)
            except Exception as exc:  # the write's own error: undo it, answer it
                if not conn.in_transaction:  # an I/O error ended the whole transaction
                    self._fail_all(batch, exc)
                    return
                conn.execute("ROLLBACK" if alone else "ROLLBACK TO w")
                if alone:
                    _settle(future, exc, failed=True)
                    return
                conn.execute("RELEASE w")
                outcomes.append((future, exc, True))
                continue
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._fail_all(batch, exc)
                raise
            if not alone:
                conn.execute("RELEASE w")
            outcomes.append((future, result, False))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._fail_all(batch, exc)
            return
        for future, value, failed in outcomes:
            _settle(future, value, failed)

    @staticmethod
    def _fail_all(batch: list[tuple[Work, asyncio.Future[Any]]], exc: BaseException) -> None:
        """Nothing of the batch was kept: every write answers ``exc``."""
        for _, future in batch:
            _settle(future, exc, failed=True)


def _settle(future: asyncio.Future[Any], value: Any, failed: bool) -> None:
    if future.done():  # its caller went away while the batch ran
        return
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)


CHECKPOINT_SECONDS = 0.2
"""How often :class:`Checkpointer` copies the log's committed pages into the database file."""

BACKSTOP_PAGES = 10_000
"""The writer's own automatic checkpoint, past this many pages in the log (40 MB of 4 KB
pages): only if the checkpointer thread falls that far behind."""


class Checkpointer:
    """Checkpoints the WAL on a thread of its own, so that commits on the event loop do not.

    SQLite checkpoints by default in the commit that takes the log past 1,000 pages: it copies
    the pages into the database file and, with ``synchronous=NORMAL``, waits for both files to
    reach the disk, holding the event loop meanwhile. In-process, 4,000 inserts of a 4.7 KB
    score in transactions of 8: 57–67 µs each with that, 34–44 µs without (bench/RESULTS.md,
    issue 19). The writer's connection now checkpoints only past :data:`BACKSTOP_PAGES`; this
    thread runs a ``PASSIVE`` checkpoint (it waits for no reader or writer) every
    :data:`CHECKPOINT_SECONDS` on its own connection. What a commit makes durable is unchanged:
    a committed transaction is in the log, which SQLite replays on the next open after a crash.
    """

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self._stop = threading.Event()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._thread = threading.Thread(target=self._run, name="graphsec-checkpoint",
                                        daemon=True)
        self.checkpoints = 0
        """Checkpoints run so far."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(CHECKPOINT_SECONDS):
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.checkpoints += 1
            except sqlite3.Error:
                continue  # busy with another process's checkpoint, or the file going away

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()
