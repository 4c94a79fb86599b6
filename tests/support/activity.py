"""What a PostgreSQL database is running right now, seen from a connection of its own."""

from __future__ import annotations

import asyncpg


async def active_lambda_statements(url: str) -> int:
    """Statements other sessions are running in ``url``'s database that range over a JSON
    array (what a ``$filter`` lambda compiles to): the expensive queries the tests start."""
    conn = await asyncpg.connect(url)
    try:
        value: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active' "
            "AND query LIKE '%jsonb_array_elements%'")
        return value
    finally:
        await conn.close()
