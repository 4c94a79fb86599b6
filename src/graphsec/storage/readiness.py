"""Whether a store can serve: the words both stores use for ``Health.readiness``
(``storage/base.py``).

A database that answers but whose schema is not the newest migration this graphsec knows is not
ready: its statements would fail on a column or table that is not there yet. A database that does
not answer is told in the one line :func:`graphsec.storage.diagnose.explain` gives (host and
port, never the password of the URL).
"""

from __future__ import annotations

import functools

from graphsec.storage import migrate
from graphsec.storage.diagnose import explain

NOT_OPEN = "the database is not open yet"


@functools.cache
def head() -> str:
    """The newest revision (read from the migrations folder once per process)."""
    return migrate.head()


def schema_reason(revision: str | None) -> str | None:
    """None when ``revision`` is the newest; else the reason and the fix, in one line."""
    needed = head()
    if revision == needed:
        return None
    return (f"schema at revision {revision or '(none)'}, this graphsec needs {needed}; run "
            "graphsec db upgrade")


def failure_reason(exc: BaseException, database_url: str) -> str:
    """One line for a failure to reach or read the database (no secret: the URL's password
    never appears, only its host, port, user and database name)."""
    problem = explain(exc, database_url)
    if problem is not None:
        return str(problem)
    lines = str(exc).strip().splitlines()
    return f"the database failed: {type(exc).__name__}" + (f": {lines[0]}" if lines else "")


def timeout_reason(seconds: float) -> str:
    return f"the database did not answer within {seconds:g} s"
