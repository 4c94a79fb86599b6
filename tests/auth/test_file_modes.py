"""What graphsec writes is its owner's alone: GRAPHSEC_HOME 0700, the SQLite file with its
``-wal`` and ``-shm`` and the signing key 0600, whatever the umask lets others read; and a
signing key that others can read is refused, as ssh refuses such a private key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphsec.app import create_app
from graphsec.auth.keys import KEY_FILE, UnsafeKeyFile, load_or_create
from graphsec.config import Settings
from graphsec.storage import migrate
from tests.conftest import TENANT

DB_FILES = ("graphsec.db", "graphsec.db-wal", "graphsec.db-shm")


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """The usual umask, under which files are created readable by everyone unless asked."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def graphsec(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", *args],
        env={**os.environ, "GRAPHSEC_HOME": str(home)},
        capture_output=True, text=True, timeout=120, check=False)


async def _start(home: Path) -> None:
    """What a server worker does at start: build the app, open its store."""
    app = create_app(Settings.from_env({"GRAPHSEC_HOME": str(home)}))
    store = app.resource.store
    await store.open()
    await store.close()


async def test_server_start_creates_owner_only_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    app = create_app(Settings.from_env({"GRAPHSEC_HOME": str(home)}))
    store = app.resource.store
    await store.open()
    try:  # -wal and -shm exist while a connection is open
        assert {f: oct(mode(home / f)) for f in (*DB_FILES, KEY_FILE)} == {
            f: oct(0o600) for f in (*DB_FILES, KEY_FILE)}
        assert oct(mode(home)) == oct(0o700)
    finally:
        await store.close()


async def test_server_start_tightens_an_existing_home_and_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    load_or_create(home)
    migrate.upgrade(f"sqlite:///{home / 'graphsec.db'}")
    home.chmod(0o755)  # made by hand, or by an older graphsec
    (home / "graphsec.db").chmod(0o644)
    await _start(home)
    assert oct(mode(home)) == oct(0o700)
    assert oct(mode(home / "graphsec.db")) == oct(0o600)


def test_db_upgrade_creates_owner_only_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    elsewhere = tmp_path / "data" / "store.db"
    for url_args in ((), ("--database", f"sqlite:///{elsewhere}")):
        done = graphsec(home, "db", "upgrade", *url_args)
        assert done.returncode == 0, done.stderr
    assert oct(mode(home / "graphsec.db")) == oct(0o600)
    assert oct(mode(home)) == oct(0o700)
    assert oct(mode(elsewhere)) == oct(0o600)
    assert oct(mode(elsewhere.parent)) == oct(0o700)


@pytest.mark.parametrize("key_mode", [
    pytest.param(0o644, id="world-readable"),
    pytest.param(0o640, id="group-readable"),
    pytest.param(0o604, id="other-readable"),
    pytest.param(0o620, id="group-writable"),
])
def test_signing_key_others_can_read_is_refused(tmp_path: Path, key_mode: int) -> None:
    home = tmp_path / "home"
    load_or_create(home)
    key = home / KEY_FILE
    key.chmod(key_mode)
    fix = f"chmod 600 {key}"

    with pytest.raises(UnsafeKeyFile, match=f"too open.*{fix}$"):
        create_app(Settings.from_env({"GRAPHSEC_HOME": str(home)}))

    done = graphsec(home, "token", "--tenant", TENANT, "--role", "SecurityEvents.Read.All")
    assert done.returncode == 1
    assert done.stdout == ""  # no token printed
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"graphsec: permissions {key_mode:04o} for {key} are too open")
    assert done.stderr.rstrip().endswith(fix)

    key.chmod(0o600)  # the fix the message gives is enough
    assert graphsec(home, "token", "--tenant", TENANT, "--role", "x").returncode == 0


def test_operator_key_is_owner_only_and_stable(tmp_path: Path) -> None:
    from graphsec.auth.operator import OPERATOR_KEY_FILE, load_or_create_operator_key

    home = tmp_path / "home"
    key = load_or_create_operator_key(home)
    assert len(key) >= 32
    assert mode(home / OPERATOR_KEY_FILE) == 0o600
    assert load_or_create_operator_key(home) == key  # made once, then read


def test_operator_key_others_can_read_is_refused(tmp_path: Path) -> None:
    from graphsec.auth.operator import OPERATOR_KEY_FILE, load_or_create_operator_key

    home = tmp_path / "home"
    load_or_create_operator_key(home)
    (home / OPERATOR_KEY_FILE).chmod(0o644)
    with pytest.raises(UnsafeKeyFile, match="opens the admin API"):
        load_or_create_operator_key(home)


@pytest.mark.parametrize(("header", "expected"), [
    pytest.param("Bearer K", False, id="another-key"),
    pytest.param(None, False, id="missing"),
    pytest.param("Basic abc", False, id="other-scheme"),
])
def test_is_operator_refuses_what_is_not_the_key(header: str | None, expected: bool) -> None:
    from graphsec.auth.operator import is_operator

    assert is_operator(header, "the-operator-key-of-this-home-0123456789") is expected
    assert is_operator("bearer  the-operator-key-of-this-home-0123456789 ",
                       "the-operator-key-of-this-home-0123456789")
