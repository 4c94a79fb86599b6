"""Database failures an operator can fix, told in one line that says how.

The drivers report a missing database, a server that is not running or a folder graphsec cannot
write as a chain of exceptions (SQLAlchemy's around the driver's around the operating system's)
that ends a traceback of a hundred lines or more. :func:`explain` finds the cause in the chain
and turns it into a :class:`DatabaseError` whose message names the database and the fix:
``database "x" does not exist on 127.0.0.1:5432; create it with: createdb -h 127.0.0.1 …``.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError


class DatabaseError(RuntimeError):
    """A database graphsec cannot use; the message is one line that says what to do."""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: SQLAlchemy's ``orig``, then ``__cause__``/``__context__``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        nxt = orig if isinstance(orig, BaseException) else None
        current = nxt or current.__cause__ or current.__context__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _Target:
    """Where a PostgreSQL URL points: host, port, user and database name."""

    def __init__(self, database_url: str) -> None:
        try:
            url = make_url(database_url)
        except ArgumentError:
            url = make_url("postgresql://")
        self.host = url.host or "localhost"
        self.port = url.port or 5432
        self.user = url.username
        self.name = url.database or ""
        self.where = f"{self.host}:{self.port}"

    def createdb(self) -> str:
        user = f" -U {self.user}" if self.user else ""
        return f"createdb -h {self.host} -p {self.port}{user} {self.name}"


def _postgres(exc: BaseException, database_url: str) -> str | None:
    target = _Target(database_url)
    where = target.where
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return (f'database "{target.name}" does not exist on {where}; create it with: '
                f"{target.createdb()}")
    if isinstance(exc, (asyncpg.InvalidAuthorizationSpecificationError,
                        asyncpg.InvalidPasswordError)):
        return (f"PostgreSQL at {where} refused the connection: {_first_line(exc)}; check the "
                "user and password in the database URL")
    if isinstance(exc, asyncpg.CannotConnectNowError):
        return f"PostgreSQL at {where} is starting or shutting down; retry in a moment"
    if isinstance(exc, socket.gaierror):
        return (f"cannot reach the database: the host {target.host!r} is unknown "
                f"({exc.strerror}); check the host in the database URL")
    if isinstance(exc, ConnectionRefusedError):
        return (f"cannot reach the database at {where} (connection refused): is PostgreSQL "
                f"running at {where}?")
    if isinstance(exc, TimeoutError):
        return (f"cannot reach the database at {where} (no answer in time): is PostgreSQL "
                f"running at {where}, and is the network open?")
    if isinstance(exc, OSError):
        return f"cannot reach the database at {where}: {exc.strerror or _first_line(exc)}"
    if isinstance(exc, asyncpg.PostgresError):
        return f"PostgreSQL at {where}: {_first_line(exc)}"
    return None


_UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR,
                         errno.EISDIR, errno.EEXIST, errno.ENOSPC})


def _sqlite(exc: BaseException, path: str) -> str | None:
    if isinstance(exc, OSError) and exc.errno in _UNWRITABLE:
        where = "" if exc.filename in (None, path) else f"{exc.filename}: "
        return f"cannot write {path} ({where}{exc.strerror}): check the directory's permissions"
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
        return f"cannot write {path}: check the directory's permissions"
    if isinstance(exc, sqlite3.DatabaseError):
        return f"cannot use the SQLite file {path}: {_first_line(exc)}"
    return None


def explain(exc: BaseException, database_url: str) -> DatabaseError | None:
    """The one-line :class:`DatabaseError` for ``exc``, raised while reaching or migrating the
    database at ``database_url``; None when ``exc`` is not about the database (a fault of
    graphsec's own, which keeps its traceback)."""
    if isinstance(exc, DatabaseError):
        return exc
    sqlite_path = database_url[len("sqlite:///"):].split("?", 1)[0] \
        if database_url.startswith("sqlite:///") else None
    for cause in _causes(exc):
        if sqlite_path is not None:
            message = _sqlite(cause, sqlite_path)
        else:
            message = _postgres(cause, database_url)
        if message is not None:
            return DatabaseError(message)
    if isinstance(exc, SQLAlchemyError):
        return DatabaseError(f"the database refused: {_first_line(exc)}")
    return None
