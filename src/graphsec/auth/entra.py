"""graphsec's own Entra ID: the client credentials grant, checked as Entra ID checks it.

:class:`TokenEndpoint` takes the parsed form of ``POST /{tenant}/oauth2/v2.0/token`` (the
HTTP side is ``graphsec.api.entra``) and answers Entra's token response, or raises
:class:`graphsec.errors.EntraError` with the status, OAuth error and AADSTS code Entra ID
answers (docs/authentication.md lists them; where no public source shows Entra's exact code,
the docstring of the check says graphsec chose it).

The registration is read from the store on every request, so a registration made by
``graphsec app create`` works at once on every worker and instance, and a deleted one gets no
new token (tokens already issued stay valid until they expire, as in Entra ID).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography import x509

from graphsec.auth.principal import canonical_tenant
from graphsec.auth.registrations import (
    RegistrationStore,
    StoredApp,
    load_certificate,
    secret_matches,
    thumbprint,
)
from graphsec.auth.tokens import CLOCK_SKEW_SECONDS, GRAPH_AUDIENCES, TenantIssuer
from graphsec.errors import EntraError

EXPIRES_IN = 3599
"""Seconds a token lives, as Entra ID's ``expires_in`` for app tokens (an hour, less one)."""
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRAPH_RESOURCES = frozenset({*GRAPH_AUDIENCES, "https://graph.microsoft.com/"})
ASSERTION_MAX_LIFETIME = 3600 + CLOCK_SKEW_SECONDS


def tenant_not_found(tenant: str) -> EntraError:
    return EntraError(400, "invalid_request", 90002,
                      f"Tenant '{tenant[:100]}' not found. Check to make sure you have the "
                      "correct tenant ID and are signing into the correct cloud.")


def missing(parameter: str) -> EntraError:
    return EntraError(400, "invalid_request", 900144,
                      f"The request body must contain the following parameter: '{parameter}'.")


def _invalid_client(aadsts: int, description: str) -> EntraError:
    return EntraError(401, "invalid_client", aadsts, description)


