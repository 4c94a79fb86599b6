"""Fixtures for the msgraph-sdk tests: one real graphsec server per session, SDK clients per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from msgraph import GraphServiceClient
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_middleware_options
from msgraph_core import GraphClientFactory

from tests.support.server import READ_WRITE, ClientFactory, RunningServer, serving


class StaticToken(AccessTokenProvider):
    """Always the same bearer token, for localhost only (no Azure AD involved)."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._hosts = AllowedHostsValidator(["localhost"])

    async def get_authorization_token(self, uri: str,
                                      additional_authentication_context: dict[str, Any] | None = None
                                      ) -> str:
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._hosts


@pytest.fixture(scope="session")
def graphsec_server(tmp_path_factory: pytest.TempPathFactory,
                    backend: str) -> Iterator[RunningServer]:
    """One real server per backend for the session (SQLite in its home, or a fresh
    PostgreSQL database)."""
    with serving(backend, tmp_path_factory.mktemp("graphsec"), clean_log=False) as server:
        yield server


@pytest.fixture
def tenant() -> str:
    """A fresh tenant per test, so tests never see each other's data."""
    return str(uuid.uuid4())


@pytest.fixture
def writer_token(graphsec_server: RunningServer, tenant: str) -> str:
    return graphsec_server.token(tenant, READ_WRITE, identity="tester@contoso.example")


@pytest.fixture
async def make_client(graphsec_server: RunningServer) -> AsyncIterator[ClientFactory]:
    """Build ``GraphServiceClient``s on the test server; their connections are closed after.

    msgraph-core 1.5.2's ``AsyncGraphTransport`` (the middleware transport the factory installs)
    does not forward ``aclose()`` to the transport it wraps, so ``AsyncClient.aclose()`` alone
    leaves pooled sockets open (ResourceWarning). The tests therefore own the inner transport
    and close it themselves.
    """
    opened: list[tuple[httpx.AsyncClient, httpx.AsyncHTTPTransport]] = []

    async def make(token: str, version: str = "v1.0") -> GraphServiceClient:
        transport = httpx.AsyncHTTPTransport()
        # trust_env=False: the server is on localhost, no proxy from the environment applies
        http = httpx.AsyncClient(transport=transport, timeout=30.0, trust_env=False)
        opened.append((http, transport))
        http = GraphClientFactory.create_with_default_middleware(
            client=http, options=graph_middleware_options)
        adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(token)),
                                      client=http)
        adapter.base_url = graphsec_server.base_url(version)  # before building the client
        return GraphServiceClient(request_adapter=adapter)

    yield make
    for http, transport in opened:
        await http.aclose()
        await transport.aclose()


@pytest.fixture
async def make_beta_client(graphsec_server: RunningServer) -> AsyncIterator[Callable[[str], Any]]:
    """Like ``make_client``, with msgraph-beta-sdk's client on ``/beta``."""
    from msgraph_beta import GraphServiceClient as BetaClient
    from msgraph_beta.graph_request_adapter import GraphRequestAdapter as BetaAdapter
    from msgraph_beta.graph_request_adapter import options as beta_options

    opened: list[tuple[httpx.AsyncClient, httpx.AsyncHTTPTransport]] = []

    def make(token: str) -> BetaClient:
        transport = httpx.AsyncHTTPTransport()
        http = httpx.AsyncClient(transport=transport, timeout=30.0, trust_env=False)
        opened.append((http, transport))
        http = GraphClientFactory.create_with_default_middleware(client=http,
                                                                 options=beta_options)
        adapter = BetaAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(token)),
                              client=http)
        adapter.base_url = graphsec_server.base_url("beta")
        return BetaClient(request_adapter=adapter)

    yield make
    for http, transport in opened:
        await http.aclose()
        await transport.aclose()


@pytest.fixture
async def client(make_client: ClientFactory, writer_token: str) -> GraphServiceClient:
    """A v1.0 client for ``tenant`` holding SecurityEvents.ReadWrite.All."""
    return await make_client(writer_token)
