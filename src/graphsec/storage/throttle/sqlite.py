"""The throttle state in a SQLite file beside the database (see ``__init__``)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from graphsec.pressure.windows import Concurrency, Rate, decide

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS windows (key TEXT PRIMARY KEY, start REAL NOT NULL, "
    "count INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS leases (key TEXT NOT NULL, lease TEXT NOT NULL, "
    "expires REAL NOT NULL, PRIMARY KEY (key, lease)) WITHOUT ROWID",
)
PURGE_EVERY = 4096
"""Admissions between two sweeps of closed windows (the longest period is 600 s; a closed
window is the same as none)."""


class SQLiteThrottleState:
    """One connection a worker; each decision one ``BEGIN IMMEDIATE`` transaction (tens of
    microseconds, run inline: the lock is held only that long, by any worker)."""

    def __init__(self, path: Path, lease_seconds: float = 300.0) -> None:
        self.path = path
        self.lease_seconds = lease_seconds
        self._db: sqlite3.Connection | None = None
        self._admitted = 0

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                 timeout=5.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # counters: a crash only refills buckets
            for statement in _SCHEMA:
                db.execute(statement)
            self._db = db
        return self._db

    async def admit(self, rates: tuple[Rate, ...], concurrency: Concurrency | None,
                    lease: str) -> int:
        db = self._connection()
        now = time.time()
        keys = [r.key for r in rates]
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute(f"SELECT key, start, count FROM windows WHERE key IN "
                              f"({', '.join('?' * len(keys))})", keys).fetchall()
            wait, changes = decide(rates, {k: (start, n) for k, start, n in rows}, now)
            if not wait and concurrency is not None:
                db.execute("DELETE FROM leases WHERE key = ? AND expires < ?",
                           (concurrency.key, now))
                (busy,) = db.execute("SELECT count(*) FROM leases WHERE key = ?",
                                     (concurrency.key,)).fetchone()
                if busy >= concurrency.limit:
                    wait, changes = 1, {}
                else:
                    db.execute("INSERT INTO leases VALUES (?, ?, ?)",
                               (concurrency.key, lease, now + self.lease_seconds))
            db.executemany("INSERT INTO windows VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
                           "SET start = excluded.start, count = excluded.count",
                           [(k, start, n) for k, (start, n) in changes.items()])
            self._admitted += 1
            if self._admitted % PURGE_EVERY == 0:
                db.execute("DELETE FROM windows WHERE start < ?", (now - 600,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return wait

    async def release(self, concurrency: Concurrency, lease: str) -> None:
        self._connection().execute("DELETE FROM leases WHERE key = ? AND lease = ?",
                                   (concurrency.key, lease))

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