class TokenEndpoint:
    """The client credentials grant for the registrations in ``store``, tokens minted by
    ``issuer``."""

    def __init__(self, store: RegistrationStore, issuer: TenantIssuer,
                 expires_in: int = EXPIRES_IN) -> None:
        self.store = store
        self.issuer = issuer
        self.expires_in = expires_in

    async def token(self, tenant_segment: str, form: Mapping[str, str], token_url: str,
                    basic: tuple[str, str] | None = None) -> dict[str, Any]:
        """Entra's token response for ``form`` sent to ``token_url`` (whose tenant segment is
        ``tenant_segment``); ``basic``: the client id and secret of an ``Authorization:
        Basic`` header (client_secret_basic)."""
        tenant = canonical_tenant(tenant_segment)
        if tenant is None or not await self.store.has_registrations(tenant):
            raise tenant_not_found(tenant_segment)
        grant = form.get("grant_type")
        if not grant:
            raise missing("grant_type")
        if grant != "client_credentials":
            raise EntraError(400, "unsupported_grant_type", 70003,
                             f"The app requested an unsupported grant type '{grant[:100]}'. "
                             "graphsec supports client_credentials.")
        client_id = form.get("client_id") or (basic[0] if basic else "")
        if not client_id:
            raise missing("client_id")
        app = await self.store.registration(tenant, client_id.lower())
        if app is None:
            raise EntraError(400, "unauthorized_client", 700016,
                             f"Application with identifier '{client_id[:100]}' was not found "
                             f"in the directory '{tenant}'. This can happen if the application "
                             "has not been installed by the administrator of the tenant or "
                             "consented to by any user in the tenant. You may have sent your "
                             "authentication request to the wrong tenant.")
        scope = form.get("scope")
        if not scope:
            raise missing("scope")
        self._check_scope(scope, tenant, token_url)
        certificate = self._authenticate(app, form, token_url, basic)
        token = self.issuer.mint(tenant, app.client_id, app.name, app.roles, self.expires_in,
                                 certificate=certificate)
        return {"token_type": "Bearer", "expires_in": self.expires_in,
                "ext_expires_in": self.expires_in, "access_token": token}

    @staticmethod
    def _check_scope(scope: str, tenant: str, token_url: str) -> None:
        """One ``{resource}/.default`` for Graph's resource (URI or app id) or graphsec's own
        origin (any port: the SDK asks for ``{scheme}://{host}/.default`` with the port
        stripped when it is given no scopes)."""
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise EntraError(400, "invalid_scope", 1002012,
                             f"The provided value for scope {scope[:200]} is not valid. Client "
                             "credential flows must have a scope value with /.default suffixed "
                             "to the resource identifier (application ID URI).")
        resource = scopes[0][:-len("/.default")]
        if resource in GRAPH_RESOURCES or resource.lower() in GRAPH_RESOURCES:
            return
        try:
            host = urlsplit(resource).hostname
        except ValueError:
            host = None
        if host is not None and host == urlsplit(token_url).hostname:
            return
        raise EntraError(400, "invalid_resource", 500011,
                         f"The resource principal named {resource[:200]} was not found in the "
                         f"tenant named {tenant}. This can happen if the application has not "
                         "been installed by the administrator of the tenant or consented to by "
                         "any user in the tenant. graphsec issues tokens for "
                         "https://graph.microsoft.com and for its own origin.")

    def _authenticate(self, app: StoredApp, form: Mapping[str, str], token_url: str,
                      basic: tuple[str, str] | None) -> bool:
        """Check the client's credential; True when it was a certificate."""
        assertion = form.get("client_assertion")
        secret = form.get("client_secret") or (basic[1] if basic else None)
        if assertion:
            if form.get("client_assertion_type") != JWT_BEARER:
                raise EntraError(400, "invalid_request", 700002,  # graphsec's choice of code
                                 f"The client_assertion_type must be '{JWT_BEARER}'.")
            self._check_assertion(app, assertion, token_url)
            return True
        if secret is None:
            raise _invalid_client(7000216, "'client_assertion', 'client_secret' or 'request' "
                                           "is required for the 'client_credentials' grant "
                                           "type.")
        if not secret_matches(app, secret):
            raise _invalid_client(7000215, "Invalid client secret provided. Ensure the secret "
                                           "being sent in the request is the client secret "
                                           "value, not the client secret ID, for a secret "
                                           f"added to app '{app.client_id}'.")
        return False

    @staticmethod
    def _check_assertion(app: StoredApp, assertion: str, token_url: str) -> None:
        """An RS256 JWT signed by one of the app's certificates (found by ``x5t``), ``aud``
        the token URL, ``iss`` and ``sub`` the client id, within its lifetime."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise EntraError(400, "invalid_request", 50027,
                             "JWT token is invalid or malformed.") from None
        x5t = str(header.get("x5t", "")).rstrip("=")
        certificates = {thumbprint(c): c for c in map(load_certificate, app.certificates)}
        certificate: x509.Certificate | None = certificates.get(x5t)
        if certificate is None:
            shown = _hex(x5t)
            raise _invalid_client(700027, "The certificate with identifier used to sign the "
                                          "client assertion is not registered on application. "
                                          "[Reason - The key was not found., Thumbprint of key "
                                          f"used by client: '{shown}']")
        try:
            claims = jwt.decode(assertion, certificate.public_key(), algorithms=["RS256"],  # type: ignore[arg-type]
                                audience=token_url, leeway=CLOCK_SKEW_SECONDS,
                                options={"require": ["exp", "aud", "iss", "sub"]})
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise _invalid_client(700024, "Client assertion is not within its valid time "
                                          "range.") from None
        except jwt.InvalidAudienceError:
            raise _invalid_client(700212, "The client assertion's audience (aud) must be the "
                                          f"token endpoint, {token_url}.") from None  # chosen
        except jwt.PyJWTError:
            raise _invalid_client(7000274, "Client assertion failed signature validation."
                                  ) from None  # graphsec's choice of code
        if (str(claims.get("iss", "")).lower(), str(claims.get("sub", "")).lower()) != \
                (app.client_id, app.client_id):
            raise _invalid_client(700021, "Client assertion application identifier doesn't "
                                          "match 'client_id' parameter.")
        if float(claims["exp"]) - float(claims.get("iat", claims.get("nbf", time.time()))) > \
                ASSERTION_MAX_LIFETIME:
            raise _invalid_client(700024, "Client assertion contains an invalid lifetime: "
                                          "more than an hour between iat and exp.")


def _hex(x5t: str) -> str:
    try:
        return base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4)).hex().upper()[:40]
    except ValueError:
        return x5t[:40]
