"""`graphsec db upgrade/current`, `serve` refusing a PostgreSQL schema that is behind (or, with
`--upgrade`, upgrading it), and a database that cannot be used told in one line with the fix."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from graphsec.storage import migrate
from tests.conftest import PG_ADMIN_URL, _pg
from tests.support.server import free_port, start_server


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


def test_serve_upgrade_brings_an_empty_database_to_head(empty_postgres: str,
                                                        tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", "--upgrade", "--database", empty_postgres)
    server.stop()
    current = graphsec(tmp_path, "db", "current", "--database", empty_postgres)
    assert current.stdout.strip() == f"{migrate.head()} (head)"


COMMANDS = {
    "db-upgrade": ("db", "upgrade"),
    "db-current": ("db", "current"),
    "seed": ("seed", "--tenants", "1", "--days", "1", "--controls", "1", "--users", "0"),
    "serve": ("serve", "--host", "127.0.0.1", "--port", "PORT"),
}
CASES = ("missing-database", "refused-port", "unwritable-sqlite")


def _missing_database() -> tuple[str, str]:
    url = make_url(PG_ADMIN_URL).set(database=f"graphsec_missing_{uuid.uuid4().hex[:8]}")
    fix = f"createdb -h {url.host} -p {url.port or 5432} -U {url.username} {url.database}"
    return url.render_as_string(hide_password=False), fix


def _refused_port() -> tuple[str, str]:
    port = free_port()  # nothing listens there
    return f"postgresql://postgres@127.0.0.1:{port}/graphsec", (
        f"is PostgreSQL running at 127.0.0.1:{port}?")


def _unwritable_sqlite(tmp_path: Path) -> tuple[str, str]:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    path = blocker / "graphsec.db"
    return f"sqlite:///{path}", f"cannot write {path} ("


@pytest.mark.parametrize(("case", "command"), [
    pytest.param(case, command, id=f"{case}-{command}")
    for case in CASES for command in COMMANDS
    # reading a revision writes nothing: a SQLite file that is not there is at "(none)"
    if (case, command) != ("unwritable-sqlite", "db-current")
])
def test_unusable_database_is_one_line_with_the_fix(case: str, command: str, tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    if case == "missing-database" and request.config.getoption("--backend") == "sqlite":
        pytest.skip("--backend sqlite")
    if case == "missing-database":
        url, fix = _missing_database()
    elif case == "refused-port":
        url, fix = _refused_port()
    else:
        url, fix = _unwritable_sqlite(tmp_path)
    args = [str(free_port()) if a == "PORT" else a for a in COMMANDS[command]]
    done = graphsec(tmp_path / "home", *args, "--database", url)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("graphsec: "), lines[0]
    assert fix in lines[0]
    if case == "unwritable-sqlite":
        assert lines[0].endswith("check the directory's permissions")
