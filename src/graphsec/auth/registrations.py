"""App registrations: the clients graphsec's token endpoint knows, and their credentials.

A registration is stored by the store (``storage/base.py`` ``Registrations``, reached through
the :class:`RegistrationStore` Protocol here, so ``auth`` imports no storage). Its secret is
kept as a SHA-256 only: the secret is 256 random bits (``secrets.token_urlsafe(32)``), so
no guessing can find a preimage, and a slow, salted hash (scrypt, PBKDF2), which exists to
protect low-entropy passwords, would add nothing but latency to every token request.
Certificates are kept as their PEM (public: no secret), matched by the SHA-1 thumbprint that
client assertions carry in ``x5t``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from graphsec.auth.principal import TENANT_EXAMPLE, canonical_tenant


class StoredApp(Protocol):
    """A registration as the store gives it back."""

    @property
    def tenant(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def secret_sha256(self) -> str | None: ...
    @property
    def roles(self) -> tuple[str, ...]: ...
    @property
    def certificates(self) -> tuple[str, ...]: ...
    @property
    def created(self) -> str: ...


class RegistrationStore(Protocol):
    """Where registrations live (both stores implement it: ``storage/base.py``)."""

    async def add_registration(self, tenant: str, client_id: str, name: str,
                               secret_sha256: str | None, roles: tuple[str, ...],
                               certificates: tuple[str, ...]) -> None: ...

    async def registration(self, tenant: str, client_id: str) -> StoredApp | None: ...

    async def registrations(self, tenant: str | None) -> Sequence[StoredApp]: ...

    async def delete_registration(self, tenant: str, client_id: str) -> bool: ...

    async def has_registrations(self, tenant: str) -> bool: ...


class RegistrationError(ValueError):
    """A registration that cannot be made (a tenant that is not a GUID, a certificate that
    cannot be read); the message says which and why, in one line."""


def hash_secret(secret: str) -> str:
    """The stored form of a client secret: its SHA-256, hex (module docstring: why)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(app: StoredApp, secret: str) -> bool:
    """Whether ``secret`` is the app's secret (compared in constant time)."""
    if app.secret_sha256 is None:
        return False
    return hmac.compare_digest(hash_secret(secret), app.secret_sha256)


def thumbprint(certificate: x509.Certificate) -> str:
    """The certificate's SHA-1 thumbprint as JWT ``x5t`` carries it: base64url, no padding
    (MSAL sends the ``=`` padding; compare with it stripped). SHA-1 because ``x5t`` is
    defined so (RFC 7515); it names a certificate, it does not secure anything."""
    digest = certificate.fingerprint(hashes.SHA1())  # noqa: S303
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_certificate(pem: str) -> x509.Certificate:
    """The X.509 certificate in ``pem``; :class:`RegistrationError` when it is not one with an
    RSA key (client assertions are RS256)."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise RegistrationError(f"not a PEM X.509 certificate ({exc})") from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise RegistrationError("the certificate's key is not RSA; client assertions are "
                                "signed with RS256")
    return certificate


def certificate_pems(text: str) -> tuple[str, ...]:
    """The certificates of a PEM file (a key in it is ignored, never stored), each as PEM."""
    blocks = [b for b in text.split("-----END CERTIFICATE-----") if "-----BEGIN CERTIFICATE-----" in b]
    out = []
    for block in blocks:
        pem = block[block.index("-----BEGIN CERTIFICATE-----"):] + "-----END CERTIFICATE-----\n"
        cert = load_certificate(pem)
        out.append(cert.public_bytes(serialization.Encoding.PEM).decode())
    if not out:
        raise RegistrationError("the file holds no PEM certificate "
                                "(-----BEGIN CERTIFICATE-----)")
    return tuple(out)


@dataclass(frozen=True)
class Created:
    """A registration just made, with its secret (shown once, never stored)."""

    tenant: str
    client_id: str
    name: str
    roles: tuple[str, ...]
    client_secret: str | None
    thumbprints: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"tenantId": self.tenant, "clientId": self.client_id, "displayName": self.name,
                "roles": list(self.roles), "clientSecret": self.client_secret,
                "certificateThumbprints": list(self.thumbprints)}


def tenant_id(value: str) -> str:
    """The canonical tenant id; :class:`RegistrationError` when ``value`` is not a GUID."""
    tenant = canonical_tenant(value.strip())
    if tenant is None:
        raise RegistrationError(f"--tenant {value!r} is not a tenant id: tenant ids are GUIDs, "
                                f"e.g. --tenant {TENANT_EXAMPLE}")
    return tenant


async def register(store: RegistrationStore, tenant: str, name: str, roles: Iterable[str],
                   certificates: Sequence[str] = ()) -> Created:
    """Make a registration in ``tenant``: a new client id; a new secret unless certificates
    (PEM text) are given, in which case the app authenticates with them only."""
    tenant = tenant_id(tenant)
    if not name.strip():
        raise RegistrationError("--name must not be empty")
    pems = tuple(p for text in certificates for p in certificate_pems(text))
    client_id = str(uuid.uuid4())
    secret = None if pems else secrets.token_urlsafe(32)
    unique_roles = tuple(dict.fromkeys(r.strip() for r in roles if r.strip()))
    await store.add_registration(tenant, client_id, name.strip(),
                                 None if secret is None else hash_secret(secret),
                                 unique_roles, pems)
    return Created(tenant, client_id, name.strip(), unique_roles, secret,
                   tuple(thumbprint(load_certificate(p)) for p in pems))


def describe(app: StoredApp) -> dict[str, object]:
    """A registration as ``graphsec app list`` shows it (whether it has a secret, never the
    secret's hash)."""
    return {"tenantId": app.tenant, "clientId": app.client_id, "displayName": app.name,
            "roles": list(app.roles), "hasSecret": app.secret_sha256 is not None,
            "certificateThumbprints": [thumbprint(load_certificate(p)) for p in app.certificates],
            "created": app.created}
