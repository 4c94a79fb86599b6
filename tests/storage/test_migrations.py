"""Migrations build exactly the schema the models declare, on both backends."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool
from sqlalchemy.ext.asyncio import create_async_engine

from graphsec.schema.security import ENTITY_SETS, SECURE_SCORES
from graphsec.storage import migrate
from graphsec.storage.sql.tables import build_tables


def _diff(connection: Any) -> list[Any]:
    metadata, _ = build_tables(ENTITY_SETS)
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    with warnings.catch_warnings():  # indexes of lower(column) (0007): not compared, see below
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        diffs = compare_metadata(context, metadata)
    # PostgreSQL's indexes are hand-written in the migration (NULLS FIRST, GIN on jsonb), which
    # autogenerate cannot express; tables and columns must match exactly.
    return [d for d in diffs if not (isinstance(d, tuple) and d[0] in ("add_index", "remove_index"))]


def test_sqlite_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert migrate.current(url) is None
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        assert _diff(conn) == []
        indexes = {r[1] for r in conn.exec_driver_sql("PRAGMA index_list('secure_scores')")}
    engine.dispose()
    assert "ix_secure_scores_default_order" in indexes


def test_postgres_migrations_match_the_models(postgres_url: str) -> None:
    assert migrate.current(postgres_url) == migrate.head()

    async def check() -> tuple[list[Any], set[str]]:
        engine = create_async_engine(migrate.sqlalchemy_url(postgres_url), poolclass=pool.NullPool)
        async with engine.connect() as conn:
            diffs = await conn.run_sync(_diff)
            rows = await conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'secure_scores'")
            defs = {r[0] for r in rows}
        await engine.dispose()
        return diffs, defs

    diffs, defs = asyncio.run(check())
    assert diffs == []
    assert any("created_date_time NULLS FIRST" in d for d in defs)
    assert not any("gin" in d for d in defs)  # dropped by 0007: no statement used it
    assert any("(tenant_id, lower(id), created_date_time NULLS FIRST, id NULLS FIRST)" in d
               for d in defs)


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite:///", "http://example"])
def test_unsupported_urls_are_refused(url: str) -> None:
    from graphsec.config import Settings, SettingsError

    with pytest.raises(SettingsError):
        Settings.from_env({"GRAPHSEC_DATABASE_URL": url})


def test_0002_backfills_document_text_on_postgresql(request: pytest.FixtureRequest) -> None:
    """A row written under 0001 is served after upgrading: later schema changes are new
    revisions that carry existing data along."""
    if request.config.getoption("--backend") == "sqlite":
        pytest.skip("--backend sqlite")
    from graphsec.storage.postgres import PostgresStore
    from tests.conftest import _pg, fresh_postgres_database

    databases = fresh_postgres_database(revision=None)
    url = next(databases)
    try:
        migrate.upgrade(url, revision="0001")
        asyncio.run(_pg(["INSERT INTO secure_scores (tenant_id, id, current_score, doc) VALUES "
                         "('t', 'old', 5.0, '{\"id\": \"old\", \"currentScore\": 5.0}')"],
                        url))
        assert migrate.current(url) == "0001"
        migrate.upgrade(url)
        assert migrate.current(url) == migrate.head()

        async def read() -> bytes | None:
            store = PostgresStore(url, ENTITY_SETS, pool_size=1)
            await store.open()
            try:
                return await store.get("t", SECURE_SCORES, "old")
            finally:
                await store.close()

        body = asyncio.run(read())
        assert body is not None
        assert orjson.loads(body) == {"id": "old", "currentScore": 5.0}
    finally:
        databases.close()


def test_0003_keeps_document_bytes_and_compresses_them_with_lz4(
        request: pytest.FixtureRequest) -> None:
    """A document written under 0002 (``body`` as text) is served byte for byte after 0003
    turns ``body`` into lz4-compressed bytea."""
    if request.config.getoption("--backend") == "sqlite":
        pytest.skip("--backend sqlite")
    from graphsec.storage.postgres import PostgresStore
    from tests.conftest import _pg, fresh_postgres_database

    databases = fresh_postgres_database(revision=None)
    url = next(databases)
    long_doc = orjson.dumps({"comment": "é" * 3000, "id": "long"}, option=orjson.OPT_SORT_KEYS)
    try:
        migrate.upgrade(url, revision="0002")
        text = long_doc.decode().replace("'", "''")
        asyncio.run(_pg([f"INSERT INTO secure_scores (tenant_id, id, doc, body) VALUES "
                         f"('t', 'long', '{text}', '{text}')"], url))
        migrate.upgrade(url)
        assert migrate.current(url) == migrate.head()

        async def read() -> tuple[bytes | None, str | None]:
            store = PostgresStore(url, ENTITY_SETS, pool_size=1)
            await store.open()
            try:
                method = await store.pool.fetchval(
                    "SELECT pg_column_compression(body) FROM secure_scores WHERE id = 'long'")
                return await store.get("t", SECURE_SCORES, "long"), method
            finally:
                await store.close()

        body, method = asyncio.run(read())
        assert body == long_doc
        assert method == "lz4"
    finally:
        databases.close()
