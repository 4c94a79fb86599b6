"""What a PostgreSQL database is running right now, seen from a connection of its own.

``pg_stat_activity`` shows each session's statement as it starts (it is the sessions' shared
state, not a statistic gathered later), so a test can wait for a statement to be running
instead of sleeping and hoping it is.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg


async def active_statements(url: str, like: str) -> int:
    """Statements other sessions are running in ``url``'s database whose text is ``LIKE``
    ``like``."""
    conn = await asyncpg.connect(url)
    try:
        value: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1", like)
        return value
    finally:
        await conn.close()


async def active_lambda_statements(url: str) -> int:
    """Statements other sessions are running in ``url``'s database that range over a JSON
    array (what a ``$filter`` lambda compiles to): the expensive queries the tests start."""
    return await active_statements(url, "%jsonb_array_elements%")


async def until_running(url: str, sql: str, seconds: float = 10) -> None:
    """Return once another session runs ``sql`` in ``url``'s database; fail after
    ``seconds``."""
    deadline = time.monotonic() + seconds
    while not await active_statements(url, sql):
        assert time.monotonic() < deadline, f"{sql!r} did not start within {seconds} s"
        await asyncio.sleep(0.01)
