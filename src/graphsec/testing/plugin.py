"""The pytest plugin (entry point ``pytest11``: ``graphsec``): graphsec in a test suite.

Fixtures:

- ``graphsec_server`` (session): a real ``graphsec serve`` on a free port with a fresh
  ``GRAPHSEC_HOME``, stopped with the session. Its options come from the ini settings
  ``graphsec_serve_args`` and ``graphsec_database``, or from a test's
  ``@pytest.mark.graphsec(serve_args=[…])`` (one server per distinct set of options).
- ``graphsec`` (function): that server, emptied before the test through the admin API (a
  clean slate costs milliseconds, not a restart), then seeded or loaded as the marker says:
  ``@pytest.mark.graphsec(seed={"tenants": 1, "days": 30}, load=["scores.json"],
  tenant="…", reset=False)``. ``reset=False`` keeps what earlier tests stored.
- ``graphsec_tenant``: the tenant id tests act in by default (the marker's ``tenant=``).
- ``graphsec_token(tenant=…, roles=[…], scopes=[…])``: a bearer token.
- ``graph_client(tenant=…, roles=…, beta=False)``: a ``GraphServiceClient`` (msgraph-sdk, or
  msgraph-beta-sdk with ``beta=True``) pointed at the server.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from graphsec.testing.server import READ_WRITE, GraphsecServer, ServerOptions

DEFAULT_TENANT = "6babcaad-604b-40ac-a9d7-9fd97c0b779f"
"""The tenant of ``graphsec_tenant`` unless a marker names another."""

_MARKER_KEYS = frozenset({"serve_args", "seed", "load", "tenant", "reset"})
_servers = pytest.StashKey[dict[ServerOptions, GraphsecServer]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("graphsec_serve_args", "Arguments for graphsec serve in the graphsec_server "
                  "fixture, as on the command line (e.g. --throttle --workers 2).", default="")
    parser.addini("graphsec_database", "The database the graphsec_server fixture serves "
                  "(default: SQLite in its fresh home). It is emptied before each test.",
                  default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "graphsec(serve_args=[...], seed={...}, load=[...], tenant=TID, "
        "reset=True): how the graphsec fixtures prepare the server for this test")
    config.stash[_servers] = {}


def pytest_unconfigure(config: pytest.Config) -> None:
    for server in config.stash.get(_servers, {}).values():
        server.stop()


def _marker(request: pytest.FixtureRequest) -> dict[str, Any]:
    found: dict[str, Any] = {}
    node = getattr(request, "node", None)
    if node is None:
        return found
    for mark in reversed(list(node.iter_markers("graphsec"))):  # the closest wins
        unknown = set(mark.kwargs) - _MARKER_KEYS
        if mark.args or unknown:
            raise pytest.UsageError(f"@pytest.mark.graphsec takes only the keywords "
                                    f"{', '.join(sorted(_MARKER_KEYS))}; got "
                                    f"{', '.join(sorted(unknown)) or 'positional arguments'}")
        found.update(mark.kwargs)
    return found


def _options(config: pytest.Config, serve_args: Sequence[str] | None) -> ServerOptions:
    raw = config.getini("graphsec_serve_args")
    args = tuple(serve_args) if serve_args is not None else tuple(
        shlex.split(raw) if isinstance(raw, str) else raw)
    database = config.getini("graphsec_database") or None
    return ServerOptions(serve_args=args, database_url=database)


def _server_for(request: pytest.FixtureRequest, options: ServerOptions) -> GraphsecServer:
    servers = request.config.stash[_servers]
    server = servers.get(options)
    if server is None:
        home = request.getfixturevalue("tmp_path_factory").mktemp("graphsec-home")
        server = GraphsecServer(home, options).start()
        servers[options] = server
    return server


@pytest.fixture(scope="session")
def graphsec_server(request: pytest.FixtureRequest) -> GraphsecServer:
    """The session's server with the ini settings' options (started on first use)."""
    return _server_for(request, _options(request.config, None))


@pytest.fixture
def graphsec_tenant(request: pytest.FixtureRequest) -> str:
    return str(_marker(request).get("tenant", DEFAULT_TENANT))


@pytest.fixture
def graphsec(request: pytest.FixtureRequest, graphsec_tenant: str) -> GraphsecServer:
    """The server, prepared for this test as its ``graphsec`` marker says (by default: empty)."""
    mark = _marker(request)
    if "serve_args" in mark:
        server = _server_for(request, _options(request.config, mark["serve_args"]))
    else:
        server = request.getfixturevalue("graphsec_server")
    if mark.get("reset", True):
        server.reset()
    if "seed" in mark:
        server.seed(**mark["seed"])
    for source in mark.get("load", ()):
        path = Path(source)
        if not path.is_absolute():
            path = Path(request.node.path).parent / path
        server.load(path, tenant=graphsec_tenant)
    return server


@pytest.fixture
def graphsec_token(graphsec: GraphsecServer, graphsec_tenant: str) -> Callable[..., str]:
    """``graphsec_token(tenant=None, roles=("SecurityEvents.ReadWrite.All",), scopes=(),
    expires_in=3600, identity=None)``: a bearer token for the server."""

    def make(tenant: str | None = None, roles: Sequence[str] = (READ_WRITE,),
             scopes: Sequence[str] = (), expires_in: int = 3600,
             identity: str | None = None) -> str:
        return graphsec.token(tenant or graphsec_tenant, roles, scopes, expires_in, identity)

    return make


@pytest.fixture
def graph_client(graphsec: GraphsecServer, graphsec_token: Callable[..., str]
                 ) -> Callable[..., Any]:
    """``graph_client(tenant=None, roles=("SecurityEvents.ReadWrite.All",), beta=False)``: a
    ``GraphServiceClient`` on the server (msgraph-beta-sdk's with ``beta=True``)."""
    from graphsec.testing.sdk import make_client

    def make(tenant: str | None = None, roles: Sequence[str] = (READ_WRITE,),
             scopes: Sequence[str] = (), beta: bool = False) -> Any:
        token = graphsec_token(tenant=tenant, roles=roles, scopes=scopes)
        return make_client(token, graphsec.base_url("beta" if beta else "v1.0"), beta)

    return make
