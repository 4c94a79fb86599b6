"""A SQLite write that cannot get the write lock within the busy timeout (another process holds
it: a bulk load, another tool's long transaction) is a 503 the client can retry, not a 500; reads
go on meanwhile (WAL), and nothing is half-written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from graphsec.errors import ServiceUnavailable
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
from graphsec.schema.values import check_body, complete
from graphsec.storage.sqlite import SQLiteStore
from tests.conftest import score

T = "11111111-1111-1111-1111-111111111111"
ORDER = (OrderKey(("createdDateTime",), True), OrderKey(("id",), True))


def doc(entity_id: str) -> dict[str, object]:
    return complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id=entity_id), "create"))


async def test_writes_blocked_by_another_writer_are_503_and_reads_go_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "busy.db", ENTITY_SETS, busy_timeout_ms=50)
    await store.open()
    try:
        await store.create(T, SECURE_SCORES, doc("s1"))
        other = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        other.execute("UPDATE secure_scores SET current_score = 1 WHERE id = 's1'")
        for write in (lambda: store.create(T, SECURE_SCORES, doc("s2")),
                      lambda: store.update(T, SECURE_SCORES, "s1",
                                           lambda d: {**d, "currentScore": 2.0}),
                      lambda: store.delete(T, SECURE_SCORES, "s1")):
            with pytest.raises(ServiceUnavailable) as info:
                await write()
            assert info.value.status == 503
            assert info.value.headers["Retry-After"] == "5"
        assert await store.get(T, SECURE_SCORES, "s1") is not None  # reads go on
        assert await store.count(T, SECURE_SCORES, ListQuery(order=ORDER, limit=1)) == 1
        other.execute("COMMIT")
        other.close()
        await store.create(T, SECURE_SCORES, doc("s2"))  # the lock is free again
        assert await store.delete(T, SECURE_SCORES, "s1")
        assert await store.count(T, SECURE_SCORES, ListQuery(order=ORDER, limit=1)) == 1
        assert store.conn.in_transaction is False
    finally:
        await store.close()
