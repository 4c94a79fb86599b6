"""Trusted OIDC issuers (``--trust-issuer URL``): keys from the issuer's JWKS, fetched over HTTPS.

A :class:`RemoteIssuer` is a :class:`graphsec.auth.tokens.TrustedIssuer`: tokens whose ``iss``
is exactly its URL are verified with the RSA keys its JWKS lists, for the configured
audiences. Keys are fetched at start-up (``refresh``), then again in the background when a
token names a ``kid`` the issuer does not have (at most once per ``min_refresh_seconds``) or
when the keys are older than ``max_age_seconds``. A request never waits for a fetch:
verification is synchronous, so a token with an unknown key is refused (401) while the
refresh runs, and accepted once it has brought the key. Fetches run on a thread
(``asyncio.to_thread``) with a short timeout, so an issuer that cannot be reached costs the
event loop nothing and its tokens get 401, never 500.

The HTTPS connection is verified with the system's CA bundle, or the one ``SSL_CERT_FILE``
names (``ssl.create_default_context``), or ``ca_file`` when given.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger("graphsec.auth")

FETCH_TIMEOUT_SECONDS = 3.0
MIN_REFRESH_SECONDS = 5.0
MAX_AGE_SECONDS = 3600.0
MAX_DOCUMENT_BYTES = 1 << 20


class IssuerUnreachable(RuntimeError):
    """The issuer's configuration or keys could not be fetched or read."""


def fetch_json(url: str, context: ssl.SSLContext, timeout: float) -> Any:
    """GET ``url`` (https only) and parse its JSON body (at most 1 MiB); blocking."""
    if not url.lower().startswith("https://"):
        raise IssuerUnreachable(f"{url} is not an https URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            data = response.read(MAX_DOCUMENT_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise IssuerUnreachable(f"GET {url}: {exc}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise IssuerUnreachable(f"GET {url}: the document is larger than 1 MiB")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise IssuerUnreachable(f"GET {url}: not JSON ({exc})") from None


def rsa_keys(jwks: Any) -> dict[str, rsa.RSAPublicKey]:
    """The RSA signing keys of a JWKS document, by ``kid`` (others are skipped)."""
    keys: dict[str, rsa.RSAPublicKey] = {}
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(entries, list):
        raise IssuerUnreachable("the JWKS has no 'keys' array")
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use") == "enc":
            continue
        try:
            key = jwt.PyJWK.from_dict(entry, algorithm="RS256").key
        except jwt.PyJWTError:
            continue
        if isinstance(key, rsa.RSAPublicKey):
            keys[str(entry.get("kid"))] = key
    return keys


class RemoteIssuer:
    """An OIDC issuer whose RS256 tokens are accepted for ``audiences``."""

    def __init__(self, issuer: str, audiences: Sequence[str], *, ca_file: Path | None = None,
                 timeout: float = FETCH_TIMEOUT_SECONDS,
                 min_refresh_seconds: float = MIN_REFRESH_SECONDS,
                 max_age_seconds: float = MAX_AGE_SECONDS) -> None:
        self._issuer = issuer
        self._audiences = tuple(audiences)
        self._context = ssl.create_default_context(
            cafile=None if ca_file is None else str(ca_file))
        self._timeout = timeout
        self._min_refresh = min_refresh_seconds
        self._max_age = max_age_seconds
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._fetched = -float("inf")
        self._attempted = -float("inf")
        self._task: asyncio.Task[bool] | None = None

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def audiences(self) -> Sequence[str]:
        return self._audiences

    def key_for(self, kid: str | None) -> rsa.RSAPublicKey | None:
        """The key for ``kid`` when held (the only key, when the token names none); starts a
        background refresh when it is not, or when the keys are old."""
        if kid is None:
            key = next(iter(self._keys.values())) if len(self._keys) == 1 else None
        else:
            key = self._keys.get(kid)
        now = time.monotonic()
        if key is None or now - self._fetched > self._max_age:
            self._refresh_soon(now)
        return key

    def _refresh_soon(self, now: float) -> None:
        if (self._task is not None and not self._task.done()) or \
                now - self._attempted < self._min_refresh:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not in a server: nothing to refresh in
        self._attempted = now
        self._task = loop.create_task(self.refresh())

    async def refresh(self) -> bool:
        """Fetch the configuration and the keys again; on failure keep the keys held and log
        why. True when the keys were fetched."""
        self._attempted = time.monotonic()
        try:
            keys = await asyncio.to_thread(self._fetch)
        except IssuerUnreachable as exc:
            log.warning("trusted issuer %s: %s; its tokens with keys not held are refused",
                        self._issuer, exc)
            return False
        self._keys = keys
        self._fetched = time.monotonic()
        return True

    def _fetch(self) -> dict[str, rsa.RSAPublicKey]:
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        config = fetch_json(url, self._context, self._timeout)
        if not isinstance(config, dict):
            raise IssuerUnreachable(f"{url} is not a JSON object")
        if str(config.get("issuer", "")).rstrip("/") != self._issuer.rstrip("/"):
            raise IssuerUnreachable(f"{url} names the issuer {config.get('issuer')!r}, not "
                                    f"{self._issuer!r}")
        jwks_uri = config.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise IssuerUnreachable(f"{url} has no jwks_uri")
        return rsa_keys(fetch_json(jwks_uri, self._context, self._timeout))
