"""Where the throttle state lives, so that every worker and every instance sees the same buckets
(``graphsec.pressure.throttle`` decides; these keep the state and make each decision atomic).

- SQLite with one worker: the process's memory (``pressure/windows.py``
  ``LocalThrottleState``): it is the only process serving. A few microseconds a request.
- SQLite with ``--workers`` 2 or more: a file beside the database (``<database>-throttle``),
  WAL, no fsync: one short ``BEGIN IMMEDIATE`` transaction a request (and one to give back a
  place under the concurrency cap), shared by the workers.
- PostgreSQL: unlogged tables in a schema of their own (``graphsec_throttle``) and one function
  that decides in a single round trip; every instance on the database shares them. Correct,
  but every request of one application and tenant updates the same rows: a few hundred
  requests a second at most (bench/RESULTS.md).
- Redis (``[throttling] redis = "redis://…"``), on any backend: one Lua script a decision; for
  limits shared across instances at a high rate.

The state is counters, not data: it is not in the migrations, it is created when first needed,
and losing it (an unlogged table after a crash, a deleted file) only refills the buckets.
"""

from __future__ import annotations

from pathlib import Path

from graphsec.pressure.windows import LocalThrottleState, ThrottleState


def open_state(database_url: str, sqlite_path: Path | None, workers: int = 2,
               redis_url: str | None = None) -> ThrottleState:
    """The throttle state for ``workers`` processes serving the database at ``database_url``,
    or in Redis at ``redis_url`` (not connected yet)."""
    if redis_url:
        from graphsec.storage.throttle.redis import RedisThrottleState

        return RedisThrottleState(redis_url)
    if sqlite_path is not None and workers == 1:
        return LocalThrottleState()
    if sqlite_path is not None:
        from graphsec.storage.throttle.sqlite import SQLiteThrottleState

        return SQLiteThrottleState(Path(f"{sqlite_path}-throttle"))
    from graphsec.storage.throttle.postgres import PostgresThrottleState

    return PostgresThrottleState(database_url)
