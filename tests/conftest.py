"""Fixtures shared by the whole suite: an app on a fresh GRAPHSEC_HOME and tokens for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from graphsec.app import create_app
from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from graphsec.config import Settings

TENANT = "1d5a1bd0-0000-4000-8000-000000000001"
OTHER_TENANT = "2e6b2ce1-0000-4000-8000-000000000002"
RW = "SecurityEvents.ReadWrite.All"
RO = "SecurityEvents.Read.All"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings.from_env({"GRAPHSEC_HOME": str(home)})


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
