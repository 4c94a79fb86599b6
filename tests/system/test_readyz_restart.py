"""``/readyz`` follows the database: 503 with the reason while PostgreSQL is stopped, 200 again
once it is back, from the same server process (no restart).

The shared PostgreSQL server cannot be stopped, so this test makes a private one (``initdb`` in
a temporary folder, ``pg_ctl`` on a free port). Without PostgreSQL's server programs it is
skipped, except on CI (``CI=true``), where that is a failure: the machine needs the
``postgresql`` package (Debian's, which puts them in ``/usr/lib/postgresql/<version>/bin``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port, start_server


def _programs() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or None."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    return next((Path(f) for f in folders if (Path(f) / "initdb").exists()), None)


class PrivatePostgres:
    """A PostgreSQL server of this test's own; run as the ``postgres`` user when we are root
    (the server refuses to run as root)."""

    def __init__(self, programs: Path, folder: Path, port: int) -> None:
        self.programs = programs
        self.data = folder / "data"
        self.port = port
        self.log = folder / "server.log"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(folder, "postgres")

    def run(self, program: str, *args: str) -> None:
        subprocess.run([*self._as, str(self.programs / program), *args],  # noqa: S603
                       check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o",
                 f"-p {self.port} -c listen_addresses=127.0.0.1 "
                 f"-c unix_socket_directories={self.data.parent} -c fsync=off", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    programs = _programs()
    if programs is None:
        if os.environ.get("CI") == "true":
            pytest.fail("initdb/pg_ctl not found: CI needs the postgresql package")
        pytest.skip("initdb/pg_ctl not found (the postgresql package)")
    folder = Path(tempfile.mkdtemp(prefix="graphsec-pg-"))
    server = PrivatePostgres(programs, folder, free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for(http: httpx.Client, status: int, seconds: float = 20) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        r = http.get("/readyz")
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_readyz_is_503_while_postgresql_is_stopped_and_200_once_back(
        private_postgres: PrivatePostgres, tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", "--database", private_postgres.url, "--upgrade",
                          "--log-format", "off")
    try:
        pid = server.process.pid
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            assert http.get("/readyz").json() == {"status": "ready"}
            private_postgres.stop()
            started = time.monotonic()
            r = _wait_for(http, 503)
            assert r.status_code == 503, r.text
            assert time.monotonic() - started < 5  # each probe is bounded
            body = r.json()
            assert body["status"] == "unavailable"
            assert f"127.0.0.1:{private_postgres.port}" in body["reason"]
            assert "\n" not in body["reason"]
            assert http.get("/healthz").status_code == 200  # liveness does not follow
            private_postgres.start()
            r = _wait_for(http, 200)
            assert r.status_code == 200, r.text
            assert r.json() == {"status": "ready"}
        assert server.process.poll() is None
        assert server.process.pid == pid
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()[-3000:]
