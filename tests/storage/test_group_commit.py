"""Writes that reach a SQLite store together share one transaction, each in its own savepoint:
they are all committed before any is answered, and a write that fails takes nothing of the
others with it (nor leaves any part of itself)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest

from graphsec.errors import Conflict, GraphError
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
from graphsec.schema.values import check_body, complete
from graphsec.storage.sqlite import SQLiteStore
from graphsec.storage.sqlite.commits import BACKSTOP_PAGES, CHECKPOINT_SECONDS, MAX_BATCH
from tests.conftest import score

T = "11111111-1111-1111-1111-111111111111"


def doc(entity_id: str, current: float = 1.0) -> dict[str, object]:
    return complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id=entity_id,
                                                                  currentScore=current), "create"))


def stored_ids(path: Path) -> set[str]:
    """What another connection sees: only committed rows."""
    other = sqlite3.connect(path)
    try:
        return {r[0] for r in other.execute("SELECT id FROM secure_scores")}
    finally:
        other.close()


async def test_concurrent_writes_share_a_transaction_and_are_committed_when_answered(
        tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", ENTITY_SETS)
    await store.open()
    try:
        n = 40
        await asyncio.gather(*(store.create(T, SECURE_SCORES, doc(f"s{i}")) for i in range(n)))
        assert stored_ids(tmp_path / "g.db") == {f"s{i}" for i in range(n)}
        assert store.commits.writes == n
        assert store.commits.transactions == 1  # all arrived in one turn of the loop

        before = store.commits.transactions
        for i in range(3):  # one at a time: each its own transaction, answered once committed
            await store.create(T, SECURE_SCORES, doc(f"alone{i}"))
            assert f"alone{i}" in stored_ids(tmp_path / "g.db")
        assert store.commits.transactions == before + 3
        assert store.conn.in_transaction is False
    finally:
        await store.close()


async def test_batches_are_bounded(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", ENTITY_SETS)
    await store.open()
    try:
        n = MAX_BATCH * 2 + 5
        await asyncio.gather(*(store.create(T, SECURE_SCORES, doc(f"s{i}")) for i in range(n)))
        assert store.commits.transactions == 3
        assert len(stored_ids(tmp_path / "g.db")) == n
    finally:
        await store.close()


async def test_a_failing_write_is_rolled_back_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", ENTITY_SETS)
    await store.open()
    try:
        await store.create(T, SECURE_SCORES, doc("taken", 5.0))

        def refuse(stored: dict[str, object]) -> dict[str, object]:
            raise GraphError("refused by the change")

        results = await asyncio.gather(
            store.create(T, SECURE_SCORES, doc("a")),
            store.create(T, SECURE_SCORES, doc("taken", 9.0)),  # the id is in use: 409
            store.update(T, SECURE_SCORES, "taken", refuse),
            store.update(T, SECURE_SCORES, "taken", lambda d: {**d, "currentScore": 7.0}),
            store.create(T, SECURE_SCORES, doc("b")),
            return_exceptions=True)
        assert store.commits.transactions == 2  # the first create, then these five together
        assert isinstance(results[1], Conflict)
        assert isinstance(results[2], GraphError)
        assert not isinstance(results[0], BaseException)
        assert not isinstance(results[3], BaseException)
        assert stored_ids(tmp_path / "g.db") == {"taken", "a", "b"}
        kept = await store.get(T, SECURE_SCORES, "taken")
        assert kept is not None
        assert b'"currentScore":7.0' in kept  # the update after the refusal
    finally:
        await store.close()


async def test_the_part_a_write_did_before_failing_is_undone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", ENTITY_SETS)
    await store.open()
    try:
        await store.create(T, SECURE_SCORES, doc("x"))

        def half(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM secure_scores WHERE id = 'x'")
            raise RuntimeError("failed after its first statement")

        def whole(conn: sqlite3.Connection) -> int:
            return conn.execute("UPDATE secure_scores SET current_score = 3 WHERE id = 'x'"
                                ).rowcount

        outcome = await asyncio.gather(store.commits.run(half), store.commits.run(whole),
                                       return_exceptions=True)
        assert isinstance(outcome[0], RuntimeError)
        assert outcome[1] == 1
        assert stored_ids(tmp_path / "g.db") == {"x"}

        with pytest.raises(RuntimeError):  # alone in its transaction: rolled back whole
            await store.commits.run(half)
        assert stored_ids(tmp_path / "g.db") == {"x"}
        assert store.conn.in_transaction is False
    finally:
        await store.close()


async def test_a_write_whose_caller_left_before_the_commit_is_not_run(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "g.db", ENTITY_SETS)
    await store.open()
    try:
        left = asyncio.ensure_future(store.create(T, SECURE_SCORES, doc("gone")))
        stays = asyncio.ensure_future(store.create(T, SECURE_SCORES, doc("here")))
        await asyncio.sleep(0)  # both are waiting for the commit
        left.cancel()
        await stays
        assert stored_ids(tmp_path / "g.db") == {"here"}
    finally:
        await store.close()


async def test_the_log_is_checkpointed_by_a_thread_not_by_the_commits(tmp_path: Path) -> None:
    """The writer's connection leaves checkpoints to the checkpointer thread; the committed
    rows reach the database file itself (not only the log) within moments."""
    store = SQLiteStore(tmp_path / "g.db", ENTITY_SETS)
    await store.open()
    try:
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
        await asyncio.gather(*(store.create(T, SECURE_SCORES, doc(f"s{i}")) for i in range(50)))
        assert (tmp_path / "g.db-wal").stat().st_size > 0
        copied: set[str] = set()
        for _ in range(100):
            await asyncio.sleep(CHECKPOINT_SECONDS / 2)
            shutil.copy(tmp_path / "g.db", tmp_path / "main-file-only.db")  # without the log
            copied = stored_ids(tmp_path / "main-file-only.db")
            if len(copied) == 50:
                break
        assert copied == {f"s{i}" for i in range(50)}
    finally:
        await store.close()
