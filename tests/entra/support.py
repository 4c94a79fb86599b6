"""Helpers of the Entra tests: a ``graphsec serve --tls``, registrations made with the real CLI,
certificates, and Graph clients built as an application builds them."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from azure.core.credentials import TokenCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphServiceClient
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_middleware_options
from msgraph_core import GraphClientFactory

from tests.support.server import RunningServer

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass
class EntraServer:
    """A ``graphsec serve --tls`` and the ``--database`` it was given (for ``graphsec app``)."""

    server: RunningServer
    database_args: tuple[str, ...]

    @property
    def origin(self) -> str:
        return self.server.origin

    @property
    def ca(self) -> Path:
        return self.server.home / "ca" / "graphsec-ca.pem"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``graphsec *args`` with this server's home (and ``--database`` for ``app``)."""
        extra = self.database_args if args and args[0] == "app" else ()
        done = subprocess.run([sys.executable, "-m", "graphsec.cli", *args, *extra],  # noqa: S603
                              env=self.server.env, capture_output=True, text=True, timeout=60,
                              check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"graphsec {' '.join(args)} failed: {done.stderr}")
        return done

    def create_app(self, tenant: str, name: str, *roles: str,
                   certificate: Path | None = None) -> dict[str, Any]:
        """``graphsec app create``'s JSON."""
        args = ["app", "create", "--tenant", tenant, "--name", name]
        for role in roles:
            args += ["--role", role]
        if certificate is not None:
            args += ["--certificate", str(certificate)]
        created: dict[str, Any] = json.loads(self.cli(*args).stdout)
        return created


@dataclass(frozen=True)
class Certificate:
    """A self-signed RSA certificate (``cert``) and a PEM holding its key and it (``both``),
    as ``CertificateCredential`` takes it."""

    cert: Path
    both: Path
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def make_certificate(folder: Path, name: str = "app") -> Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=30))
                   .sign(key, hashes.SHA256()))
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-cert.pem").write_bytes(cert_pem)
    (folder / f"{name}.pem").write_bytes(key_pem + cert_pem)
    return Certificate(folder / f"{name}-cert.pem", folder / f"{name}.pem", key, certificate)


@asynccontextmanager
async def graph_client(server: EntraServer, credential: TokenCredential,
                       scopes: list[str] | None = None) -> AsyncIterator[GraphServiceClient]:
    """A ``GraphServiceClient`` authenticated by ``credential`` as the issue's snippet builds
    it, on an httpx client trusting the server's CA; its connections closed after (see
    tests/sdk/conftest.py for why the transport is closed by hand)."""
    transport = httpx.AsyncHTTPTransport(verify=server.ssl_context())
    http = httpx.AsyncClient(transport=transport, timeout=30.0, trust_env=False)
    try:
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[GRAPH_SCOPE] if scopes is None else scopes,
            allowed_hosts=["localhost"])
        adapter = GraphRequestAdapter(auth, client=GraphClientFactory.create_with_default_middleware(
            client=http, options=graph_middleware_options))
        adapter.base_url = f"{server.origin}/v1.0"
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await http.aclose()
        await transport.aclose()
