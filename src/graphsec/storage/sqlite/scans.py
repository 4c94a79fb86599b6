"""SQLite statements that may scan: inline on a leash, else on threads, within a time budget.

A ``$filter`` with lambdas, an ``$orderby`` no index serves, a ``$skip`` or a ``$count`` may
read every row of a tenant, and a filter's cost multiplies with the collections it ranges over.
Run inline, such a statement would hold the worker's event loop, and with it every other
request (GETs by id of other tenants, ``/healthz``), for as long as it runs. So such a
statement runs inline only on a :class:`Leash` (stopped after :data:`INLINE_SECONDS`), and
when it outlasts that, on a small pool of threads, each with a read-only connection of its own:
WAL lets readers run beside the writer, and the stdlib ``sqlite3`` releases the GIL while SQLite
steps, so the event loop goes on serving while a scan runs.

Budget: each statement gets :class:`Budget`, checked by a progress handler every
:data:`PROGRESS_STEPS` virtual-machine instructions (about a millisecond of work): past its
deadline, or once the request that waits for it is cancelled (the client went away), the
handler stops the statement (``sqlite3.OperationalError: interrupted``). Running out of time is
:class:`graphsec.errors.GatewayTimeout`; a cancelled statement's thread is free again within the
next check. The deadline counts from when the statement starts, as PostgreSQL's
``statement_timeout`` does.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from graphsec.errors import ServiceUnavailable
from graphsec.storage.budget import out_of_time

SCAN_THREADS = 4
"""Threads (and read-only connections) per worker for statements that can scan: a few
expensive queries at once do not queue every other filtered list behind them."""

PROGRESS_STEPS = 20_000
"""SQLite VM instructions between two budget checks. Each check takes the GIL, so it must
not come often; 20,000 instructions of a lambda filter are well under a millisecond."""

INLINE_SECONDS = 0.002
"""How long a statement that may scan first runs inline on the event loop before it is stopped
and run again on the threads. Most such statements (a page with a ``$filter`` on an indexed
range, its ``$count``) finish in well under a millisecond, and a thread hop costs them more
than their own work: ``stdlib sqlite3`` releases the GIL at every row, and under load each
release hands it to another thread (run on the threads only, ``$filter`` + ``$count`` at 10k
fell from 85 % to 34 % of the bare app in ``bench/compare.py``, bench/RESULTS.md). So the event
loop is held at most this long by any one statement."""

INLINE_STEPS = 1_000
"""SQLite VM instructions between two checks of the inline deadline (a few microseconds)."""

SLOW_REMEMBERED = 256
"""Statements (by SQL text) found expensive go straight to the threads for a while."""

SLOW_SECONDS = 60.0

EXPENSIVE_SECONDS = 0.05
"""A statement that outlasted the leash and then ran this long on a thread is expensive:
it skips the leash for :data:`SLOW_SECONDS`. Outlasting the leash alone does not make a
statement expensive: a worker's first reads find no page in its cache, and one remembered on
that account would pay the thread hop for a minute (it did: a filtered page and its count that
take half a millisecond warm stayed at a third of their rate in ``bench/compare.py``)."""


def failed(exc: sqlite3.OperationalError, timeout_ms: int) -> Exception:
    """What a statement's OperationalError becomes: ``interrupted`` (its budget ran out) a 504,
    a write lock held past the busy timeout a 503 the client can retry, anything else itself."""
    text = str(exc)
    if "interrupted" in text:
        return out_of_time(timeout_ms)
    if "locked" in text or "busy" in text:
        return ServiceUnavailable("The database is busy with another writer; retry in a few "
                                  "seconds.")
    return exc


class _Abandoned(Exception):
    """The statement was stopped because nobody waits for its answer any more."""


class Budget:
    """One statement's limits: a deadline (``time.monotonic()``; None for none) and a flag
    set when nobody waits for the result any more. :meth:`exceeded` is the progress handler."""

    __slots__ = ("cancelled", "deadline")

    def __init__(self, timeout_ms: int) -> None:
        self.deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
        self.cancelled = False

    def exceeded(self) -> bool:
        """True stops the statement (SQLite calls this from the statement's thread)."""
        return self.cancelled or (self.deadline is not None and time.monotonic() > self.deadline)


class Leash:
    """Runs statements inline on a connection of the event loop's thread, each read within
    :data:`INLINE_SECONDS` of its own; :meth:`run` answers the results of those it finished,
    in order, up to the first one it stopped for taking longer (the caller runs that one and
    the rest on the threads). A page and its count used to share one deadline, and both went
    to the threads when the two together outlasted it: a lambda's page and count of 1 ms or so
    each went there on most requests (``lambda_count``, bench/RESULTS.md). A statement given
    to :meth:`remember` as expensive is sent to the threads directly for :data:`SLOW_SECONDS`,
    so repeated expensive queries do not each spend the inline time first."""

    def __init__(self, seconds: float = INLINE_SECONDS) -> None:
        self.seconds = seconds
        self._slow: dict[str, float] = {}

    def run(self, conn: sqlite3.Connection,
            statements: list[tuple[str, Any]]) -> list[list[Any]]:
        results: list[list[Any]] = []
        deadline = 0.0
        conn.set_progress_handler(lambda: time.monotonic() > deadline, INLINE_STEPS)
        try:
            for sql, params in statements:
                now = time.monotonic()
                if self._slow.get(sql, 0.0) > now:
                    return results
                deadline = now + self.seconds
                try:
                    results.append(conn.execute(sql, params).fetchall())
                except sqlite3.OperationalError as exc:
                    if "interrupted" not in str(exc):
                        raise
                    return results
        finally:
            conn.set_progress_handler(None, 0)
        return results

    def remember(self, statements: list[tuple[str, Any]]) -> None:
        """Send these statements to the threads directly for the next :data:`SLOW_SECONDS`."""
        now = time.monotonic()
        for sql, _ in statements:
            self._remember(sql, now)

    def _remember(self, sql: str, now: float) -> None:
        if len(self._slow) >= SLOW_REMEMBERED:
            self._slow = {k: t for k, t in self._slow.items() if t > now}
            if len(self._slow) >= SLOW_REMEMBERED:
                self._slow.pop(next(iter(self._slow)))
        self._slow[sql] = now + SLOW_SECONDS


class ScanPool:
    """Read statements on ``threads`` threads, each with its own read-only connection to
    ``path``, every statement within ``timeout_ms`` (0: no limit)."""

    def __init__(self, path: Path, timeout_ms: int, cache_kib: int = 0,
                 threads: int = SCAN_THREADS) -> None:
        self.path = path
        self.timeout_ms = timeout_ms
        self.cache_kib = cache_kib
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="graphsec-scan")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._active: set[Budget] = set()

    @property
    def running(self) -> int:
        """Statements running in the threads right now."""
        with self._lock:
            return len(self._active)

    @property
    def opened(self) -> int:
        """Connections the threads have opened (one per thread, on its first statement)."""
        with self._lock:
            return len(self._connections)

    async def fetch_many(self, statements: list[tuple[str, Any]]
                         ) -> tuple[list[list[Any]], float]:
        """The rows of each statement, read one after the other on one thread (one hop), each
        within the budget, and the seconds they ran on that thread: not the time spent waiting
        for a free thread or, after it, for the event loop, which under load is most of a hop
        and says nothing of the statements (measured from the caller, a 1 ms page and count
        took "over 50 ms", were remembered as expensive and ran on the threads for a minute at
        a third of their rate). Cancelling the caller stops the one running."""
        budget = Budget(0)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._run_many, statements, budget)
        except asyncio.CancelledError:
            budget.cancelled = True
            raise

    def _run_many(self, statements: list[tuple[str, Any]],
                  budget: Budget) -> tuple[list[list[Any]], float]:
        started = time.monotonic()
        results = []
        for sql, params in statements:
            budget.deadline = None
            results.append(self._run(sql, params, budget))
        return results, time.monotonic() - started

    async def fetchall(self, sql: str, params: Any) -> list[Any]:
        """The rows of ``sql``; :class:`GatewayTimeout` when it runs out of time. Cancelling
        the caller stops the statement."""
        budget = Budget(0)  # the deadline is set when the statement starts
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._run, sql, params, budget)
        except asyncio.CancelledError:
            budget.cancelled = True  # stops it at the next check, if it started
            raise

    def _run(self, sql: str, params: Any, budget: Budget) -> list[Any]:
        if budget.cancelled:
            raise _Abandoned
        conn = self._connection()
        if self.timeout_ms:
            budget.deadline = time.monotonic() + self.timeout_ms / 1000
        conn.set_progress_handler(budget.exceeded, PROGRESS_STEPS)
        with self._lock:
            self._active.add(budget)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if budget.cancelled:
                raise _Abandoned from None
            raise failed(exc, self.timeout_ms) from None
        finally:
            with self._lock:
                self._active.discard(budget)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            uri = f"{self.path.absolute().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=10000")
            if self.cache_kib:
                conn.execute(f"PRAGMA cache_size={-int(self.cache_kib)}")  # negative: KiB
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Stop what runs, wait for the threads, close their connections."""
        with self._lock:
            for budget in self._active:
                budget.cancelled = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
