"""The SQLite store: stdlib ``sqlite3``; bounded statements inline, the rest on a leash.

Inline on the event loop run the statements whose cost is bounded by construction: reads and
writes of one entity by primary key (documents are bounded in size), and the default list
without ``$filter``, ``$orderby``, ``$skip`` or ``$count``, which reads one range of the
default-order index (keyset paging included) of at most ``$top`` + 1 ≤ 1,000 rows. Why inline:
a primary-key read on a local SQLite file takes tens of microseconds, less than a hop to a
thread pool costs; measured on this machine kind, inline reads serve ~25k requests/s against
~10k through a dedicated executor and ~1.4k through SQLAlchemy's async engine on aiosqlite
(docs/design.md, "Storage: why stdlib sqlite3 …").

Every other list and every count may scan (a lambda filter's cost multiplies with the
collections it ranges over). It runs inline on a leash (``scans.Leash``: stopped after
``scans.INLINE_SECONDS``) and, when it outlasts that, on the threads of ``scans.ScanPool``,
within the time budget (``statement_timeout_ms``; past it, 504 ``GatewayTimeout``), so that no
request holds the event loop, and with it every other request, for longer than a bounded read
or the leash. Most such statements finish inline long before the leash, and a thread hop costs
them more than their own work (docs/design.md). Statements by primary key have no budget:
stopping one would not give back the time it held the loop, and none of them can scan.
SQLAlchemy still defines the tables and builds every statement; statements are compiled to
SQLite's SQL.

WAL journal, ``synchronous=NORMAL`` (a committed write survives a crash of the process; only
an operating-system crash can lose the last commits) and a busy timeout so that several worker
processes can write the same file. Writes of entities that arrive together share a transaction
(``commits.GroupCommit``), each in its own savepoint, and are answered after its commit; the
log is checkpointed on a thread (``commits.Checkpointer``), not by the commits.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.dialects import sqlite as sqlite_dialect

from graphsec.errors import ServiceUnavailable
from graphsec.odata.query import ListQuery, default_order
from graphsec.schema.types import EntitySet
from graphsec.storage import migrate
from graphsec.storage.base import Admit, AppRegistration, Change, ConnectionUse, Page, changed
from graphsec.storage.readiness import NOT_OPEN, failure_reason, schema_reason
from graphsec.storage.sql.items import (
    BUILDS,
    ItemRows,
    Written,
    build_from,
    build_step,
    compiled_builds,
    refresh_step,
)
from graphsec.storage.sql.listing import StatementCache, split_page
from graphsec.storage.sql.registrations import from_row, insert_values, registration_statements
from graphsec.storage.sql.statements import (
    Compiled,
    conflict,
    encode_doc,
    fixed_statements,
    row_values,
)
from graphsec.storage.sql.tables import EntityTable, ItemTable, build_tables
from graphsec.storage.sqlite.commits import BACKSTOP_PAGES, Checkpointer, GroupCommit
from graphsec.storage.sqlite.reader import PointReader, ReaderUnavailable, open_reader
from graphsec.storage.sqlite.scans import (
    EXPENSIVE_SECONDS,
    SCAN_THREADS,
    Leash,
    ScanPool,
    failed,
)

DIALECT = "sqlite"

Statements = list[tuple[str, Any]]
Rows = list[list[Any]]


def _enable_wal(conn: sqlite3.Connection, seconds: float = 10.0) -> None:
    """Switch the file to WAL (it stays so). Server workers open a new file at the same moment:
    when two of them try the switch together, SQLite answers one "database is locked" at once,
    without waiting on the busy timeout (both hold a shared lock and want an exclusive one),
    so that one steps back and tries again; by then the file is in WAL."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _busy(exc: sqlite3.OperationalError) -> Exception:
    """A write that waited the whole busy timeout for another process's lock (a bulk load, a
    long transaction of another tool) is a 503 the client can retry; other errors stay."""
    if "locked" in str(exc) or "busy" in str(exc):
        return ServiceUnavailable("The database is busy with another writer; retry in a few "
                                  "seconds.")
    return exc


