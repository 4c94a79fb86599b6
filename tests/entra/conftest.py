"""Fixtures of the Entra tests: one ``graphsec serve --tls`` per backend for the module, and
the environment the client libraries read the CA from."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.entra.support import EntraServer
from tests.support.server import serving


@pytest.fixture(scope="module")
def entra(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[EntraServer]:
    """A real ``graphsec serve --tls`` (SQLite in its home, or a fresh PostgreSQL database)."""
    with serving(backend, tmp_path_factory.mktemp("entra"), "--tls",
                 clean_log=False) as server:
        yield EntraServer(server, ("--database", server.database_url))


@pytest.fixture
def trust_ca(entra: EntraServer, monkeypatch: pytest.MonkeyPatch) -> EntraServer:
    """The client libraries trust the server's CA, as the README says to set it up
    (``SSL_CERT_FILE`` for urllib/httpx, ``REQUESTS_CA_BUNDLE`` for requests)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(entra.ca))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(entra.ca))
    return entra


@pytest.fixture
def tenant() -> str:
    return str(uuid.uuid4())
