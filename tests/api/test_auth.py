"""Bearer tokens, Graph permissions and tenant isolation."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest

from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from tests.conftest import OTHER_TENANT, RO, RW, TENANT, score

URL = "/v1.0/security/secureScores"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(r: httpx.Response, fragment: str) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert fragment in r.json()["error"]["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


@pytest.mark.parametrize("path", [URL, f"{URL}/x", f"{URL}/$count", "/beta/security/nope"])
async def test_every_api_request_needs_a_token(client: httpx.AsyncClient, path: str) -> None:
    assert_401(await client.get(path), "Access token is empty.")


async def test_non_bearer_scheme_is_401(client: httpx.AsyncClient) -> None:
    assert_401(await client.get(URL, headers={"Authorization": "Basic dXNlcjpwYXNz"}),
               "Bearer")


async def test_alg_none_is_refused(client: httpx.AsyncClient) -> None:
    now = int(time.time())
    claims = {"aud": "https://graph.microsoft.com", "iss": "urn:graphsec:dev-issuer",
              "tid": TENANT, "roles": [RW], "exp": now + 600, "iat": now}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert_401(await client.get(URL, headers=bearer(token)), "algorithm")


async def test_hs256_signed_with_the_public_key_is_refused(client: httpx.AsyncClient,
                                                           issuer: LocalIssuer) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = issuer.key.public.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"aud": "https://graph.microsoft.com", "iss": "urn:graphsec:dev-issuer",
              "tid": TENANT, "roles": [RW], "exp": now + 600}
    header = {"alg": "HS256", "typ": "JWT"}
    import hashlib
    import hmac

    signing_input = f"{_b64(header)}.{_b64(claims)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert_401(await client.get(URL, headers=bearer(token)), "algorithm")


async def test_tampered_claims_are_refused(client: httpx.AsyncClient,
                                           issuer: LocalIssuer) -> None:
    token = issuer.mint(TENANT, [RO])
    head, payload, sig = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = [RW]
    forged = f"{head}.{_b64(claims)}.{sig}"
    assert_401(await client.post(URL, json=score(), headers=bearer(forged)), "signature")


async def test_expired_token_is_refused(client: httpx.AsyncClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(TENANT, [RW], expires_in=60, now=int(time.time()) - 3600)
    assert_401(await client.get(URL, headers=bearer(token)), "expired")


async def test_not_yet_valid_token_is_refused(client: httpx.AsyncClient,
                                              issuer: LocalIssuer) -> None:
    token = issuer.mint(TENANT, [RW], now=int(time.time()) + 3600)
    assert_401(await client.get(URL, headers=bearer(token)), "not valid yet")


async def test_token_from_another_key_is_refused(client: httpx.AsyncClient,
                                                 tmp_path: Path) -> None:
    stranger = LocalIssuer(load_or_create(tmp_path / "elsewhere"))
    assert_401(await client.get(URL, headers=bearer(stranger.mint(TENANT, [RW]))), "key")


async def test_untrusted_issuer_and_wrong_audience_are_refused(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    now = int(time.time())
    base = {"tid": TENANT, "roles": [RW], "exp": now + 600, "iat": now}
    other_iss = jwt.encode(base | {"iss": "https://evil", "aud": "https://graph.microsoft.com"},
                           issuer.key.private, algorithm="RS256",
                           headers={"kid": issuer.key.kid})
    assert_401(await client.get(URL, headers=bearer(other_iss)), "issuer")
    other_aud = jwt.encode(base | {"iss": "urn:graphsec:dev-issuer", "aud": "api://other"},
                           issuer.key.private, algorithm="RS256",
                           headers={"kid": issuer.key.kid})
    assert_401(await client.get(URL, headers=bearer(other_aud)), "audience")


async def test_token_without_tenant_is_refused(client: httpx.AsyncClient,
                                               issuer: LocalIssuer) -> None:
    now = int(time.time())
    token = jwt.encode({"iss": "urn:graphsec:dev-issuer", "aud": "https://graph.microsoft.com",
                        "roles": [RW], "exp": now + 600}, issuer.key.private, algorithm="RS256")
    assert_401(await client.get(URL, headers=bearer(token)), "tid")


@pytest.mark.parametrize(
    ("roles", "scopes", "read", "write"),
    [
        pytest.param((RO,), (), 200, 403, id="app-read"),
        pytest.param((RW,), (), 200, 201, id="app-readwrite"),
        pytest.param((), (RO,), 200, 403, id="delegated-read"),
        pytest.param((), (RW, "User.Read"), 200, 201, id="delegated-readwrite"),
        pytest.param(("User.Read.All",), ("Mail.Read",), 403, 403, id="unrelated"),
        pytest.param((), (), 403, 403, id="none"),
    ],
)
async def test_permissions(client: httpx.AsyncClient, auth: Any, roles: tuple[str, ...],
                           scopes: tuple[str, ...], read: int, write: int) -> None:
    headers = auth(roles=roles, scopes=scopes)
    r = await client.get(URL, headers=headers)
    assert r.status_code == read
    w = await client.post(URL, json=score(), headers=headers)
    assert w.status_code == write
    if write == 403:
        assert w.json()["error"]["code"] == "Authorization_RequestDenied"
        assert RW in w.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path"), [("PATCH", f"{URL}/x"), ("DELETE", f"{URL}/x"),
                                              ("PATCH", URL), ("POST", f"{URL}/$ref")])
async def test_read_only_token_cannot_write(client: httpx.AsyncClient, auth: Any, rw: Any,
                                            method: str, path: str) -> None:
    await client.post(URL, json=score(id="x"), headers=rw)
    r = await client.request(method, path, json=score(id="x", currentScore=1.0),
                             headers=auth(roles=(RO,)))
    assert r.status_code == 403
    assert (await client.get(f"{URL}/x", headers=rw)).json()["currentScore"] == 387.0


async def test_other_tenant_cannot_see_or_change_an_entity(client: httpx.AsyncClient,
                                                           auth: Any) -> None:
    mine, theirs = auth(), auth(tenant=OTHER_TENANT)
    assert (await client.post(URL, json=score(id="s1"), headers=mine)).status_code == 201
    assert (await client.get(f"{URL}/s1", headers=theirs)).status_code == 404
    assert (await client.patch(f"{URL}/s1", json={"currentScore": 1.0},
                               headers=theirs)).status_code == 404
    assert (await client.patch(URL, json={"id": "s1", "currentScore": 1.0},
                               headers=theirs)).status_code == 404
    assert (await client.delete(f"{URL}/s1", headers=theirs)).status_code == 404
    listed = (await client.get(f"{URL}?$count=true", headers=theirs)).json()
    assert listed["value"] == []
    assert listed["@odata.count"] == 0
    assert (await client.get(f"{URL}/$count", headers=theirs)).text == "0"
    # the owner still sees it, unchanged
    assert (await client.get(f"{URL}/s1", headers=mine)).json()["currentScore"] == 387.0


async def test_same_id_in_two_tenants_are_two_entities(client: httpx.AsyncClient,
                                                       auth: Any) -> None:
    mine, theirs = auth(), auth(tenant=OTHER_TENANT)
    assert (await client.post(URL, json=score(id="s", currentScore=1), headers=mine)).status_code == 201
    assert (await client.post(URL, json=score(id="s", currentScore=2),
                              headers=theirs)).status_code == 201
    assert (await client.get(f"{URL}/s", headers=mine)).json()["currentScore"] == 1.0
    assert (await client.get(f"{URL}/s", headers=theirs)).json()["azureTenantId"] == OTHER_TENANT


async def test_body_naming_another_tenant_is_refused(client: httpx.AsyncClient,
                                                     rw: Any) -> None:
    r = await client.post(URL, json=score(azureTenantId=OTHER_TENANT), headers=rw)
    assert r.status_code == 403
    assert OTHER_TENANT in r.json()["error"]["message"]
    await client.post(URL, json=score(id="s"), headers=rw)
    p = await client.patch(f"{URL}/s", json={"azureTenantId": OTHER_TENANT}, headers=rw)
    assert p.status_code == 403
    assert (await client.get(f"{URL}/s", headers=rw)).json()["azureTenantId"] == TENANT
    assert (await client.get(URL, headers=rw)).json()["value"][0]["id"] == "s"


async def test_missing_tenant_in_body_is_the_callers(client: httpx.AsyncClient,
                                                     rw: Any) -> None:
    body = score()
    r = await client.post(URL, json=body, headers=rw)
    assert r.json()["azureTenantId"] == TENANT
