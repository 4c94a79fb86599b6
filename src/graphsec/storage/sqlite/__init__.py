"""The SQLite store: one file, stdlib ``sqlite3``, a point reader and threads for scans."""

from graphsec.storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
