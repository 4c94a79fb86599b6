"""Primary-key reads from SQLite that keep the GIL.

The stdlib ``sqlite3`` module releases the GIL around every ``sqlite3_step`` (two per
single-row read). Under load, granian's I/O thread is waiting for the GIL, takes it at each
release, and the event loop then waits to get it back: in the benchmark a GET by id spent ~23 µs
on a read that takes ~5 µs in-process. A cached-page primary-key lookup is a few microseconds of
C, so holding the GIL through it is cheaper than handing it over twice.

This module calls the same ``libsqlite3`` the stdlib module links to, through ``ctypes.PyDLL``
(which, unlike ``CDLL``, does not release the GIL), on its own read-only connection to the
database file. Each read is its own read transaction, as with the stdlib connection in
autocommit mode, so it sees every write committed before it, in this process or another.

Where that library cannot be loaded (a Python with SQLite linked in statically),
:func:`open_reader` returns ``None`` and the store reads through ``sqlite3`` as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path
from typing import Any

SQLITE_OK = 0
SQLITE_ROW = 100
SQLITE_DONE = 101
SQLITE_OPEN_READONLY = 0x00000001
SQLITE_OPEN_NOMUTEX = 0x00008000
SQLITE_TRANSIENT = ctypes.c_void_p(-1)


class ReaderUnavailable(RuntimeError):
    pass


def _loaded_path() -> str | None:
    """The libsqlite3 file the stdlib module has loaded in this process (Linux), so that both
    connections run the very same SQLite."""
    import sqlite3  # noqa: F401  (loads the library)

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(None, 5)[-1]
                if "/libsqlite3.so" in path:
                    return path
    except OSError:
        pass
    return None


@functools.cache
def _library() -> Any:
    name = _loaded_path() or ctypes.util.find_library("sqlite3")
    if name is None:
        raise ReaderUnavailable("libsqlite3 not found")
    lib = ctypes.PyDLL(name)  # PyDLL: calls keep the GIL
    p, i, c = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    for fname, args, res in (
        ("sqlite3_open_v2", [c, ctypes.POINTER(p), i, c], i),
        ("sqlite3_close_v2", [p], i),
        ("sqlite3_busy_timeout", [p, i], i),
        ("sqlite3_prepare_v3", [p, c, i, ctypes.c_uint, ctypes.POINTER(p), ctypes.POINTER(c)], i),
        ("sqlite3_finalize", [p], i),
        ("sqlite3_bind_text", [p, i, c, i, p], i),
        ("sqlite3_step", [p], i),
        ("sqlite3_reset", [p], i),
        ("sqlite3_column_blob", [p, i], p),
        ("sqlite3_column_bytes", [p, i], i),
        ("sqlite3_errmsg", [p], c),
    ):
        fn = getattr(lib, fname)
        fn.argtypes = args
        fn.restype = res
    return lib


class PointReader:
    """Prepared single-row reads (``SELECT <blob> … WHERE tenant = ? AND id = ?``) on one
    read-only connection. Not thread-safe: one per event loop, as the store itself is."""

    def __init__(self, lib: Any, path: Path, cache_kib: int = 0) -> None:
        self._lib = lib
        self._pid = os.getpid()
        db = ctypes.c_void_p()
        flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
        rc = lib.sqlite3_open_v2(os.fsencode(path), ctypes.byref(db), flags, None)
        if rc != SQLITE_OK:
            message = lib.sqlite3_errmsg(db).decode() if db else f"code {rc}"
            lib.sqlite3_close_v2(db)
            raise ReaderUnavailable(f"cannot open {path} read-only: {message}")
        lib.sqlite3_busy_timeout(db, 10_000)
        self._db = db
        self._statements: dict[str, ctypes.c_void_p] = {}
        if cache_kib:  # as the store's own connection (SQLiteStore.cache_kib)
            pragma = self._prepare("cache_size", f"PRAGMA cache_size={-int(cache_kib)}")
            lib.sqlite3_step(pragma)
            lib.sqlite3_reset(pragma)

    def _prepare(self, key: str, sql: str) -> ctypes.c_void_p:
        stmt = ctypes.c_void_p()
        rc = self._lib.sqlite3_prepare_v3(self._db, sql.encode(), -1, 1,  # SQLITE_PREPARE_PERSISTENT
                                          ctypes.byref(stmt), None)
        if rc != SQLITE_OK:
            raise ReaderUnavailable(f"cannot prepare {sql!r}: {self._lib.sqlite3_errmsg(self._db)}")
        self._statements[key] = stmt
        return stmt

    def one(self, key: str, sql: str, first: str, second: str) -> bytes | None:
        """The first column (a blob) of the row ``sql`` (two text parameters, prepared once
        under ``key``) selects, or None."""
        lib = self._lib
        stmt = self._statements.get(key) or self._prepare(key, sql)
        a, b = first.encode(), second.encode()
        lib.sqlite3_bind_text(stmt, 1, a, len(a), SQLITE_TRANSIENT)
        lib.sqlite3_bind_text(stmt, 2, b, len(b), SQLITE_TRANSIENT)
        try:
            rc = lib.sqlite3_step(stmt)
            if rc == SQLITE_ROW:
                size = lib.sqlite3_column_bytes(stmt, 0)
                return ctypes.string_at(lib.sqlite3_column_blob(stmt, 0), size) if size else b""
            if rc == SQLITE_DONE:
                return None
            raise OSError(f"SQLite read failed ({rc}): {lib.sqlite3_errmsg(self._db).decode()}")
        finally:
            lib.sqlite3_reset(stmt)  # ends the read transaction

    def close(self) -> None:
        # a forked child must not close (and possibly checkpoint through) its parent's handle
        if self._db and os.getpid() == self._pid:
            for stmt in self._statements.values():
                self._lib.sqlite3_finalize(stmt)
            self._lib.sqlite3_close_v2(self._db)
        self._statements.clear()
        self._db = ctypes.c_void_p()


def open_reader(path: Path, cache_kib: int = 0) -> PointReader | None:
    """A reader for ``path`` keeping ``cache_kib`` KiB of pages (0: SQLite's default), or None
    where libsqlite3 cannot be used this way."""
    if os.environ.get("GRAPHSEC_SQLITE_POINT_READER", "1") == "0":
        return None
    try:
        return PointReader(_library(), path, cache_kib)
    except (ReaderUnavailable, OSError, AttributeError):
        return None
