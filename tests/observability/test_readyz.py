"""``/readyz``: 200 when the database answers and its schema is current; 503 with a one-line
reason otherwise, within a bound; answered before the Host check, like ``/healthz``."""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
import orjson

from graphsec.api.probes import Probes
from graphsec.config import Settings
from graphsec.storage import migrate
from graphsec.storage.base import ConnectionUse
from graphsec.storage.postgres import health
from graphsec.storage.postgres.pool import ConnectionPool
from tests.conftest import _pg
from tests.support.server import free_port


async def test_ready_when_the_database_answers_and_the_schema_is_current(
        client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz", headers={"Host": "10.0.0.7"})  # any Host: probes use IPs
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}
    assert (await client.get("/readyz/")).status_code == 200
    assert (await client.post("/readyz")).status_code == 405


async def test_a_schema_behind_is_503_with_the_reason_and_ready_again_once_upgraded(
        client: httpx.AsyncClient, observed: Settings) -> None:
    assert (await client.get("/readyz")).status_code == 200
    head = migrate.head()
    old = "0001_behind"
    await _set_revision(observed, old)
    try:
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "reason":
                            f"schema at revision {old}, this graphsec needs {head}; run "
                            "graphsec db upgrade"}
    finally:
        await _set_revision(observed, head)
    assert (await client.get("/readyz")).status_code == 200


async def _set_revision(settings: Settings, revision: str) -> None:
    if settings.backend == "postgresql":
        await _pg([f"UPDATE alembic_version SET version_num = '{revision}'"],
                  settings.database_url)
        return
    with sqlite3.connect(settings.sqlite_path()) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))


async def test_a_check_that_does_not_end_is_503_within_the_bound() -> None:
    async def hangs(seconds: float) -> str | None:
        await asyncio.sleep(3600)
        return None

    probes = Probes(hangs, verifier=None, seconds=0.05)  # type: ignore[arg-type]
    started = asyncio.get_running_loop().time()
    r = await probes.ready()
    assert asyncio.get_running_loop().time() - started < 1
    assert r.status == 503
    assert orjson.loads(r.body) == {"status": "unavailable",
                                    "reason": "the database did not answer within 0.05 s"}


async def test_postgresql_unreachable_is_told_in_one_line_without_the_password() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://graphsec:hunter2-secret@127.0.0.1:{port}/graphsec"
    pool = ConnectionPool(url, 2)
    try:
        reason = await health.readiness(pool, "SELECT 1", url, 2.0)
    finally:
        await pool.close()
    assert reason == (f"cannot reach the database at 127.0.0.1:{port} (connection refused): "
                      f"is PostgreSQL running at 127.0.0.1:{port}?")
    assert "hunter2" not in reason


async def test_postgresql_that_accepts_but_never_answers_is_503_within_the_bound() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # holds the connection open, says nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"postgresql://graphsec@127.0.0.1:{port}/graphsec"
    pool = ConnectionPool(url, 1)
    try:
        started = asyncio.get_running_loop().time()
        reason = await health.readiness(pool, "SELECT 1", url, 0.3)
        assert asyncio.get_running_loop().time() - started < 1.5
        assert reason == "the database did not answer within 0.3 s"
        assert pool.open_connections == 0  # nothing held after the probe
    finally:
        await pool.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_the_pool_reports_its_connections_in_use_and_idle(postgres_url: str) -> None:
    assert health.connection_use(None) == ConnectionUse(0, 0)  # a store not open
    pool = ConnectionPool(postgres_url, 3)
    try:
        first, second = await pool.take(), await pool.take()
        assert health.connection_use(pool) == ConnectionUse(2, 0)
        pool.give_back(first, healthy=True)
        assert health.connection_use(pool) == ConnectionUse(1, 1)
        pool.give_back(second, healthy=True)
        assert health.connection_use(pool) == ConnectionUse(0, 2)
    finally:
        await pool.close()
