"""Fixtures shared by the whole suite: an app on a fresh GRAPHSEC_HOME and tokens for it.

Every test that uses ``settings`` (and so ``client``) runs once per backend: SQLite (a new file
per test) and PostgreSQL (one database created for the session, migrated with Alembic, emptied
before each test, dropped at the end: ``tests/support/postgres.py``, which also says why a
transaction rolled back per test cannot isolate them). PostgreSQL tests are skipped with a
visible reason when no server answers, except on CI (``CI=true``), where that is a failure.
``--backend sqlite`` or ``--backend postgresql`` narrows the run.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from graphsec.app import create_app
from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from graphsec.config import PG_READS, Settings
from tests.support.postgres import PG_ADMIN_URL as PG_ADMIN_URL
from tests.support.postgres import TABLES as TABLES
from tests.support.postgres import TEMPLATES, empty, execute, value
from tests.support.postgres import fresh_postgres_database as fresh_postgres_database
from tests.support.statements import StatementCounter, count_statements

TENANT = "1d5a1bd0-0000-4000-8000-000000000001"
OTHER_TENANT = "2e6b2ce1-0000-4000-8000-000000000002"
RW = "SecurityEvents.ReadWrite.All"
RO = "SecurityEvents.Read.All"

_pg = execute  # the names tests import from here (tests/support/postgres.py)
_pg_value = value


BACKENDS = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backend", choices=("all", *BACKENDS), default="all",
                     help="run the database-backed tests on this backend only")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend")
        backends = BACKENDS if chosen == "all" else (chosen,)
        metafunc.parametrize("backend", backends, scope="session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within each module, the tests of one backend run together, in their order. pytest's own
    ordering interleaves them when a test has other parameters too, and a module-scoped
    fixture that depends on the backend (a server with its data: tests/system/test_abuse.py)
    is then torn down and started again at every switch: 56 times in that module alone, about
    4 s each, where two starts do."""
    modules: dict[str, int] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], len(modules))

    def place(item: pytest.Item) -> tuple[int, int]:
        params = getattr(item, "callspec", None)
        backend = params.params.get("backend") if params is not None else None
        return (modules[item.nodeid.split("::", 1)[0]],
                BACKENDS.index(backend) if backend in BACKENDS else -1)

    items.sort(key=place)  # stable: the order within a module and backend is pytest's


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (dropped afterwards)."""
    yield from fresh_postgres_database()


@pytest.fixture(scope="session", autouse=True)
def _postgres_templates() -> Iterator[None]:
    """Drops the template databases the session made (``tests/support/postgres.py``)."""
    yield
    TEMPLATES.drop()


@pytest.fixture(params=PG_READS, ids=[f"{name}-reads" for name in PG_READS])
def pg_reads(request: pytest.FixtureRequest) -> str:
    """Each way a PostgreSQL store can read by id (``Settings.pg_reads``, the readers of
    ``storage/postgres/reads/``), for ``PostgresStore(…, reads=pg_reads)``."""
    return str(request.param)


@pytest.fixture
def pg_statements(monkeypatch: pytest.MonkeyPatch) -> StatementCounter:
    """Counts the statements sent to PostgreSQL from now on, whichever reader sends them
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
        asyncio.run(empty(url))
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
