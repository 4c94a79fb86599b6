"""The time budget of a database statement, as the client hears of it.

Both stores stop a statement that runs longer than ``statement_timeout_ms`` (SQLite: a progress
handler, ``sqlite/scans.py``; PostgreSQL: ``statement_timeout`` on every connection,
``postgres/pool.py``) and answer with the same 504.
"""

from __future__ import annotations

from graphsec.errors import GatewayTimeout


def out_of_time(timeout_ms: int) -> GatewayTimeout:
    """The 504 for a statement stopped at its budget of ``timeout_ms`` milliseconds."""
    return GatewayTimeout(
        f"The query took longer than the limit of {timeout_ms} ms and was stopped. Narrow the "
        "$filter (a date range on createdDateTime, fewer or no nested any/all), or drop $count "
        "or $orderby.")