class SQLiteStore:
    """:class:`graphsec.storage.base.Store` on a SQLite file, for the entity sets of the
    catalogue ``entity_sets``."""

    def __init__(self, path: Path, entity_sets: tuple[EntitySet, ...], *,
                 busy_timeout_ms: int = 10_000, cache_kib: int = 64 * 1024,
                 statement_timeout_ms: int = 10_000, scan_threads: int = SCAN_THREADS,
                 item_row_builds: int = BUILDS) -> None:
        self.path = path
        self.statement_timeout_ms = statement_timeout_ms
        """How long a statement that can scan may run before it is stopped (0: no limit)."""
        self.scan_threads = scan_threads
        self.busy_timeout_ms = busy_timeout_ms
        """How long a write waits for another process's write lock before a 503."""
        self.cache_kib = cache_kib
        """KiB of pages each connection keeps (0: SQLite's default, 2 MiB). The default was
        smaller than one tenant's 1,000 scores (~8 MB of pages with their overflow pages), so
        the benchmark's reads went to the file. With 64 MiB, two side-by-side runs at 1M gave
        GET by id 64.0 → 73.3 % and 62.9 → 65.1 % of the bare app, filter + count 77.5 → 83.8 %
        and 69.5 → 81.7 % (bench/RESULTS.md)."""
        self.metadata, self.tables = build_tables(entity_sets)
        self._dialect = sqlite_dialect.dialect(paramstyle="qmark")
        self._conn: sqlite3.Connection | None = None
        self._reader: PointReader | None = None
        self._scans: ScanPool | None = None
        self._commits: GroupCommit | None = None
        self._checkpointer: Checkpointer | None = None
        self._leash = Leash()
        self._inline_orders = {name: default_order(et.entity_set)
                               for name, et in self.tables.items()}
        self._plain: dict[tuple[str, str], Compiled] = {}
        self._statements = StatementCache(self._dialect, DIALECT)
        self._registrations = {op: Compiled(stmt, self._dialect) for op, stmt
                               in registration_statements(self.metadata).items()}
        self._builds = compiled_builds(self.tables, DIALECT,
                                       lambda stmt: Compiled(stmt, self._dialect))
        self.items = ItemRows(self._build_chunk, self._items_complete, item_row_builds,
                              refresh=self._refresh_chunk)
        self._written = Written(self.tables, lambda stmt: Compiled(stmt, self._dialect))
        """The item rows of collections lambdas filter on (``storage/sql/items.py``)."""

    async def open(self) -> None:
        self.open_sync()

    def open_sync(self) -> None:
        """Create the file, bring its schema to the newest migration, and connect (idempotent)."""
        if self._conn is not None:
            return
        migrate.prepare_sqlite_file(self.path)  # 0600 before SQLite creates it (and -wal, -shm)
        url = f"sqlite:///{self.path}"
        if migrate.current(url) != migrate.head():
            migrate.upgrade(url)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        if self.cache_kib:
            conn.execute(f"PRAGMA cache_size={-int(self.cache_kib)}")  # negative: in KiB
        self._conn = conn
        for name, et in self.tables.items():
            for op, stmt in fixed_statements(et, DIALECT).items():
                if op != "get_for_update":  # BEGIN IMMEDIATE already holds the write lock
                    self._plain[(name, op)] = Compiled(stmt, self._dialect)
        self._reader = open_reader(self.path, self.cache_kib)  # after WAL: it opens read-only
        self._scans = ScanPool(self.path, self.statement_timeout_ms, self.cache_kib,
                               self.scan_threads)  # read-only too
        self._commits = GroupCommit(lambda: self.conn, _busy)
        conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        self._checkpointer = Checkpointer(str(self.path), self.busy_timeout_ms)

    async def close(self) -> None:
        await self.items.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._scans is not None:
            self._scans.close()
            self._scans = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def readiness(self, seconds: float) -> str | None:
        """The revision read on the writer's connection: a read of one row that WAL lets
        through whatever another process writes (``seconds`` cannot be exceeded by it)."""
        if self._conn is None:
            return NOT_OPEN
        try:
            row = self._conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                return failure_reason(exc, f"sqlite:///{self.path}")
            row = None
        except sqlite3.Error as exc:
            return failure_reason(exc, f"sqlite:///{self.path}")
        return schema_reason(row[0] if row else None)

    def connection_use(self) -> ConnectionUse:
        """The writer's and the reader's connections (idle between statements: they run on
        the event loop) and the scan threads' (in use while a statement runs there)."""
        if self._conn is None:
            return ConnectionUse(0, 0)
        running, opened = (self._scans.running, self._scans.opened) if self._scans else (0, 0)
        return ConnectionUse(running, 2 + opened - running)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.open_sync()
        assert self._conn is not None
        return self._conn

    def _run(self, name: str, op: str, values: dict[str, Any]) -> sqlite3.Cursor:
        c = self._plain[(name, op)]
        return self.conn.execute(c.sql, c.params(values))

    async def create(self, tenant: str, entity_set: EntitySet, doc: dict[str, Any],
                     admit: Admit | None = None) -> bytes:
        et = self.tables[entity_set.name]
        data = encode_doc(doc, admit)
        insert = self._plain[(entity_set.name, "insert")]
        params = insert.params(row_values(et, tenant, doc["id"], doc, data, DIALECT))

        def write(conn: sqlite3.Connection) -> bytes:
            try:
                conn.execute(insert.sql, params)
            except sqlite3.IntegrityError:
                raise conflict(et, doc["id"]) from None
            self._written.keep(conn, entity_set.name, [(tenant, doc)])
            return data

        return await self.commits.run(write)

    async def get(self, tenant: str, entity_set: EntitySet, entity_id: str) -> bytes | None:
        name = entity_set.name
        if self._reader is not None and self._conn is not None:
            get = self._plain[(name, "get")]  # parameters: tenant, id
            try:
                return self._reader.one(name, get.sql, tenant, entity_id)
            except (UnicodeEncodeError, ReaderUnavailable):
                pass  # not UTF-8 encodable, or a table it cannot see: sqlite3 tells
        row = self._run(name, "get", {"tenant": tenant, "id": entity_id}).fetchone()
        return None if row is None else bytes(row[0])

    async def update(
        self, tenant: str, entity_set: EntitySet, entity_id: str, change: Change,
        admit: Admit | None = None,
    ) -> bytes | None:
        name = entity_set.name
        et = self.tables[name]

        def write(conn: sqlite3.Connection) -> bytes | None:
            row = self._run(name, "get", {"tenant": tenant, "id": entity_id}).fetchone()
            if row is None:
                return None
            before = orjson.loads(row[0]) if et.items else None  # (a change may mutate its own)
            result = changed(change(orjson.loads(row[0])))
            doc = result.doc
            data = encode_doc(doc, admit)
            self._run(name, "update", row_values(et, tenant, entity_id, doc, data, DIALECT))
            self._written.keep(conn, name, [(tenant, doc)], before=before)
            if result.history:
                append = self._plain[(name, "append_history")]
                conn.executemany(append.sql, [
                    append.params({"tenant": tenant, "id": entity_id,
                                   "entry": encode_doc(e).decode()})
                    for e in result.history])
            return data

        return await self.commits.run(write)

    async def delete(self, tenant: str, entity_set: EntitySet, entity_id: str) -> bool:
        key = {"tenant": tenant, "id": entity_id}

        def write(conn: sqlite3.Connection) -> bool:
            deleted = self._run(entity_set.name, "delete", key).rowcount > 0
            if deleted:
                self._run(entity_set.name, "delete_history", key)
            return deleted

        return await self.commits.run(write)

    @property
    def commits(self) -> GroupCommit:
        """Where the writes of entities run: in transactions shared by the writes that arrive
        together (``commits.py``)."""
        if self._commits is None:
            self.open_sync()
        assert self._commits is not None
        return self._commits

    @property
    def scans(self) -> ScanPool:
        if self._scans is None:
            self.open_sync()
        assert self._scans is not None
        return self._scans

    async def list(self, tenant: str, entity_set: EntitySet, query: ListQuery) -> Page:
        et = self.tables[entity_set.name]
        if (query.filter is None and not query.count and not query.skip
                and query.order == self._inline_orders[entity_set.name]):
            statement = self._statements.page(et, tenant, query)
            rows = self.conn.execute(*statement).fetchall()  # one index range: see the module
            return Page(*split_page(rows, query.limit))
        ready = self.items.ready(tenant, et, query.filter)
        if not isinstance(ready, frozenset):
            ready = await ready
        statements = [self._statements.page(et, tenant, query, None, ready)]
        if query.count:
            statements.append(self._statements.total(et, tenant, query, ready))
        results = await self._may_scan(statements)
        docs, next_after = split_page(results[0], query.limit)
        return Page(docs, next_after, int(results[1][0][0]) if query.count else None)

    async def count(self, tenant: str, entity_set: EntitySet, query: ListQuery) -> int:
        et = self.tables[entity_set.name]
        ready = self.items.ready(tenant, et, query.filter)
        if not isinstance(ready, frozenset):
            ready = await ready
        statement = self._statements.total(et, tenant, query, ready)
        return int((await self._may_scan([statement]))[0][0][0])

    async def _items_complete(self, it: ItemTable, tenant: str) -> bool:
        state = self._builds[it.table.name].state
        row = self.conn.execute(state.sql, state.params({"tenant": tenant})).fetchone()
        return bool(row and row[1])

    async def _build_chunk(self, et: EntityTable, it: ItemTable, tenant: str) -> bool:
        """One transaction of a tenant's item rows (``items.py``), with the other writes."""
        c = self._builds[it.table.name]

        def work(conn: sqlite3.Connection) -> bool:
            after = build_from(conn.execute(c.state.sql, c.state.params(
                {"tenant": tenant})).fetchone())
            if after is None:
                return True
            insert, mark = build_step(tenant, after, conn.execute(
                c.next_ids.sql, c.next_ids.params({"tenant": tenant, "after": after})).fetchall())
            if insert is not None:
                conn.execute(c.insert.sql, c.insert.params(insert))
            conn.execute(c.mark.sql, c.mark.params(mark))
            return bool(mark["complete"])

        return await self.commits.run(work)

    async def _refresh_chunk(self, et: EntityTable, it: ItemTable, tenant: str) -> bool:
        """One transaction of a refresh of stale documents' item rows (``items.py``), with
        the other writes; True once none is left."""
        c = self._builds[it.table.name]
        if not self.conn.execute(c.stale.sql, c.stale.params({"tenant": tenant})).fetchone():
            return True  # most refreshes find nothing stale: one read, no write transaction

        def work(conn: sqlite3.Connection) -> bool:
            step = refresh_step(tenant, conn.execute(
                c.stale.sql, c.stale.params({"tenant": tenant})).fetchall())
            if step is None:
                return True
            for statement in (c.unmake, c.remake, c.clear):
                conn.execute(statement.sql, statement.params(step))
            return False

        return await self.commits.run(work)

    async def _may_scan(self, statements: Statements) -> Rows:
        """The rows of statements that may scan: inline each one that finishes within the
        leash (``scans.INLINE_SECONDS``); from the first that does not, on the scan threads,
        in one hop, within the budget."""
        try:
            results = self._leash.run(self.conn, statements)
        except sqlite3.OperationalError as exc:
            raise failed(exc, self.statement_timeout_ms) from None
        if len(results) == len(statements):
            return results
        rest = statements[len(results):]
        more, seconds = await self.scans.fetch_many(rest)
        if seconds > EXPENSIVE_SECONDS:
            self._leash.remember(rest)
        return results + more

    # app registrations (graphsec.storage.base.Registrations): by primary key, inline

    def _registration_sql(self, op: str, values: dict[str, Any]) -> sqlite3.Cursor:
        c = self._registrations[op]
        try:
            return self.conn.execute(c.sql, c.params(values))
        except sqlite3.OperationalError as exc:
            raise _busy(exc) from None

    async def add_registration(self, tenant: str, client_id: str, name: str,
                               secret_sha256: str | None, roles: tuple[str, ...],
                               certificates: tuple[str, ...]) -> None:
        self._registration_sql("insert", insert_values(tenant, client_id, name, secret_sha256,
                                                       roles, certificates))

    async def registration(self, tenant: str, client_id: str) -> AppRegistration | None:
        row = self._registration_sql("get", {"tenant": tenant, "client_id": client_id}
                                     ).fetchone()
        return None if row is None else from_row(row)

    async def registrations(self, tenant: str | None) -> tuple[AppRegistration, ...]:
        if tenant is None:
            rows = self._registration_sql("list", {}).fetchall()
        else:
            rows = self._registration_sql("list_tenant", {"tenant": tenant}).fetchall()
        return tuple(from_row(r) for r in rows)

    async def delete_registration(self, tenant: str, client_id: str) -> bool:
        key = {"tenant": tenant, "client_id": client_id}
        return self._registration_sql("delete", key).rowcount > 0

    async def has_registrations(self, tenant: str) -> bool:
        return self._registration_sql("any", {"tenant": tenant}).fetchone() is not None
