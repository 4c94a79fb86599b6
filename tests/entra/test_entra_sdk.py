"""The application's own authentication code against ``graphsec serve --tls``: azure-identity's
ClientSecretCredential and CertificateCredential and MSAL, then secureScores through
GraphServiceClient, on SQLite and PostgreSQL (registrations live in the database)."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime

import httpx
import jwt
import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.secure_score import SecureScore

from tests.conftest import fresh_postgres_database
from tests.entra.support import GRAPH_SCOPE, EntraServer, graph_client, make_certificate
from tests.support.server import READ, READ_WRITE, start_server


def secret_credential(server: EntraServer, app: dict[str, str]) -> ClientSecretCredential:
    return ClientSecretCredential(app["tenantId"], app["clientId"], app["clientSecret"],
                                  authority=server.origin, disable_instance_discovery=True)


def new_score(tenant: str, score: float) -> SecureScore:
    return SecureScore(azure_tenant_id=tenant, created_date_time=datetime.now(UTC),
                       current_score=score, max_score=100.0, active_user_count=1,
                       licensed_user_count=1, enabled_services=[], control_scores=[],
                       average_comparative_scores=[])


async def test_read_all_app_reads_and_gets_403_on_write(trust_ca: EntraServer, tenant: str) -> None:
    app = trust_ca.create_app(tenant, "reporting", READ)
    with secret_credential(trust_ca, app) as credential:
        async with graph_client(trust_ca, credential) as client:
            page = await client.security.secure_scores.get()
            assert page is not None
            assert page.value == []
            with pytest.raises(APIError) as refused:
                await client.security.secure_scores.post(new_score(tenant, 1.0))
    assert refused.value.response_status_code == 403


async def test_read_write_app_writes_and_reads_back(trust_ca: EntraServer, tenant: str) -> None:
    app = trust_ca.create_app(tenant, "writer", READ_WRITE)
    with secret_credential(trust_ca, app) as credential:
        async with graph_client(trust_ca, credential) as client:
            created = await client.security.secure_scores.post(new_score(tenant, 42.0))
            assert created is not None
            assert created.id
            page = await client.security.secure_scores.get()
    assert page is not None
    assert [s.current_score for s in page.value or []] == [42.0]


async def test_token_claims_are_entra_shaped(trust_ca: EntraServer, tenant: str) -> None:
    app = trust_ca.create_app(tenant, "claims", READ, READ_WRITE)
    with secret_credential(trust_ca, app) as credential:
        token = credential.get_token(GRAPH_SCOPE).token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert claims["iss"] == f"https://sts.windows.net/{tenant}/"
    assert claims["aud"] == "https://graph.microsoft.com"
    assert (claims["tid"], claims["appid"], claims["idtyp"]) == (tenant, app["clientId"], "app")
    assert sorted(claims["roles"]) == sorted([READ, READ_WRITE])
    assert claims["oid"]
    assert claims["exp"] - claims["iat"] == 3599


async def test_sdk_without_scopes_asks_for_graphsec_origin(trust_ca: EntraServer,
                                                           tenant: str) -> None:
    """Given no scopes, kiota asks for ``https://localhost/.default`` (its base URL's origin,
    port stripped): graphsec issues Graph tokens for its own origin too."""
    app = trust_ca.create_app(tenant, "no-scopes", READ)
    with secret_credential(trust_ca, app) as credential:
        async with graph_client(trust_ca, credential, scopes=[]) as client:
            page = await client.security.secure_scores.get()
    assert page is not None
    assert page.value == []


async def test_certificate_credential_reads(trust_ca: EntraServer, tenant: str,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    cert = make_certificate(tmp_path_factory.mktemp("cert"))
    app = trust_ca.create_app(tenant, "by-certificate", READ, certificate=cert.cert)
    assert app["clientSecret"] is None
    assert len(app["certificateThumbprints"]) == 1
    with CertificateCredential(tenant, app["clientId"], str(cert.both), authority=trust_ca.origin,
                               disable_instance_discovery=True) as credential:
        async with graph_client(trust_ca, credential) as client:
            page = await client.security.secure_scores.get()
        claims = jwt.decode(credential.get_token(GRAPH_SCOPE).token,
                            options={"verify_signature": False})
    assert page is not None
    assert page.value == []
    assert claims["appidacr"] == "2"


def test_msal_confidential_client(trust_ca: EntraServer, tenant: str) -> None:
    app = trust_ca.create_app(tenant, "msal", READ)
    with requests.Session() as session:
        client = msal.ConfidentialClientApplication(
            app["clientId"], client_credential=app["clientSecret"],
            authority=f"{trust_ca.origin}/{tenant}", instance_discovery=False, http_client=session)
        result = client.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert result.get("token_type") == "Bearer", result
    with httpx.Client(verify=trust_ca.ssl_context()) as http:
        r = http.get(f"{trust_ca.origin}/v1.0/security/secureScores",
                     headers={"Authorization": f"Bearer {result['access_token']}"})
    assert r.status_code == 200
    assert r.json()["value"] == []


def test_msal_with_graphsec_as_instance_discovery(trust_ca: EntraServer, tenant: str) -> None:
    app = trust_ca.create_app(tenant, "msal-discovery", READ)
    with requests.Session() as session:
        client = msal.ConfidentialClientApplication(
            app["clientId"], client_credential=app["clientSecret"],
            authority=f"{trust_ca.origin}/{tenant}",
            instance_discovery=f"{trust_ca.origin}/common/discovery/instance",
            http_client=session)
        result = client.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert result.get("token_type") == "Bearer", result


def test_curl_form_post(entra: EntraServer, tenant: str) -> None:
    """What ``curl -d grant_type=client_credentials …`` sends and gets."""
    app = entra.create_app(tenant, "curl", READ)
    with httpx.Client(verify=entra.ssl_context()) as http:
        r = http.post(f"{entra.origin}/{tenant}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": app["clientId"],
            "client_secret": app["clientSecret"], "scope": GRAPH_SCOPE})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
        assert (body["token_type"], body["expires_in"], body["ext_expires_in"]) == \
            ("Bearer", 3599, 3599)
        assert r.headers["cache-control"] == "no-store"
        graph = http.get(f"{entra.origin}/v1.0/security/secureScores",
                         headers={"Authorization": f"Bearer {body['access_token']}"})
    assert graph.status_code == 200


def test_openid_configuration_and_keys(entra: EntraServer, tenant: str) -> None:
    with httpx.Client(verify=entra.ssl_context()) as http:
        config = http.get(f"{entra.origin}/{tenant}/v2.0/.well-known/openid-configuration").json()
        assert config["issuer"] == f"{entra.origin}/{tenant}/v2.0"
        assert config["token_endpoint"] == f"{entra.origin}/{tenant}/oauth2/v2.0/token"
        assert config["authorization_endpoint"].startswith("https://")
        keys = http.get(config["jwks_uri"]).json()["keys"]
        app = entra.create_app(tenant, "keys", READ)
        token = http.post(config["token_endpoint"], data={
            "grant_type": "client_credentials", "client_id": app["clientId"],
            "client_secret": app["clientSecret"], "scope": GRAPH_SCOPE}).json()["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    (jwk,) = [k for k in keys if k["kid"] == kid]
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"],
                        audience="https://graph.microsoft.com")
    assert claims["tid"] == tenant


async def test_deleted_registration_gets_no_token(trust_ca: EntraServer, tenant: str) -> None:
    """Deleted: no new token (AADSTS700016); a token issued before stays valid until it
    expires, as in Entra ID."""
    trust_ca.create_app(tenant, "stays", READ)  # the tenant stays known (else AADSTS90002)
    app = trust_ca.create_app(tenant, "short-lived", READ)
    with secret_credential(trust_ca, app) as credential:
        issued = credential.get_token(GRAPH_SCOPE).token
    listed = trust_ca.cli("app", "list", "--tenant", tenant).stdout
    assert app["clientId"] in listed
    assert app["clientSecret"] not in listed
    trust_ca.cli("app", "delete", "--tenant", tenant, app["clientId"])
    assert app["clientId"] not in trust_ca.cli("app", "list", "--tenant", tenant).stdout
    with secret_credential(trust_ca, app) as credential, \
            pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        credential.get_token(GRAPH_SCOPE)
    with httpx.Client(verify=trust_ca.ssl_context()) as http:
        r = http.get(f"{trust_ca.origin}/v1.0/security/secureScores",
                     headers={"Authorization": f"Bearer {issued}"})
    assert r.status_code == 200


async def test_tenant_a_token_sees_nothing_of_tenant_b(trust_ca: EntraServer, tenant: str) -> None:
    other = tenant[:-4] + ("0000" if not tenant.endswith("0000") else "1111")
    writer = trust_ca.create_app(other, "b-writer", READ_WRITE)
    reader = trust_ca.create_app(tenant, "a-reader", READ_WRITE)
    with secret_credential(trust_ca, writer) as credential:
        async with graph_client(trust_ca, credential) as client:
            created = await client.security.secure_scores.post(new_score(other, 7.0))
    assert created is not None
    assert created.id
    with secret_credential(trust_ca, reader) as credential:
        async with graph_client(trust_ca, credential) as client:
            page = await client.security.secure_scores.get()
            with pytest.raises(APIError) as missing:
                await client.security.secure_scores.by_secure_score_id(created.id).get()
    assert page is not None
    assert page.value == []
    assert missing.value.response_status_code == 404


def test_token_for_one_tenant_cannot_claim_another(entra: EntraServer, tenant: str) -> None:
    """A registration of tenant B cannot get a token at tenant A's endpoint."""
    other = str(uuid.uuid4())
    entra.create_app(tenant, "a", READ)
    b = entra.create_app(other, "b", READ)
    with httpx.Client(verify=entra.ssl_context()) as http:
        r = http.post(f"{entra.origin}/{tenant}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": b["clientId"],
            "client_secret": b["clientSecret"], "scope": GRAPH_SCOPE})
    assert r.status_code == 400
    assert r.json()["error_codes"] == [700016]


