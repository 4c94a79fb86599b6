"""PostgreSQL reads cost one round trip each: a read is one statement, and the connection pool
does not reset a connection's session after every use (asyncpg's default sends
``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` each time it takes one back).

Counted with the server's own figures: every statement outside a transaction block commits one
transaction in ``pg_stat_database``.
"""

from __future__ import annotations

import asyncio
import time

from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import SECURE_SCORE
from graphsec.schema.values import check_body, complete
from graphsec.storage.postgres import PostgresStore
from tests.conftest import TABLES, _pg, _pg_value, score

TENANT = "11111111-1111-1111-1111-111111111111"
READS = 60


async def _commits(url: str) -> int:
    return int(await _pg_value(
        url, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))


async def _settled_commits(url: str, at_least: int) -> int:
    """The counter once the closed connections' statistics have arrived: a backend reports
    them when it exits, which may be a moment after the client hung up, and an idle one at
    most once a second (PostgreSQL 15). Each reading is a statement of its own, so it waits
    rather than polls once the counter has reached ``at_least``."""
    deadline = time.monotonic() + 10
    value = await _commits(url)
    while value < at_least and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        value = await _commits(url)
    await asyncio.sleep(1.2)
    return await _commits(url)


async def test_reads_take_one_round_trip_each(postgres_url: str) -> None:
    await _pg([f"TRUNCATE {', '.join(TABLES)}"], postgres_url)
    store = PostgresStore(postgres_url, pool_size=2)
    await store.open()
    for i in range(3):
        doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id=f"r{i}"), "create"))
        await store.create(TENANT, "secureScores", doc)
    await store.close()
    before = await _settled_commits(postgres_url, 0)

    store = PostgresStore(postgres_url, pool_size=2)
    await store.open()  # one statement: the schema revision check
    order = (OrderKey(("createdDateTime",), True), OrderKey(("id",), True))
    for i in range(READS // 3):
        assert await store.get(TENANT, "secureScores", f"r{i % 3}") is not None
        page = await store.list(TENANT, "secureScores", ListQuery(order=order, limit=2, count=True))
        assert page.count == 3  # page and count: one statement
        assert len(page.docs) == 2
        assert await store.count(TENANT, "secureScores", ListQuery(order=order, limit=1)) == 3
    await store.close()
    after = await _settled_commits(postgres_url, before + READS + 1)

    # READS statements, the revision check, each new connection's server check (the pool's
    # and the reads' by id), and this test's own few reads of the counter; a session reset
    # after every use would double it, a separate count statement add READS / 3
    assert READS + 1 <= after - before <= READS + 14, (before, after)
