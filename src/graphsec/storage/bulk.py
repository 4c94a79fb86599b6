"""Bulk writes for loading sample data: many rows per transaction, upserting by (tenant, id).

Used by ``graphsec seed`` from worker processes, each with a connection of its own; loading the
same data twice leaves one copy of it. A writer is made for a catalogue of entity sets
(``graphsec.schema.security.ENTITY_SETS``) and writes the sets it declares.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from graphsec.schema.types import EntitySet
from graphsec.storage.sql.items import Written
from graphsec.storage.sql.statements import Compiled, encode_doc, row_values
from graphsec.storage.sql.tables import EntityTable, build_tables

Doc = dict[str, Any]


class BulkWriter(Protocol):
    def write(self, entity_set: EntitySet, docs: Iterable[Doc]) -> int:
        """Upsert ``docs`` (complete, valid documents carrying ``azureTenantId``) in one
        transaction; return how many were written."""

    def analyze(self) -> None:
        """Refresh the planner's statistics after a bulk load."""

    def close(self) -> None: ...


def _upserts(tables: dict[str, EntityTable], dialect: Dialect, module: Any) -> dict[str, Compiled]:
    out = {}
    for name, et in tables.items():
        stmt = module.insert(et.table).values({c.name: bindparam(c.name) for c in et.table.columns})
        changes = {c.name: stmt.excluded[c.name] for c in et.table.columns
                   if c.name not in ("tenant_id", "id")}
        out[name] = Compiled(stmt.on_conflict_do_update(index_elements=["tenant_id", "id"],
                                                        set_=changes), dialect)
    return out


def _rows(compiled: Compiled, et: EntityTable, docs: Iterable[Doc],
          dialect: str) -> list[list[Any]]:
    rows = []
    for doc in docs:
        tenant = doc["azureTenantId"]
        rows.append(compiled.params(row_values(et, tenant, doc["id"], doc, encode_doc(doc),
                                               dialect)))
    return rows


def analyze(tables: dict[str, EntityTable], dialect: Dialect) -> TextClause:
    """PostgreSQL's ``ANALYZE`` of the entity sets' tables. A utility statement, which
    SQLAlchemy Core has no construct for: its text names only the tables the catalogue
    declares, each quoted by the dialect where an identifier needs it, and no parameters."""
    quote = dialect.identifier_preparer.quote
    return text(f"ANALYZE {', '.join(quote(et.table.name) for et in tables.values())}")


class SQLiteBulk:
    def __init__(self, path: str, entity_sets: tuple[EntitySet, ...]) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=60)
        if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            # switching needs the file to itself: graphsec seed does it before its workers start
            self.conn.execute("PRAGMA journal_mode=WAL")
        # a bulk load is repeatable: trade durability against an OS crash (not a process
        # crash, which WAL survives either way) for ~30 % faster writes
        self.conn.execute("PRAGMA synchronous=OFF")
        self.tables = build_tables(entity_sets)[1]
        dialect = sqlite.dialect(paramstyle="qmark")
        self.upserts = _upserts(self.tables, dialect, sqlite)
        self.written = Written(self.tables, lambda stmt: Compiled(stmt, dialect))

    def write(self, entity_set: EntitySet, docs: Iterable[Doc]) -> int:
        compiled = self.upserts[entity_set.name]
        docs = list(docs)
        rows = _rows(compiled, self.tables[entity_set.name], docs, "sqlite")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany(compiled.sql, rows)
            self.written.keep(self.conn, entity_set.name, [(d["azureTenantId"], d) for d in docs])
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return len(rows)

    def analyze(self) -> None:
        # Without statistics SQLite prefers any covering index over one that reads fewer rows:
        # ``id in (…)`` read every id of the tenant instead of probing the index of lower(id)
        # (migration 0007). ``analysis_limit`` samples each index, so that this takes
        # milliseconds at any size; the statistics are proportions, which stay true as a
        # store grows.
        self.conn.execute("PRAGMA analysis_limit=1000")
        quote = sqlite.dialect().identifier_preparer.quote
        for et in self.tables.values():  # SQLite's ANALYZE takes one name
            self.conn.execute(f"ANALYZE {quote(et.table.name)}")

    def close(self) -> None:
        self.conn.close()


class PostgresBulk:
    def __init__(self, url: str, entity_sets: tuple[EntitySet, ...]) -> None:
        import asyncpg

        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(asyncpg.connect(url))
        from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

        self.dialect: Dialect = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
        self.tables = build_tables(entity_sets)[1]
        self.upserts = _upserts(self.tables, self.dialect, postgresql)

    def write(self, entity_set: EntitySet, docs: Iterable[Doc]) -> int:
        compiled = self.upserts[entity_set.name]
        rows = _rows(compiled, self.tables[entity_set.name], docs, "postgresql")

        async def run() -> None:
            async with self.conn.transaction():
                await self.conn.executemany(compiled.sql, rows)

        self.loop.run_until_complete(run())
        return len(rows)

    def analyze(self) -> None:
        # without statistics the planner guesses ~90 rows a tenant and sorts a bitmap scan
        # instead of reading the default-order index: 10 ms instead of 1 ms for a 100-row page
        # at 1,000 rows a tenant. Autovacuum would get there a minute or so later.
        statement = Compiled(analyze(self.tables, self.dialect), self.dialect)
        self.loop.run_until_complete(self.conn.execute(statement.sql))

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def open_bulk(database_url: str, entity_sets: tuple[EntitySet, ...]) -> BulkWriter:
    """A bulk writer of ``entity_sets`` for a graphsec database URL whose schema is in place."""
    if database_url.startswith("sqlite:///"):
        return SQLiteBulk(database_url[len("sqlite:///"):], entity_sets)
    return PostgresBulk(database_url, entity_sets)
