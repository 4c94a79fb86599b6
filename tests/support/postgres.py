"""PostgreSQL databases for the tests: made, migrated, emptied and dropped here.

Most PostgreSQL tests share one migrated database per session (``tests/conftest.py``'s
``postgres_url``), emptied before each test that uses it (:func:`empty`); a test that needs a
database of its own (a real server process, a migration from an older revision) gets one from
:func:`fresh_postgres_database`, copied from a template migrated once per session.

Why the tests are not isolated by a transaction rolled back at their end, as a suite whose code
runs on the test's own connection can be: the code under test here opens its connections itself
and commits on them. A store reads and writes through its pool (several connections at once, and
the point reader's dedicated one); migrations run on Alembic's own engine; a test checks what
another connection sees. An outer transaction on one connection would hold none of their
writes, and the pool refuses a connection handed back inside a transaction by design
(``tests/storage/test_pgpool.py``). So the isolation is by state instead: each test starts from
empty tables (or a database of its own) and builds its own data.

What that costs, measured over ``tests/api`` on PostgreSQL (319 resets): a TRUNCATE of every
table, median 57 ms a test; truncating only the tables that hold rows (:func:`empty`), 21 ms; a
database per test copied from a template, 65 ms (CREATE and DROP, without the test's own
connections). DELETE was faster still (15 ms) but hands the next test the dead rows and table
sizes of the last one, which the planner sees (``tests/storage/test_plans.py`` checks plans). A
database of its own, copied from a template, takes 65 ms where creating and migrating one took
520 ms.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Generator
from typing import Any

import pytest

from graphsec.schema.security import ENTITY_SETS
from graphsec.storage import migrate
from graphsec.storage.sql.tables import build_tables

PG_ADMIN_URL = os.environ.get("GRAPHSEC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

TABLES: tuple[str, ...] = tuple(build_tables(ENTITY_SETS)[0].tables)
"""Every table of graphsec's schema: one per entity set of the catalogue and those beside them
(``history``), as the stores declare them (tests/storage/test_migrations.py checks that the
migrations build exactly these)."""

_EMPTY = f"DO $$ BEGIN LOCK {', '.join(TABLES)} IN SHARE MODE; " + " ".join(
    f"IF EXISTS (SELECT FROM {table}) THEN TRUNCATE {table}; END IF;" for table in TABLES
) + " END $$"
"""One statement that truncates the tables holding rows and leaves the others alone (a
TRUNCATE costs new files for the table, its indexes and its TOAST table, empty or not). The
lock first waits for any write still under way, as a TRUNCATE of every table would."""


async def value(url: str, sql: str) -> Any:
    """The first column of the first row ``sql`` returns, on a connection of its own."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def execute(sql: list[str], url: str = PG_ADMIN_URL) -> None:
    """Run ``sql``, one statement after the other, on a connection of its own."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


async def empty(url: str) -> None:
    """Empty every table of the migrated database ``url`` (the schema stays)."""
    await execute([_EMPTY], url)


def _database_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _create(sql: str) -> None:
    """Run ``CREATE DATABASE …``; skip the test with the reason when no server answers,
    except on CI, where that is a failure."""
    try:
        asyncio.run(execute([sql]))
    except (TimeoutError, OSError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must be up on CI ({PG_ADMIN_URL}): {exc}")
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL}: {exc}")


def _drop(name: str) -> None:
    asyncio.run(execute([f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"]))


class Templates:
    """Databases migrated to a revision once, copied for every test that wants one
    (``CREATE DATABASE … TEMPLATE``: a file copy, where migrating runs every revision's DDL)."""

    def __init__(self) -> None:
        self.made: dict[str, str] = {}
        """revision → the template database at it"""

    def at(self, revision: str) -> str:
        """The name of the template at ``revision`` (made on the first call)."""
        if revision not in self.made:
            name = f"graphsec_template_{uuid.uuid4().hex[:12]}"
            _create(f"CREATE DATABASE {name}")
            try:
                migrate.upgrade(_database_url(name), revision=revision)
            except BaseException:
                _drop(name)
                raise
            self.made[revision] = name
        return self.made[revision]

    def drop(self) -> None:
        """Drop every template made (at the end of the session)."""
        while self.made:
            _drop(self.made.popitem()[1])


TEMPLATES = Templates()
"""This test session's templates (``tests/conftest.py`` drops them at its end)."""


def fresh_postgres_database(revision: str | None = "head") -> Generator[str, None, None]:
    """Create a PostgreSQL database of its own, yield its URL, drop it afterwards.

    Its schema is at ``revision`` (the newest by default; None: no schema at all, not even
    Alembic's version table). Skips with the reason when no server answers, except on CI,
    where that is a failure."""
    name = f"graphsec_test_{uuid.uuid4().hex[:12]}"
    template = "" if revision is None else f" TEMPLATE {TEMPLATES.at(revision)}"
    _create(f"CREATE DATABASE {name}{template}")
    try:
        yield _database_url(name)
    finally:
        _drop(name)
