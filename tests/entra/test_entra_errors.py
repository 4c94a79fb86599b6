"""Each Entra error as the application sees it through the real client libraries
(azure-identity raises ClientAuthenticationError with the AADSTS description; MSAL returns a
dict with ``error`` and ``error_codes``), and the wire shape behind them."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential
from cryptography.hazmat.primitives import hashes

from tests.entra.support import GRAPH_SCOPE, Certificate, EntraServer, make_certificate
from tests.support.server import READ


@pytest.fixture
def app(entra: EntraServer, tenant: str) -> dict[str, Any]:
    return entra.create_app(tenant, "errors", READ)


@pytest.fixture
def msal_session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def azure_error(server: EntraServer, tenant: str, client_id: str, secret: str,
                scope: str = GRAPH_SCOPE) -> str:
    """The message of the ClientAuthenticationError get_token raises."""
    with ClientSecretCredential(tenant, client_id, secret, authority=server.origin,
                                disable_instance_discovery=True) as credential, \
            pytest.raises(ClientAuthenticationError) as raised:
        credential.get_token(scope)
    return str(raised.value.message)


def msal_result(server: EntraServer, session: requests.Session, tenant: str, client_id: str,
                credential: Any, scope: str = GRAPH_SCOPE) -> dict[str, Any]:
    client = msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority=f"{server.origin}/{tenant}",
        instance_discovery=False, http_client=session)
    result: dict[str, Any] = client.acquire_token_for_client(scopes=[scope])
    return result


def test_wrong_secret(trust_ca: EntraServer, tenant: str, app: dict[str, Any],
                      msal_session: requests.Session) -> None:
    message = azure_error(trust_ca, tenant, app["clientId"], "not-the-secret")
    assert message.startswith("Authentication failed: AADSTS7000215: Invalid client secret")
    result = msal_result(trust_ca, msal_session, tenant, app["clientId"], "not-the-secret")
    assert (result["error"], result["error_codes"]) == ("invalid_client", [7000215])


def test_unknown_client(trust_ca: EntraServer, tenant: str, app: dict[str, Any],
                        msal_session: requests.Session) -> None:
    unknown = str(uuid.uuid4())
    assert "AADSTS700016: Application with identifier" in azure_error(
        trust_ca, tenant, unknown, app["clientSecret"])
    result = msal_result(trust_ca, msal_session, tenant, unknown, app["clientSecret"])
    assert (result["error"], result["error_codes"]) == ("unauthorized_client", [700016])


@pytest.mark.parametrize("unknown", [
    pytest.param("contoso.example", id="not-a-guid"),
    pytest.param("7e0a5c1e-0000-4000-8000-00000000dead", id="guid-without-registrations"),
])
def test_unknown_tenant(trust_ca: EntraServer, app: dict[str, Any], unknown: str,
                        msal_session: requests.Session) -> None:
    assert "AADSTS90002: Tenant" in azure_error(trust_ca, unknown, app["clientId"],
                                                 app["clientSecret"])
    if unknown.count("-") == 4:  # MSAL reads the OIDC document of a GUID tenant, then posts
        result = msal_result(trust_ca, msal_session, unknown, app["clientId"],
                             app["clientSecret"])
        assert result["error_codes"] == [90002]


def test_unsupported_grant(trust_ca: EntraServer, tenant: str, app: dict[str, Any],
                           msal_session: requests.Session) -> None:
    client = msal.ConfidentialClientApplication(
        app["clientId"], client_credential=app["clientSecret"],
        authority=f"{trust_ca.origin}/{tenant}", instance_discovery=False,
        http_client=msal_session)
    result = client.acquire_token_on_behalf_of("a.user.assertion", scopes=[GRAPH_SCOPE])
    assert (result["error"], result["error_codes"]) == ("unsupported_grant_type", [70003])
    assert "'urn:ietf:params:oauth:grant-type:jwt-bearer'" in result["error_description"]


@pytest.mark.parametrize(("scope", "code"), [
    pytest.param("https://graph.microsoft.com/User.Read", "AADSTS1002012", id="not-default"),
    pytest.param("https://management.azure.com/.default", "AADSTS500011", id="other-resource"),
])
def test_bad_scope(trust_ca: EntraServer, tenant: str, app: dict[str, Any], scope: str,
                   code: str) -> None:
    assert f"{code}:" in azure_error(trust_ca, tenant, app["clientId"], app["clientSecret"],
                                     scope)


@pytest.fixture
def cert_app(entra: EntraServer, tenant: str,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Certificate]:
    cert = make_certificate(tmp_path_factory.mktemp("cert"))
    return entra.create_app(tenant, "cert-errors", READ, certificate=cert.cert), cert


def test_unregistered_certificate(trust_ca: EntraServer, tenant: str,
                                  cert_app: tuple[dict[str, Any], Certificate],
                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    other = make_certificate(tmp_path_factory.mktemp("other"), "other")
    with CertificateCredential(tenant, cert_app[0]["clientId"], str(other.both),
                               authority=trust_ca.origin,
                               disable_instance_discovery=True) as credential, \
            pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        credential.get_token(GRAPH_SCOPE)


def assertion(cert: Certificate, client_id: str, audience: str, *, signer: Any = None,
              issued: float | None = None, lifetime: float = 600) -> str:
    now = time.time() if issued is None else issued
    x5t = base64.urlsafe_b64encode(cert.certificate.fingerprint(hashes.SHA1())).decode()  # noqa: S303
    return jwt.encode({"aud": audience, "iss": client_id, "sub": client_id,
                       "jti": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + lifetime},
                      signer or cert.key, algorithm="RS256", headers={"x5t": x5t})


@pytest.mark.parametrize(("case", "code"), [
    pytest.param("expired", 700024, id="expired"),
    pytest.param("audience", 700212, id="wrong-audience"),
    pytest.param("signature", 7000274, id="bad-signature"),
    pytest.param("malformed", 50027, id="malformed"),
])
def test_bad_assertion(trust_ca: EntraServer, tenant: str, case: str, code: int,
                       cert_app: tuple[dict[str, Any], Certificate],
                       msal_session: requests.Session,
                       tmp_path_factory: pytest.TempPathFactory) -> None:
    created, cert = cert_app
    url = f"{trust_ca.origin}/{tenant}/oauth2/v2.0/token"
    client_id = created["clientId"]
    if case == "expired":
        token = assertion(cert, client_id, url, issued=time.time() - 7200)
    elif case == "audience":
        token = assertion(cert, client_id, "https://login.microsoftonline.com/x/oauth2/v2.0/token")
    elif case == "signature":
        token = assertion(cert, client_id, url,
                          signer=make_certificate(tmp_path_factory.mktemp("k"), "k").key)
    else:
        token = "not.a-jwt"
    result = msal_result(trust_ca, msal_session, tenant, client_id,
                         {"client_assertion": lambda: token})  # a callable, as MSAL asks
    assert result.get("error_codes") == [code], result
    assert result["error_description"].startswith(f"AADSTS{code}: ")


def post(server: EntraServer, tenant: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(verify=server.ssl_context()) as http:
        return http.post(f"{server.origin}/{tenant}/oauth2/v2.0/token", **kwargs)


def test_error_body_is_entra_shaped(entra: EntraServer, tenant: str,
                                    app: dict[str, Any]) -> None:
    r = post(entra, tenant, headers={"client-request-id": "c0ffee00-0000-4000-8000-000000000001"},
             data={"grant_type": "client_credentials", "client_id": app["clientId"],
                   "client_secret": "wrong", "scope": GRAPH_SCOPE})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) >= {"error", "error_description", "error_codes", "timestamp", "trace_id",
                         "correlation_id"}
    assert body["correlation_id"] == "c0ffee00-0000-4000-8000-000000000001"
    assert body["error_description"].startswith("AADSTS7000215: ")


def test_no_credential_is_401(entra: EntraServer, tenant: str, app: dict[str, Any]) -> None:
    r = post(entra, tenant, data={"grant_type": "client_credentials",
                                  "client_id": app["clientId"], "scope": GRAPH_SCOPE})
    assert r.status_code == 401
    assert r.json()["error_codes"] == [7000216]


@pytest.mark.parametrize(("kwargs", "status"), [
    pytest.param({"content": b"grant_type=client_credentials&client_id=\xff\xfe",
                  "headers": {"content-type": "application/x-www-form-urlencoded"}}, 400,
                 id="not-utf8"),
    pytest.param({"json": {"grant_type": "client_credentials"}}, 400, id="json-body"),
    pytest.param({"content": "&".join(f"f{i}=1" for i in range(500)).encode(),
                  "headers": {"content-type": "application/x-www-form-urlencoded"}}, 400,
                 id="too-many-fields"),
    pytest.param({"content": b"%%%=&&&==%zz",
                  "headers": {"content-type": "application/x-www-form-urlencoded"}}, 400,
                 id="garbage"),
    pytest.param({"content": b"a=" + b"x" * 100_000,
                  "headers": {"content-type": "application/x-www-form-urlencoded"}}, 413,
                 id="too-large"),
])
def test_malformed_form_is_never_500(entra: EntraServer, tenant: str, app: dict[str, Any],
                                     kwargs: dict[str, Any], status: int) -> None:
    r = post(entra, tenant, **kwargs)
    assert r.status_code == status, r.text


def test_token_endpoint_wants_post(entra: EntraServer, tenant: str) -> None:
    with httpx.Client(verify=entra.ssl_context()) as http:
        r = http.get(f"{entra.origin}/{tenant}/oauth2/v2.0/token")
    assert r.status_code == 400
    assert r.json()["error_codes"] == [900561]


def test_graph_401_carries_graphs_challenge(entra: EntraServer) -> None:
    with httpx.Client(verify=entra.ssl_context()) as http:
        r = http.get(f"{entra.origin}/v1.0/security/secureScores")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == (
        f'Bearer realm="", authorization_uri="{entra.origin}/common/oauth2/authorize", '
        'client_id="00000003-0000-0000-c000-000000000000"')
