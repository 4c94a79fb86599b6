"""Server workers open a new SQLite file at the same moment: none of them may fail.

``graphsec serve`` migrates a new file in its main process, which leaves it in rollback-journal
mode, then starts its workers, and each switches the file to WAL as it opens it. When two try
the switch together SQLite answers one of them "database is locked" at once, busy timeout or
not; granian then stopped the whole server (seen in ``tests/system/test_concurrency.py``, and
in 13 of 40 rounds of this test before the fix).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import traceback
from pathlib import Path
from typing import Any

from graphsec.schema.security import ENTITY_SETS
from graphsec.storage import migrate
from graphsec.storage.sqlite import SQLiteStore

ROUNDS = 20


def _open(path: Path, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        store = SQLiteStore(path, ENTITY_SETS)
        store.open_sync()
        store.conn.execute("SELECT count(*) FROM secure_scores").fetchone()
        store.conn.close()
        results.put("ok")
    except Exception:  # reported to the test, which shows it
        results.put(traceback.format_exc())


def test_two_workers_opening_a_new_file_at_once_both_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for n in range(ROUNDS):
        path = tmp_path / f"new-{n}.db"
        migrate.upgrade(f"sqlite:///{path}")  # as `serve` does before starting its workers
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(path, barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert outcomes == ["ok", "ok"], f"round {n}: {outcomes}"
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