def test_two_instances_on_one_postgresql_share_registrations(
        tmp_path_factory: pytest.TempPathFactory, tenant: str) -> None:
    """An app made once works on every instance of one database, and once deleted on none."""
    databases = fresh_postgres_database()
    url = next(databases)
    root = tmp_path_factory.mktemp("two")
    first = start_server(root / "a" / "home", "--tls", "--database", url, "--workers", "2")
    try:
        home_b = root / "b" / "home"
        home_b.mkdir(parents=True)
        # the same signing key on both (README, "Scaling out"); each its own CA
        shutil.copy2(first.home / "signing-key.pem", home_b)
        second = start_server(home_b, "--tls", "--database", url)
        try:
            a, b = EntraServer(first, ("--database", url)), EntraServer(second, ("--database", url))
            app = a.create_app(tenant, "shared", READ)
            a.create_app(tenant, "stays", READ)
            form = {"grant_type": "client_credentials", "client_id": app["clientId"],
                    "client_secret": app["clientSecret"], "scope": GRAPH_SCOPE}
            for server in (a, b, a, b):
                with httpx.Client(verify=server.ssl_context()) as http:
                    r = http.post(f"{server.origin}/{tenant}/oauth2/v2.0/token", data=form)
                assert r.status_code == 200, r.text
            b.cli("app", "delete", "--tenant", tenant, app["clientId"])
            for server in (a, b, a):
                with httpx.Client(verify=server.ssl_context()) as http:
                    r = http.post(f"{server.origin}/{tenant}/oauth2/v2.0/token", data=form)
                assert r.status_code == 400
                assert r.json()["error_codes"] == [700016]
        finally:
            second.stop()
    finally:
        first.stop()
        databases.close()
