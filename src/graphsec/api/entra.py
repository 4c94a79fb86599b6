"""The Entra ID endpoints MSAL and azure-identity call, at Entra's paths (no API version).

``GraphApp`` hands every request whose path does not start with ``/v1.0`` or ``/beta`` to its
``doors``, :class:`EntraEndpoints` among them; what no door answers goes on to the usual 400:

- ``GET /{tenant}/v2.0/.well-known/openid-configuration``: the OIDC discovery document, every
  URL on the origin the client used (MSAL requires https ones).
- ``GET /{tenant}/discovery/v2.0/keys``: the JWKS of the signing key.
- ``GET /common/discovery/instance``: instance discovery, for MSAL's ``instance_discovery=``
  pointed at graphsec.
- ``POST /{tenant}/oauth2/v2.0/token``: the client credentials grant (``auth/entra.py``).

Errors are :class:`graphsec.errors.EntraError`, rendered in Entra's shape by ``wire.py``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from graphsec.api.http import Request
from graphsec.auth.entra import TokenEndpoint, missing, tenant_not_found
from graphsec.auth.principal import canonical_tenant
from graphsec.errors import EntraError, MethodNotAllowed
from graphsec.wire import PLAIN_JSON, Response

MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 64
_NAMED_TENANTS = ("common", "organizations", "consumers")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def _json(body: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(body), PLAIN_JSON, {})


class EntraEndpoints:
    """A door of ``GraphApp`` (``api.http.Door``): answers the Entra paths, None for any
    other."""

    label = "entra"
    """The entity set label of its requests in the metrics (a door without one: ``none``)."""

    def __init__(self, tokens: TokenEndpoint, key_id: str, public_key: rsa.RSAPublicKey,
                 body_timeout_seconds: float) -> None:
        self.tokens = tokens
        self.body_timeout_seconds = body_timeout_seconds
        jwk = orjson.loads(RSAAlgorithm.to_jwk(public_key))
        self._jwks = orjson.dumps({"keys": [
            {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": key_id, "x5t": key_id,
             "n": jwk["n"], "e": jwk["e"]}]})

    async def __call__(self, request: Request, base: str) -> Response | None:
        segments = request.raw_path.strip("/").split("/")
        if len(segments) < 3:
            return None
        tenant, rest = unquote(segments[0]), [s.lower() for s in segments[1:]]
        if rest == ["v2.0", ".well-known", "openid-configuration"]:
            _only(request, "GET")
            return _json(self.configuration(tenant, base))
        if rest == ["discovery", "v2.0", "keys"]:
            _only(request, "GET")
            return Response(200, self._jwks, PLAIN_JSON, {})
        if tenant.lower() == "common" and rest == ["discovery", "instance"]:
            _only(request, "GET")
            return _json(self.instance(request.query, base))
        if rest == ["oauth2", "v2.0", "token"]:
            if request.method != "POST":
                raise EntraError(400, "invalid_request", 900561,
                                 "The endpoint only accepts POST requests.")
            return _json(await self.token(request, tenant, f"{base}/{segments[0]}/oauth2/v2.0/token"))
        return None

    @staticmethod
    def configuration(tenant: str, base: str) -> dict[str, Any]:
        """The OIDC document of ``tenant``: a GUID; ``common``/``organizations``, whose issuer
        is templated as Entra's (``…/{tenantid}/v2.0``); or a domain name. Unlike Entra ID,
        graphsec answers for a tenant it does not know (any GUID or domain name), so that the
        application sees AADSTS90002 from the token endpoint rather than MSAL's "Unable to get
        authority configuration" (graphsec knows tenants by id only)."""
        tid = canonical_tenant(tenant)
        if tid is None and not _DOMAIN.fullmatch(tenant):
            raise tenant_not_found(tenant)
        path = tid or tenant.lower()
        root = f"{base}/{path}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/{'{tenantid}' if path in _NAMED_TENANTS else path}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid", "roles"],
            "grant_types_supported": ["client_credentials"],
            "tenant_region_scope": None,
            "cloud_instance_name": urlsplit(base).hostname,
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": urlsplit(base).netloc,
        }

    @staticmethod
    def instance(query: str, base: str) -> dict[str, Any]:
        """Instance discovery: where the tenant of ``authorization_endpoint`` finds its OIDC
        document (MSAL's ``instance_discovery=`` URL)."""
        endpoint = (parse_qs(query).get("authorization_endpoint") or [""])[0]
        parts = urlsplit(endpoint).path.strip("/").split("/")
        if not endpoint or not parts[0]:
            raise EntraError(400, "invalid_instance", 50049,
                             "Unknown or invalid instance: give authorization_endpoint.")
        host = urlsplit(base).netloc
        return {
            "tenant_discovery_endpoint":
                f"{base}/{parts[0]}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host,
                          "aliases": [host]}],
        }

    async def token(self, request: Request, tenant: str, token_url: str) -> dict[str, Any]:
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        request.bound_body_reads(self.body_timeout_seconds)
        body = await request.body(MAX_FORM_BYTES)
        form: dict[str, str] = {}
        if media == "application/x-www-form-urlencoded":
            form = _form(body)
        return await self.tokens.token(tenant, form, token_url,
                                       _basic(request.headers.get("authorization")))


def _only(request: Request, method: str) -> None:
    if request.method != method:
        raise MethodNotAllowed(request.method, [method])


def _form(body: bytes) -> dict[str, str]:
    """The form's fields (the first of repeated ones); 400 for a body that is not one."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_FORM_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise EntraError(400, "invalid_request", 900144,  # graphsec's choice of code
                         "The request body must be an application/x-www-form-urlencoded form "
                         f"of UTF-8 text with at most {MAX_FORM_FIELDS} fields.") from None
    return {k: v[0] for k, v in fields.items()}


def _basic(header: str | None) -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic`` header (RFC 6749 2.3.1)."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise missing("client_id") from None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
