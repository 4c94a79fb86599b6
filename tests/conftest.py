"""Fixtures shared by the whole suite: an app on a fresh GRAPHSEC_HOME and tokens for it.

Every test that uses ``settings`` (and so ``client``) runs once per backend: SQLite (a new file
per test) and PostgreSQL (one database created for the session, migrated with Alembic, emptied
before each test, dropped at the end). PostgreSQL tests are skipped with a visible reason when no
server answers, except on CI (``CI=true``), where that is a failure. ``--backend sqlite`` or
``--backend postgresql`` narrows the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphsec.app import create_app
from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from graphsec.config import Settings
from tests.support.statements import StatementCounter, count_statements

TENANT = "1d5a1bd0-0000-4000-8000-000000000001"
OTHER_TENANT = "2e6b2ce1-0000-4000-8000-000000000002"
RW = "SecurityEvents.ReadWrite.All"
RO = "SecurityEvents.Read.All"


PG_ADMIN_URL = os.environ.get("GRAPHSEC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")
TABLES = ("secure_scores", "secure_score_control_profiles", "user_security_profiles", "history")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backend", choices=("all", *BACKENDS), default="all",
                     help="run the database-backed tests on this backend only")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend")
        backends = BACKENDS if chosen == "all" else (chosen,)
        metafunc.parametrize("backend", backends, scope="session")


async def _pg_value(url: str, sql: str) -> Any:
    """The first column of the first row ``sql`` returns, on a connection of its own."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _pg(sql: list[str], url: str = PG_ADMIN_URL) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


def fresh_postgres_database() -> Iterator[str]:
    """Create a migrated PostgreSQL database of its own, yield its URL, drop it afterwards.

    Skips with the reason when no server answers, except on CI, where that is a failure."""
    from graphsec.storage import migrate

    name = f"graphsec_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg([f"CREATE DATABASE {name}"]))
    except (TimeoutError, OSError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must be up on CI ({PG_ADMIN_URL}): {exc}")
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL}: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_pg([f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"]))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (dropped afterwards)."""
    yield from fresh_postgres_database()


@pytest.fixture(params=[True, False], ids=["wire-reads", "asyncpg-reads"])
def wire_reads(request: pytest.FixtureRequest) -> bool:
    """How a PostgreSQL store reads by id: over its own connection in the wire protocol
    (``storage/pgwire.py``, the default) or through asyncpg (``storage/pgbatch.py``, where
    asyncpg's transport cannot be taken over)."""
    return bool(request.param)


@pytest.fixture
def pg_statements(monkeypatch: pytest.MonkeyPatch) -> StatementCounter:
    """Counts the statements sent on every PostgreSQL connection opened from now on
    (``tests/support/statements.py``): ``n = (await pg_statements.of(store.get(…)))[1]``."""
    return count_statements(monkeypatch)


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a signing key and a migrated SQLite file, made once and copied per test
    (RSA key generation and migrations are the slow part of a test's set-up)."""
    from graphsec.auth.keys import load_or_create
    from graphsec.storage import migrate

    template = tmp_path_factory.mktemp("template") / "home"
    load_or_create(template)
    migrate.upgrade(f"sqlite:///{template / 'graphsec.db'}")
    return template


@pytest.fixture
def home(tmp_path: Path, _template: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(_template, home)
    return home


@pytest.fixture
def settings(home: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    # the ASGI client's base_url; links are built from allowed Host headers only
    env = {"GRAPHSEC_HOME": str(home), "GRAPHSEC_ALLOWED_HOSTS": "graph.test"}
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        asyncio.run(_pg([f"TRUNCATE {', '.join(TABLES)}"], url))
        env["GRAPHSEC_DATABASE_URL"] = url
    return Settings.from_env(env)


@pytest.fixture
def issuer(settings: Settings) -> LocalIssuer:
    return LocalIssuer(load_or_create(settings.home))


Headers = Callable[..., dict[str, str]]


@pytest.fixture
def auth(issuer: LocalIssuer) -> Headers:
    """``auth(tenant=…, roles=…, scopes=…)`` → an Authorization header for a fresh token."""

    def make(tenant: str = TENANT, roles: tuple[str, ...] = (RW,),
             scopes: tuple[str, ...] = (), identity: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {issuer.mint(tenant, roles, scopes, identity=identity)}"}

    return make


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://graph.test") as c:
        yield c
    await app.resource.store.close()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(settings):
        yield c


@pytest.fixture
def rw(auth: Headers) -> dict[str, str]:
    return auth()


def score(**overrides: object) -> dict[str, object]:
    """A valid secureScore body with real values (the seed examples, made real)."""
    body: dict[str, object] = {
        "activeUserCount": 15,
        "averageComparativeScores": [
            {"@odata.type": "microsoft.graph.averageComparativeScore", "averageScore": 37.0,
             "basis": "AllTenants"},
        ],
        "controlScores": [
            {"@odata.type": "microsoft.graph.controlScore", "controlCategory": "Identity",
             "controlName": "AdminMFA", "description": "Require MFA for admins", "score": 35.0},
        ],
        "createdDateTime": "2024-03-19T15:21:00Z",
        "currentScore": 387.0,
        "enabledServices": ["HasExchange", "HasSharePoint"],
        "licensedUserCount": 100,
        "maxScore": 697.0,
        "vendorInformation": {"@odata.type": "microsoft.graph.securityVendorInformation",
                              "provider": "SecureScore", "providerVersion": None,
                              "subProvider": None, "vendor": "Microsoft"},
    }
    body.update(overrides)
    return body
