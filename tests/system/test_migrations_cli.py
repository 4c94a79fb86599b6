"""`graphsec db upgrade/current`, and `serve` refusing a PostgreSQL schema that is behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphsec.storage import migrate
from tests.conftest import PG_ADMIN_URL, _pg


def graphsec(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", *args],
        env={**os.environ, "GRAPHSEC_HOME": str(home)},
        capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def empty_postgres(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database with no schema at all (dropped afterwards)."""
    if request.config.getoption("--backend") == "sqlite":
        pytest.skip("--backend sqlite")
    name = f"graphsec_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg([f"CREATE DATABASE {name}"]))
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must be up on CI: {exc}")
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL}: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_pg([f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"]))


def test_serve_refuses_a_schema_behind_then_upgrade_fixes_it(empty_postgres: str,
                                                              tmp_path: Path) -> None:
    refused = graphsec(tmp_path, "serve", "--database", empty_postgres, "--port", "1")
    assert refused.returncode == 1
    assert "graphsec db upgrade" in refused.stderr
    assert graphsec(tmp_path, "db", "current", "--database", empty_postgres).stdout.startswith(
        "(none) (behind")
    upgraded = graphsec(tmp_path, "db", "upgrade", "--database", empty_postgres)
    assert upgraded.returncode == 0, upgraded.stderr
    current = graphsec(tmp_path, "db", "current", "--database", empty_postgres)
    assert current.stdout.strip() == f"{migrate.head()} (head)"


def test_sqlite_db_commands(tmp_path: Path) -> None:
    assert graphsec(tmp_path, "db", "current").stdout.startswith("(none)")
    assert not (tmp_path / "graphsec.db").exists()  # reading the revision creates nothing
    assert graphsec(tmp_path, "db", "upgrade").returncode == 0
    assert graphsec(tmp_path, "db", "current").stdout.strip() == f"{migrate.head()} (head)"


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    done = graphsec(tmp_path, "serve", "--database", "postgresql://nobody@127.0.0.1:1/x")
    assert done.returncode == 1
    assert "cannot reach the database" in done.stderr
