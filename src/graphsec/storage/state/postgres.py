"""The state store on PostgreSQL: asyncpg, on a small pool of its own (two connections at
most, opened when first needed), apart from the request path's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from graphsec.schema.types import EntitySet
from graphsec.storage.state import Counts, Entry
from graphsec.storage.state.statements import APP_REGISTRATIONS, SetStatements, Statements, batch


class PostgresState:
    """:class:`graphsec.storage.state.StateStore` on the PostgreSQL database at ``url``."""

    def __init__(self, url: str, entity_sets: tuple[EntitySet, ...]) -> None:
        self.url = url
        self.sql = Statements(entity_sets, "postgresql")
        self._pool: Any = None
        self._opening = asyncio.Lock()

    async def _connections(self) -> Any:
        async with self._opening:
            if self._pool is None:
                import asyncpg

                self._pool = await asyncpg.create_pool(self.url, min_size=0, max_size=2)
        return self._pool

    async def counts(self) -> Counts:
        pool = await self._connections()
        out: Counts = {}
        names = list(self.sql.sets)
        async with pool.acquire() as conn:
            for name, s in self.sql.sets.items():
                for tenant, n in await conn.fetch(s.counts.sql):
                    out.setdefault(tenant, dict.fromkeys(names, 0))[name] = n
        return dict(sorted(out.items()))

    async def reset(self, tenant: str | None, apps: bool = False) -> dict[str, int]:
        pool = await self._connections()
        args = () if tenant is None else (tenant,)
        deleted: dict[str, int] = {}
        async with pool.acquire() as conn, conn.transaction():
            for name, s in self.sql.sets.items():
                status = await conn.execute(
                    (s.delete_all if tenant is None else s.delete_tenant).sql, *args)
                deleted[name] = int(status.rsplit(" ", 1)[1])
            await conn.execute((self.sql.delete_history_all if tenant is None
                                else self.sql.delete_history_tenant).sql, *args)
            if apps:
                status = await conn.execute((self.sql.delete_apps_all if tenant is None
                                             else self.sql.delete_apps_tenant).sql, *args)
                deleted[APP_REGISTRATIONS] = int(status.rsplit(" ", 1)[1])
        return deleted

    async def export(self, tenant: str | None, page: int = 1000) -> AsyncIterator[list[Entry]]:
        pool = await self._connections()
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                             readonly=True):
            if tenant is not None:
                tenants = [tenant]
            else:
                found: set[str] = set()
                for s in self.sql.sets.values():
                    found.update(row[0] for row in await conn.fetch(s.tenants.sql))
                tenants = sorted(found)
            for tid in tenants:
                for s in self.sql.sets.values():
                    after = ""
                    while True:
                        entries = await _page(conn, s, tid, after, page)
                        if not entries:
                            break
                        yield entries
                        if len(entries) < page:
                            break
                        after = entries[-1].id

    async def upsert(self, entries: Sequence[Entry]) -> int:
        rows, replaced, history = batch(self.sql, entries)
        pool = await self._connections()
        async with pool.acquire() as conn, conn.transaction():
            for name, params in rows.items():
                await conn.executemany(self.sql.sets[name].upsert.sql, params)
            for name, keys in replaced.items():
                await conn.executemany(self.sql.sets[name].delete_history.sql, keys)
            for name, params in history.items():
                await conn.executemany(self.sql.sets[name].insert_history.sql, params)
        return len(entries)

    async def behaviour(self) -> tuple[int, str | None]:
        pool = await self._connections()
        row = await pool.fetchrow(self.sql.behaviour.sql, *self.sql.behaviour.params({}))
        return (0, None) if row is None else (int(row[0]), str(row[1]))

    async def behaviour_version(self) -> int:
        pool = await self._connections()
        version = await pool.fetchval(self.sql.behaviour_version.sql,
                                      *self.sql.behaviour_version.params({}))
        return 0 if version is None else int(version)

    async def put_behaviour(self, document: str) -> int:
        pool = await self._connections()
        compiled = self.sql.put_behaviour
        return int(await pool.fetchval(compiled.sql, *compiled.params({"document": document})))

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


async def _page(conn: Any, s: SetStatements, tenant: str, after: str, n: int) -> list[Entry]:
    rows = await conn.fetch(s.page.sql, *s.page.params({"tenant": tenant, "after": after,
                                                         "n": n}))
    if not rows:
        return []
    history: dict[str, list[bytes]] = {}
    for entity_id, entry in await conn.fetch(s.history.sql, *s.history.params(
            {"tenant": tenant, "first": rows[0][0], "last": rows[-1][0]})):
        history.setdefault(entity_id, []).append(entry.encode())
    es = s.entity_table.entity_set
    return [Entry(tenant, es, entity_id, bytes(data), tuple(history.get(entity_id, ())))
            for entity_id, data in rows]
