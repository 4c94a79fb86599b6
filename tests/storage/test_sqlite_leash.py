"""SQLite statements that may scan run inline only while they are quick: a statement that
outlasts the leash is stopped and run again on the scan threads, and goes there directly for a
while after; a quick one never pays the thread hop."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphsec.storage.sqlite.scans import Leash

SLOW = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000000) "
        "SELECT count(*) FROM n")
QUICK = "SELECT count(*) FROM t WHERE x < ?"
COUNTING = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "SELECT count(*) FROM n")


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(tmp_path / "leash.db", isolation_level=None)
    c.execute("CREATE TABLE t (x INTEGER)")
    c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    yield c
    c.close()


def test_quick_statements_run_inline_and_answer(conn: sqlite3.Connection) -> None:
    leash = Leash(seconds=1.0)
    assert leash.run(conn, [(QUICK, (10,)), ("SELECT x FROM t WHERE x = ?", (3,))]) == [
        [(10,)], [(3,)]]


def test_a_slow_statement_is_stopped_and_what_came_before_is_answered(
        conn: sqlite3.Connection) -> None:
    leash = Leash(seconds=0.005)
    assert leash.run(conn, [(QUICK, (10,)), (SLOW, ()), (QUICK, (20,))]) == [[(10,)]]
    # the connection is left as it was: no progress handler, statements run to their end
    assert conn.execute(QUICK, (50,)).fetchone() == (50,)


def test_a_statement_remembered_as_expensive_goes_to_the_threads_directly(
        conn: sqlite3.Connection) -> None:
    leash = Leash(seconds=0.005)
    assert leash.run(conn, [(SLOW, ())]) == []
    leash.remember([(SLOW, ())])
    calls: list[int] = []
    conn.set_trace_callback(lambda _: calls.append(1))
    assert leash.run(conn, [(SLOW, ())]) == []
    assert calls == [], "a statement remembered as expensive was run inline again"
    assert leash.run(conn, [(QUICK, (5,))]) == [[(5,)]]


def test_outlasting_the_leash_once_does_not_send_a_statement_away(
        conn: sqlite3.Connection) -> None:
    """A worker's first reads find a cold page cache; that alone must not cost a statement
    the thread hop for a minute."""
    leash = Leash(seconds=0.005)
    assert leash.run(conn, [(COUNTING, (50_000_000,))]) == []
    assert leash.run(conn, [(COUNTING, (10,))]) == [[(10,)]]


def test_each_statement_has_the_whole_leash(conn: sqlite3.Connection) -> None:
    """A page and its count each run inline for up to the leash: two that together outlast
    it are still answered inline (they went to the threads when they shared one deadline)."""
    import time

    def taking(seconds: float) -> int:  # a count that takes about ``seconds`` here
        n, took = 1_000, 0.0
        while took < seconds:
            n *= 2
            started = time.monotonic()
            conn.execute(COUNTING, (n,)).fetchall()
            took = time.monotonic() - started
        return n

    n = taking(0.05)
    leash = Leash(seconds=0.5)
    started = time.monotonic()
    assert leash.run(conn, [(COUNTING, (n,))] * 12) == [[(n,)]] * 12
    assert time.monotonic() - started > 0.5  # together past one leash, each well within it


def test_other_errors_are_not_taken_for_slowness(conn: sqlite3.Connection) -> None:
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        Leash(seconds=1.0).run(conn, [("SELECT * FROM missing", ())])


async def test_a_quick_filtered_page_and_count_never_reach_the_threads(tmp_path: Path) -> None:
    from graphsec.odata.filter import parse_filter
    from graphsec.odata.query import ListQuery, default_order
    from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
    from graphsec.storage.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "store.db", ENTITY_SETS)
    await store.open()
    try:
        for i in range(20):
            await store.create("t", SECURE_SCORES, {"id": f"s{i}", "currentScore": float(i),
                                                   "createdDateTime": "2024-03-19T15:21:00Z"})

        async def no_threads(statements: object) -> tuple[list[list[object]], float]:
            raise AssertionError("a quick statement was sent to the scan threads")

        store.scans.fetch_many = no_threads  # type: ignore[method-assign]
        query = ListQuery(order=default_order(SECURE_SCORES), limit=5, count=True,
                          filter=parse_filter("currentScore lt 12", SECURE_SCORE))
        page = await store.list("t", SECURE_SCORES, query)
        assert (len(page.docs), page.count) == (5, 12)
        assert await store.count("t", SECURE_SCORES, query) == 12
    finally:
        await store.close()


async def test_only_a_statement_that_runs_long_on_a_thread_is_remembered_as_expensive(
        tmp_path: Path) -> None:
    """A quick statement that waited for a busy scan thread is not expensive: remembered, it
    would skip the leash and pay the hop for a minute. One that runs long on the thread is."""
    import asyncio

    from graphsec.storage.sqlite import SQLiteStore
    from graphsec.storage.sqlite.scans import EXPENSIVE_SECONDS, ScanPool

    store = SQLiteStore(tmp_path / "store.db", ())
    await store.open()
    try:
        store._scans = ScanPool(tmp_path / "store.db", 0, threads=1)
        store._leash = Leash(seconds=0.0)  # every statement outlasts it: all go to the thread
        quick = [(COUNTING, (20_000,))]  # a few milliseconds, past the leash of 0 s
        busy = asyncio.ensure_future(store.scans.fetch_many([(COUNTING, (3_000_000,))]))
        await asyncio.sleep(0.01)  # the thread is taken: the quick one waits for it
        started = asyncio.get_running_loop().time()
        assert await store._may_scan(quick) == [[(20_000,)]]
        waited = asyncio.get_running_loop().time() - started
        (counted,), ran = await busy
        assert counted == [(3_000_000,)]
        assert ran > EXPENSIVE_SECONDS  # the wait was real
        assert waited > EXPENSIVE_SECONDS, waited
        assert store._leash._slow == {}  # waiting is not running

        slow = [(COUNTING, (3_000_001,))]
        await store._may_scan(slow)
        assert set(store._leash._slow) == {COUNTING}
    finally:
        await store.close()
