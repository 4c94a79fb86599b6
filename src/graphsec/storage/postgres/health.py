"""``Health`` for the PostgreSQL store (``storage/base.py``): readiness through the pool, within
a bound, and the pool's connections."""

from __future__ import annotations

import asyncio

import asyncpg

from graphsec.storage.base import ConnectionUse
from graphsec.storage.postgres.pool import ConnectionPool, connection_lost
from graphsec.storage.readiness import NOT_OPEN, failure_reason, schema_reason, timeout_reason


async def readiness(pool: ConnectionPool | None, revision_sql: str, database_url: str,
                    seconds: float) -> str | None:
    """Read the schema's revision on a pooled connection, all within ``seconds`` (a connection
    still busy when time is up is discarded politely by the pool, as for any cancelled
    request). A lost connection makes the pool drop its idle ones too, so the next probe,
    like the next request, opens a fresh one: readiness comes back with the server, without a
    restart."""
    if pool is None:
        return NOT_OPEN
    try:
        async with asyncio.timeout(seconds), pool.acquire() as conn:
            revision = await conn.fetchval(revision_sql)
    except TimeoutError:
        return timeout_reason(seconds)
    except asyncpg.UndefinedTableError:
        revision = None
    except Exception as exc:
        if connection_lost(exc):
            pool.discard_idle()
        return failure_reason(exc, database_url)
    return schema_reason(revision)


def connection_use(pool: ConnectionPool | None) -> ConnectionUse:
    if pool is None:
        return ConnectionUse(0, 0)
    idle = pool.idle_connections
    return ConnectionUse(max(pool.open_connections - idle, 0), idle)
