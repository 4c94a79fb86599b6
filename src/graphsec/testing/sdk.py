"""``GraphServiceClient``s for the plugin's ``graph_client`` fixture (needs the ``sdk`` extra).

Each client holds a fixed bearer token and sends plain http to ``localhost`` only, as the SDK
allows. Connections are not kept alive between requests, so a client needs no closing: the
fixture works in any event loop a test runs (pytest-asyncio, anyio) and leaves no socket open.
"""

from __future__ import annotations

from typing import Any

import httpx

try:
    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
        BaseBearerTokenAuthenticationProvider,
    )
    from msgraph_core import GraphClientFactory
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError("graph_client needs the official SDK: pip install 'graphsec[sdk]' "
                      f"({exc})") from None


class StaticToken(AccessTokenProvider):
    """Always the same bearer token, for ``localhost`` only."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._hosts = AllowedHostsValidator(["localhost"])

    async def get_authorization_token(
            self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._hosts


def make_client(token: str, base_url: str, beta: bool = False) -> Any:
    """A ``msgraph.GraphServiceClient`` (``msgraph_beta``'s with ``beta``) on ``base_url``."""
    if beta:
        from msgraph_beta import GraphServiceClient
        from msgraph_beta.graph_request_adapter import GraphRequestAdapter, options
    else:
        from msgraph import GraphServiceClient
        from msgraph.graph_request_adapter import (
            GraphRequestAdapter,
            options,
        )
    # trust_env=False: the server is local, no proxy of the environment applies
    http = httpx.AsyncClient(timeout=30.0, trust_env=False,
                             limits=httpx.Limits(max_keepalive_connections=0))
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(token)),
                                  client=http)
    adapter.base_url = base_url  # before the client is built
    return GraphServiceClient(request_adapter=adapter)
