"""The PostgreSQL store: asyncpg, its own connection pool, a document cache, point readers."""

from graphsec.storage.postgres.store import PostgresStore, SchemaBehind

__all__ = ["PostgresStore", "SchemaBehind"]
