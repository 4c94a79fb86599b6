"""PostgreSQL reads cost one round trip each: a read is one statement, and the connection pool
does not reset a connection's session after every use (asyncpg's default sends
``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` each time it takes one back).

Counted on the client's side, statement by statement (``pg_statements``:
``tests/support/statements.py``), whichever way the store reads by id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from graphsec.errors import BadRequest, Conflict
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import ENTITY_SETS, SECURE_SCORE, SECURE_SCORES
from graphsec.schema.values import check_body, complete
from graphsec.storage.postgres import PostgresStore
from tests.conftest import score
from tests.support.postgres import empty
from tests.support.statements import StatementCounter

TENANT = "11111111-1111-1111-1111-111111111111"
ROUNDS = 20
ORDER = (OrderKey(("createdDateTime",), True), OrderKey(("id",), True))


async def test_reads_take_one_round_trip_each(postgres_url: str, pg_reads: str,
                                              pg_statements: StatementCounter) -> None:
    await empty(postgres_url)
    store = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2, reads=pg_reads)
    await store.open()
    try:
        for i in range(3):
            doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id=f"r{i}"), "create"))
            await store.create(TENANT, SECURE_SCORES, doc)
        # the first page fetches the documents it does not hold yet, by design a second
        # statement; from then on a page is one statement with its count
        await store.list(TENANT, SECURE_SCORES, ListQuery(order=ORDER, limit=2, count=True))

        sent = []
        for i in range(ROUNDS):
            got, n_get = await pg_statements.of(store.get(TENANT, SECURE_SCORES, f"r{i % 3}"))
            assert got is not None
            page, n_page = await pg_statements.of(store.list(
                TENANT, SECURE_SCORES, ListQuery(order=ORDER, limit=2, count=True)))
            assert page.count == 3
            assert len(page.docs) == 2
            total, n_count = await pg_statements.of(
                store.count(TENANT, SECURE_SCORES, ListQuery(order=ORDER, limit=1)))
            assert total == 3
            sent.append((n_get, n_page, n_count))
    finally:
        await store.close()

    # a session reset after every use would make each 2, a separate count statement the page 2
    assert sent == [(1, 1, 1)] * ROUNDS


async def test_an_update_is_two_statements_and_concurrent_ones_lose_nothing(
        postgres_url: str, pg_statements: StatementCounter) -> None:
    """An update reads the document with its version and writes where the version is still
    the one read: two statements, without BEGIN and COMMIT. Writers that come between each
    other write nothing, read again, and in the end take the row's lock: every change of 30
    concurrent read-modify-writes of one document is there."""
    await empty(postgres_url)
    store = PostgresStore(postgres_url, ENTITY_SETS, pool_size=8)
    await store.open()
    try:
        doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id="u", currentScore=0.0),
                                                "create"))
        await store.create(TENANT, SECURE_SCORES, doc)

        def plus_one(stored: dict[str, object]) -> dict[str, object]:
            return {**stored, "currentScore": float(stored["currentScore"]) + 1}  # type: ignore[arg-type]

        written, n = await pg_statements.of(store.update(TENANT, SECURE_SCORES, "u", plus_one))
        assert written is not None
        assert b'"currentScore":1.0' in written
        assert n == 2

        await asyncio.gather(*(store.update(TENANT, SECURE_SCORES, "u", plus_one)
                               for _ in range(30)))
        stored = await store.get(TENANT, SECURE_SCORES, "u")
        assert stored is not None
        assert orjson.loads(stored)["currentScore"] == 31.0
        missing, _ = await pg_statements.of(store.update(TENANT, SECURE_SCORES, "nope", plus_one))
        assert missing is None
    finally:
        await store.close()


async def test_an_update_of_a_held_document_is_one_statement_and_never_stale(
        postgres_url: str, pg_statements: StatementCounter) -> None:
    """An update of a document the cache holds (from a read, or from the last update) writes
    where the row still has the held version: one statement. When another worker wrote in
    between, that writes nothing and the update reads the row anew: the other's change is
    kept, and a change that refuses the held document is decided on the fresh one."""
    await empty(postgres_url)
    store = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2)
    other = PostgresStore(postgres_url, ENTITY_SETS, pool_size=2)  # another worker
    await store.open()
    await other.open()
    try:
        doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id="h", currentScore=0.0),
                                                "create"))
        await store.create(TENANT, SECURE_SCORES, doc)

        def plus(n: float) -> Callable[[dict[str, Any]], dict[str, Any]]:
            return lambda stored: {**stored, "currentScore": stored["currentScore"] + n}

        _, first = await pg_statements.of(store.update(TENANT, SECURE_SCORES, "h", plus(1)))
        _, second = await pg_statements.of(store.update(TENANT, SECURE_SCORES, "h", plus(1)))
        written, third = await pg_statements.of(store.update(TENANT, SECURE_SCORES, "h", plus(1)))
        assert (first, second, third) == (2, 1, 1)
        assert written is not None
        assert orjson.loads(written)["currentScore"] == 3.0

        await other.update(TENANT, SECURE_SCORES, "h", plus(100))  # this store's copy is stale
        written, n = await pg_statements.of(store.update(TENANT, SECURE_SCORES, "h", plus(1)))
        assert written is not None
        assert orjson.loads(written)["currentScore"] == 104.0  # nothing of the other's lost
        assert n == 3  # the held version wrote nothing; then read and write

        await other.update(TENANT, SECURE_SCORES, "h", plus(1000))

        def only_above_1000(stored: dict[str, Any]) -> dict[str, Any]:
            if stored["currentScore"] < 1000:
                raise BadRequest("currentScore is below 1000")
            return {**stored, "comment": "checked"}

        # the held document (104) is refused, the stored one (1104) is not
        written = await store.update(TENANT, SECURE_SCORES, "h", only_above_1000)
        assert written is not None
        assert orjson.loads(written)["currentScore"] == 1104.0
        stored = await other.get(TENANT, SECURE_SCORES, "h")
        assert stored is not None
        assert orjson.loads(stored)["currentScore"] == 1104.0
    finally:
        await store.close()
        await other.close()


async def test_creates_together_are_one_statement_and_a_taken_id_fails_alone(
        postgres_url: str) -> None:
    """Creates that arrive together are one INSERT; a taken id (in the store, or twice in the
    batch) is a 409 for that create only; a NUL character, which PostgreSQL cannot store, is a
    400 for its own create and never reaches the batch."""
    await empty(postgres_url)
    store = PostgresStore(postgres_url, ENTITY_SETS, pool_size=4)
    await store.open()

    def doc(entity_id: str, **extra: object) -> dict[str, object]:
        return complete(SECURE_SCORE, check_body(SECURE_SCORE, score(id=entity_id, **extra),
                                                 "create"))

    try:
        await store.create(TENANT, SECURE_SCORES, doc("taken"))
        inserts = store._inserts["secureScores"]  # what was sent, statement by statement
        before = inserts.statements
        results = await asyncio.gather(
            *(store.create(TENANT, SECURE_SCORES, doc(f"b{i}")) for i in range(20)),
            store.create(TENANT, SECURE_SCORES, doc("taken")),
            store.create(TENANT, SECURE_SCORES, doc("twice")),
            store.create(TENANT, SECURE_SCORES, doc("twice")),
            store.create(TENANT, SECURE_SCORES,
                         doc("nul", vendorInformation={"provider": "a\x00b", "vendor": "v"})),
            return_exceptions=True)
        assert all(isinstance(r, bytes) for r in results[:20])
        assert isinstance(results[20], Conflict)
        assert sorted(type(r).__name__ for r in results[21:23]) == ["Conflict", "bytes"]
        assert isinstance(results[23], BadRequest)
        assert inserts.statements - before == 2  # the batch, then the second "twice"
        total = await store.count(TENANT, SECURE_SCORES, ListQuery(order=ORDER, limit=1))
        assert total == 22  # taken, b0…b19, twice
    finally:
        await store.close()
