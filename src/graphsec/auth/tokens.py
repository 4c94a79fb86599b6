"""Bearer tokens: minting by the development issuer, and verification against trusted issuers.

Verification goes through a list of :class:`TrustedIssuer`; each says which ``iss`` it answers
for, which audiences it accepts and how it finds the public key for a ``kid``. The development
issuer is one of them; an OIDC issuer (keys from a JWKS URL, ``auth/oidc.py``) plugs in as
another, by configuration, without touching request handling. The token endpoint's issuer
(:class:`TenantIssuer`) answers for a family of ``iss`` values, one per tenant
(``https://sts.windows.net/{tid}/``, as Entra ID's v1 tokens for Graph carry), all signed by
the same key.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from graphsec.auth.keys import SigningKey
from graphsec.auth.principal import DEV_APPLICATION, TENANT_EXAMPLE, Principal, canonical_tenant
from graphsec.errors import Unauthenticated, bearer_challenge

DEV_ISSUER = "urn:graphsec:dev-issuer"
GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
ALGORITHMS = ["RS256"]
CLOCK_SKEW_SECONDS = 30
STS_PREFIX = "https://sts.windows.net/"
_STS_ISSUER = re.compile(r"https://sts\.windows\.net/([0-9a-fA-F-]{36})/")


class TrustedIssuer(Protocol):
    """An issuer whose tokens graphsec accepts."""

    @property
    def issuer(self) -> str:
        """The ``iss`` value this issuer's tokens carry."""

    @property
    def audiences(self) -> Sequence[str]:
        """The ``aud`` values accepted from this issuer."""

    def key_for(self, kid: str | None) -> rsa.RSAPublicKey | None:
        """The public key for ``kid``, or None when the issuer has no such key."""


@dataclass(frozen=True)
class LocalIssuer:
    """The development issuer: tokens signed by the key in ``GRAPHSEC_HOME``."""

    key: SigningKey
    issuer: str = DEV_ISSUER
    audiences: Sequence[str] = GRAPH_AUDIENCES

    def key_for(self, kid: str | None) -> rsa.RSAPublicKey | None:
        return self.key.public if kid in (None, self.key.kid) else None

    def mint(
        self,
        tenant: str,
        roles: Iterable[str] = (),
        scopes: Iterable[str] = (),
        expires_in: int = 3600,
        identity: str | None = None,
        now: int | None = None,
        application: str = DEV_APPLICATION,
    ) -> str:
        """A signed RS256 JWT shaped like Entra ID's: app permissions in ``roles``, delegated
        ones in ``scp`` (space-separated), the tenant in ``tid``, the client in ``appid``."""
        issued = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "aud": self.audiences[0],
            "iss": self.issuer,
            "iat": issued,
            "nbf": issued,
            "exp": issued + expires_in,
            "tid": tenant,
            "oid": str(uuid.uuid4()),
            "appid": application,
            "app_displayname": "graphsec development client",
            "ver": "1.0",
        }
        claims["sub"] = claims["oid"]
        roles, scopes = list(roles), list(scopes)
        if roles:
            claims["roles"] = roles
        if scopes:
            claims["scp"] = " ".join(scopes)
        if identity:
            claims["upn"] = identity
        return jwt.encode(claims, self.key.private, algorithm="RS256",
                          headers={"kid": self.key.kid})


@dataclass(frozen=True)
class TenantIssuer:
    """The token endpoint's issuer: app-only tokens for registered clients, one ``iss`` per
    tenant (``https://sts.windows.net/{tid}/``, Entra ID's v1 issuer, which is what Graph's
    tokens carry), signed by the key in ``GRAPHSEC_HOME``."""

    key: SigningKey
    audiences: Sequence[str] = GRAPH_AUDIENCES

    @staticmethod
    def issuer_of(tenant: str) -> str:
        return f"{STS_PREFIX}{tenant}/"

    def key_for(self, kid: str | None) -> rsa.RSAPublicKey | None:
        return self.key.public if kid == self.key.kid else None

    def mint(self, tenant: str, client_id: str, name: str, roles: Iterable[str],
             expires_in: int, certificate: bool = False, now: int | None = None) -> str:
        """An RS256 access token shaped like Entra ID's for an application (client
        credentials): ``aud`` Graph, ``iss``/``idp`` the tenant's issuer, ``appid`` the
        client, ``oid``/``sub`` its service principal (stable per registration),
        ``idtyp: app``, ``roles`` its application permissions, ``appidacr`` 1 for a secret and
        2 for a certificate."""
        issued = int(time.time()) if now is None else now
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"graphsec:{tenant}:{client_id}"))
        claims: dict[str, Any] = {
            "aud": self.audiences[0],
            "iss": self.issuer_of(tenant),
            "iat": issued,
            "nbf": issued,
            "exp": issued + expires_in,
            "app_displayname": name,
            "appid": client_id,
            "appidacr": "2" if certificate else "1",
            "idp": self.issuer_of(tenant),
            "idtyp": "app",
            "oid": oid,
            "sub": oid,
            "tid": tenant,
            "uti": uuid.uuid4().hex[:22],
            "ver": "1.0",
        }
        roles = list(roles)
        if roles:
            claims["roles"] = roles
        return jwt.encode(claims, self.key.private, algorithm="RS256",
                          headers={"kid": self.key.kid, "x5t": self.key.kid})


