"""The state store on SQLite: stdlib ``sqlite3``, each operation on a thread of its own with a
connection of its own, so that the event loop of a worker serving requests is not held."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from typing import Any

from graphsec.schema.types import EntitySet
from graphsec.storage.state import Counts, Entry
from graphsec.storage.state.statements import APP_REGISTRATIONS, SetStatements, Statements, batch


class SQLiteState:
    """:class:`graphsec.storage.state.StateStore` on the SQLite file at ``path``."""

    def __init__(self, path: str, entity_sets: tuple[EntitySet, ...]) -> None:
        self.path = path
        self.sql = Statements(entity_sets, "sqlite")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30,
                               check_same_thread=False)
        # as for `graphsec seed`: an import can be run again, so an OS crash may cost its
        # last transactions (a crash of the process cannot: WAL)
        conn.execute("PRAGMA synchronous=OFF")
        return conn

    def _run(self, work: Any) -> Any:
        conn = self._connect()
        try:
            return work(conn)
        finally:
            conn.close()

    async def counts(self) -> Counts:
        def work(conn: sqlite3.Connection) -> Counts:
            out: Counts = {}
            names = list(self.sql.sets)
            for name, s in self.sql.sets.items():
                for tenant, n in conn.execute(s.counts.sql):
                    out.setdefault(tenant, dict.fromkeys(names, 0))[name] = n
            return dict(sorted(out.items()))

        result: Counts = await asyncio.to_thread(self._run, work)
        return result

    async def reset(self, tenant: str | None, apps: bool = False) -> dict[str, int]:
        def work(conn: sqlite3.Connection) -> dict[str, int]:
            args = () if tenant is None else (tenant,)
            deleted: dict[str, int] = {}
            conn.execute("BEGIN IMMEDIATE")
            try:
                for name, s in self.sql.sets.items():
                    deleted[name] = conn.execute(
                        (s.delete_all if tenant is None else s.delete_tenant).sql, args).rowcount
                conn.execute((self.sql.delete_history_all if tenant is None
                              else self.sql.delete_history_tenant).sql, args)
                if apps:
                    deleted[APP_REGISTRATIONS] = conn.execute(
                        (self.sql.delete_apps_all if tenant is None
                         else self.sql.delete_apps_tenant).sql, args).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return deleted

        result: dict[str, int] = await asyncio.to_thread(self._run, work)
        return result

    async def export(self, tenant: str | None, page: int = 1000) -> AsyncIterator[list[Entry]]:
        conn = await asyncio.to_thread(self._connect)
        try:
            await asyncio.to_thread(conn.execute, "BEGIN")  # one snapshot for the whole export
            tenants = [tenant] if tenant is not None else await asyncio.to_thread(
                self._tenants, conn)
            for tid in tenants:
                for s in self.sql.sets.values():
                    after = ""
                    while True:
                        entries = await asyncio.to_thread(self._page, conn, s, tid, after, page)
                        if not entries:
                            break
                        yield entries
                        if len(entries) < page:
                            break
                        after = entries[-1].id
        finally:
            await asyncio.to_thread(conn.close)

    def _tenants(self, conn: sqlite3.Connection) -> list[str]:
        found: set[str] = set()
        for s in self.sql.sets.values():
            found.update(row[0] for row in conn.execute(s.tenants.sql))
        return sorted(found)

    @staticmethod
    def _page(conn: sqlite3.Connection, s: SetStatements, tenant: str, after: str,
              n: int) -> list[Entry]:
        rows = conn.execute(s.page.sql, s.page.params(
            {"tenant": tenant, "after": after, "n": n})).fetchall()
        if not rows:
            return []
        history: dict[str, list[bytes]] = {}
        for entity_id, entry in conn.execute(s.history.sql, s.history.params(
                {"tenant": tenant, "first": rows[0][0], "last": rows[-1][0]})):
            history.setdefault(entity_id, []).append(entry.encode())
        es = s.entity_table.entity_set
        return [Entry(tenant, es, entity_id, bytes(data), tuple(history.get(entity_id, ())))
                for entity_id, data in rows]

    async def upsert(self, entries: Sequence[Entry]) -> int:
        rows, replaced, history = batch(self.sql, entries)
        written: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for e in entries:
            assert e.doc is not None  # (batch() says so too)
            written.setdefault(e.entity_set.name, []).append((e.tenant, e.doc))

        def work(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for name, params in rows.items():
                    conn.executemany(self.sql.sets[name].upsert.sql, params)
                    self.sql.written.keep(conn, name, written[name])
                for name, keys in replaced.items():
                    conn.executemany(self.sql.sets[name].delete_history.sql, keys)
                for name, params in history.items():
                    conn.executemany(self.sql.sets[name].insert_history.sql, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return len(entries)

        result: int = await asyncio.to_thread(self._run, work)
        return result

    async def behaviour(self) -> tuple[int, str | None]:
        row = await asyncio.to_thread(self._run, lambda c: c.execute(
            self.sql.behaviour.sql, self.sql.behaviour.params({})).fetchone())
        return (0, None) if row is None else (int(row[0]), str(row[1]))

    async def behaviour_version(self) -> int:
        row = await asyncio.to_thread(self._run, lambda c: c.execute(
            self.sql.behaviour_version.sql, self.sql.behaviour_version.params({})).fetchone())
        return 0 if row is None else int(row[0])

    async def put_behaviour(self, document: str) -> int:
        def work(conn: sqlite3.Connection) -> int:
            compiled = self.sql.put_behaviour
            return int(conn.execute(compiled.sql, compiled.params({"document": document}))
                       .fetchone()[0])

        result: int = await asyncio.to_thread(self._run, work)
        return result

    async def close(self) -> None:
        pass