@dataclass(frozen=True)
class _TenantBound:
    """:class:`TenantIssuer` as the :class:`TrustedIssuer` of one tenant's ``iss``."""

    of: TenantIssuer
    issuer: str

    @property
    def audiences(self) -> Sequence[str]:
        return self.of.audiences

    def key_for(self, kid: str | None) -> rsa.RSAPublicKey | None:
        return self.of.key_for(kid)


class TokenVerifier:
    """Turns an ``Authorization`` header into a :class:`Principal`, or raises 401.

    Verified tokens are remembered (bounded, until they expire) so that a client sending the
    same token on every request pays for the RSA signature check once. ``tenant_issuer``, when
    given, answers for every ``https://sts.windows.net/{tid}/`` (its tokens' ``tid`` must be
    that tenant). ``authority`` names, in the 401's ``WWW-Authenticate``, where clients get
    tokens (graphsec's own origin when it serves the token endpoint).
    """

    def __init__(self, issuers: Sequence[TrustedIssuer], cache_size: int = 4096,
                 tenant_issuer: TenantIssuer | None = None,
                 authority: str = "https://login.microsoftonline.com") -> None:
        self._issuers = {i.issuer: i for i in issuers}
        self._tenant_issuer = tenant_issuer
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size
        self._challenge = bearer_challenge(authority)

    def verify_header(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("Access token is empty.", self._challenge)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(
                "Access token validation failure: the Authorization header must be "
                "'Bearer <token>'.", self._challenge
            )
        return self.verify(token)

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None:
            principal, exp = cached
            if now < exp + CLOCK_SKEW_SECONDS:
                self._cache.move_to_end(token)
                return principal
            del self._cache[token]
        principal, exp = self._verify(token)
        self._cache[token] = (principal, exp)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    def _issuer(self, iss: str) -> TrustedIssuer | None:
        issuer = self._issuers.get(iss)
        if issuer is None and self._tenant_issuer is not None and iss.startswith(STS_PREFIX):
            match = _STS_ISSUER.fullmatch(iss)
            if match is not None:
                return _TenantBound(self._tenant_issuer, iss)
        return issuer

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            return self._checked(token)
        except Unauthenticated as exc:
            raise Unauthenticated(exc.message, self._challenge) from None

    def _checked(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _invalid("the token is not a well-formed JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise _invalid(f"the signing algorithm {header.get('alg')!r} is not accepted")
        issuer = self._issuer(str(unverified.get("iss")))
        if issuer is None:
            raise _invalid("the token's issuer is not trusted")
        key = issuer.key_for(header.get("kid"))
        if key is None:
            raise _invalid("the token was signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=list(issuer.audiences),
                issuer=issuer.issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _invalid("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise _invalid("the token's audience is not Microsoft Graph") from None
        except jwt.InvalidSignatureError:
            raise _invalid("the signature is invalid") from None
        except jwt.PyJWTError as exc:
            raise _invalid(str(exc).rstrip(".")) from None
        principal = _principal(claims)
        if isinstance(issuer, _TenantBound) and issuer.issuer.lower() != TenantIssuer.issuer_of(
                principal.tenant):
            raise _invalid("the token's tenant ('tid') is not its issuer's")
        return principal, float(claims["exp"])


def _invalid(reason: str) -> Unauthenticated:
    return Unauthenticated(f"Access token validation failure: {reason}.")


def _principal(claims: dict[str, Any]) -> Principal:
    """The caller the verified ``claims`` describe. The tenant is canonical (lower case): a
    token whose ``tid`` is the same GUID in upper case reaches the same data; a ``tid`` that is
    not a GUID is refused, where Entra ID never issues one."""
    tid = claims.get("tid")
    if not isinstance(tid, str) or not tid:
        raise _invalid("the token has no tenant ('tid' claim)")
    tenant = canonical_tenant(tid)
    if tenant is None:
        raise _invalid(f"the tenant id ('tid' claim) {tid[:64]!r} is not a GUID; tenant ids "
                       f"look like {TENANT_EXAMPLE}")
    roles = claims.get("roles", [])
    scp = claims.get("scp", "")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise _invalid("the 'roles' claim must be a list of strings")
    if not isinstance(scp, str):
        raise _invalid("the 'scp' claim must be a space-separated string")
    identity = next(
        (claims[c] for c in ("upn", "preferred_username", "unique_name", "app_displayname",
                             "appid", "sub")
         if isinstance(claims.get(c), str) and claims[c]),
        "unknown",
    )
    application = next((claims[c] for c in ("appid", "azp")
                        if isinstance(claims.get(c), str) and claims[c]), DEV_APPLICATION)
    return Principal(tenant, frozenset(roles), frozenset(scp.split()), identity,
                     application[:128])
