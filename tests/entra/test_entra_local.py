"""Registrations in the database (both stores), secrets hashed, the local CA and its files,
and the TLS settings."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from graphsec.auth.keys import UnsafeKeyFile
from graphsec.auth.registrations import hash_secret, register, secret_matches
from graphsec.auth.tls import ca_path, leaf_files, load_or_create_ca, server_names
from graphsec.config import Settings, SettingsError
from graphsec.schema.security import ENTITY_SETS
from graphsec.storage.base import Database

TENANT = "1d5a1bd0-0000-4000-8000-000000000001"
OTHER = "2e6b2ce1-0000-4000-8000-000000000002"


def database_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Database:
    """As tests/support/stores.py's ``store_for``, typed as the whole store."""
    if backend == "sqlite":
        from graphsec.storage.sqlite import SQLiteStore

        return SQLiteStore(tmp_path / "store.db", ENTITY_SETS)
    from graphsec.storage.postgres import PostgresStore
    from tests.support.postgres import empty

    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(empty(url))
    return PostgresStore(url, ENTITY_SETS, pool_size=2)


def test_registrations_live_in_the_database(backend: str, tmp_path: Path,
                                            request: pytest.FixtureRequest) -> None:
    db = database_for(backend, tmp_path, request)

    async def scenario() -> None:
        await db.open()
        try:
            created = await register(db, TENANT.upper(), "reporting",
                                     ["SecurityEvents.Read.All", "SecurityEvents.Read.All"])
            await register(db, OTHER, "elsewhere", [])
            assert created.tenant == TENANT
            assert created.client_secret is not None
            stored = await db.registration(TENANT, created.client_id)
            assert stored is not None
            assert stored.roles == ("SecurityEvents.Read.All",)
            assert stored.secret_sha256 == hash_secret(created.client_secret)
            assert created.client_secret not in repr(stored)
            assert secret_matches(stored, created.client_secret)
            assert not secret_matches(stored, created.client_secret + "x")
            assert await db.registration(OTHER, created.client_id) is None
            assert [r.client_id for r in await db.registrations(TENANT)] == [created.client_id]
            assert len(await db.registrations(None)) == 2
            assert await db.has_registrations(TENANT)
            assert await db.delete_registration(TENANT, created.client_id)
            assert not await db.delete_registration(TENANT, created.client_id)
            assert await db.registration(TENANT, created.client_id) is None
            assert not await db.has_registrations(TENANT)
        finally:
            await db.close()

    asyncio.run(scenario())


def test_secret_is_never_in_the_database_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "GRAPHSEC_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "graphsec.cli", "app", "create", "--tenant",  # noqa: S603
                           TENANT, "--name", "x", "--role", "SecurityEvents.Read.All"],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    secret = json.loads(done.stdout)["clientSecret"]
    data = b"".join(p.read_bytes() for p in home.glob("graphsec.db*"))
    assert secret.encode() not in data
    assert hash_secret(secret).encode() in data


def test_local_ca_is_made_once_with_a_private_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ca = load_or_create_ca(home)
    assert ca.path == ca_path(home)
    key_file = ca.path.with_name("graphsec-ca-key.pem")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create_ca(home).certificate == ca.certificate  # created once
    key_file.chmod(0o644)
    with pytest.raises(UnsafeKeyFile, match="chmod 600"):
        load_or_create_ca(home)


def test_leaf_names_loopback_and_bind_host(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cert_file, key_file = leaf_files(home, server_names("192.0.2.7", "graph.example.com",
                                                        "0.0.0.0"))  # noqa: S104
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "graph.example.com"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
        ipaddress.ip_address("192.0.2.7")}
    assert cert.issuer == load_or_create_ca(home).certificate.subject
    assert leaf_files(home, server_names("192.0.2.7", "graph.example.com")) == \
        (cert_file, key_file)  # made once per set of names


def test_graphsec_ca_prints_the_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-m", "graphsec.cli", "ca"],
                          env={**os.environ, "GRAPHSEC_HOME": str(home)}, capture_output=True,
                          text=True, timeout=60, check=True)
    assert Path(done.stdout.strip()) == ca_path(home)
    assert ca_path(home).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_tls_settings(tmp_path: Path) -> None:
    env = {"GRAPHSEC_HOME": str(tmp_path)}
    assert Settings.from_env(env).port == 8000
    tls = Settings.from_env(env, tls=True)
    assert (tls.port, tls.authority) == (8443, "https://localhost:8443")
    assert Settings.from_env(env, tls=True, port=9443).port == 9443
    assert Settings.from_env({**env, "GRAPHSEC_TLS": "1"}).port == 8443
    with pytest.raises(SettingsError, match="go together"):
        Settings.from_env(env, tls=True, certfile=tmp_path / "c.pem")
    with pytest.raises(SettingsError, match="https URL"):
        Settings.from_env(env, trust_issuers=("http://idp.example/realm",))
    parsed = Settings.from_env({**env, "GRAPHSEC_TRUST_ISSUERS": "https://a.example/x https://b.example/y",
                                "GRAPHSEC_AUDIENCES": "api://one api://two"})
    assert parsed.trust_issuers == ("https://a.example/x", "https://b.example/y")
    assert Settings.from_env(parsed.environ()).audiences == ("api://one", "api://two")


@pytest.mark.parametrize("command", [
    pytest.param(("serve",), id="serve"),
    pytest.param(("app", "create"), id="app-create"),
    pytest.param(("app", "list"), id="app-list"),
    pytest.param(("app", "delete"), id="app-delete"),
])
def test_entra_options_have_help(command: tuple[str, ...]) -> None:
    from click.testing import CliRunner

    from graphsec.cli import main
    from tests.test_cli_help import own_words

    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    options = result.output.split("Options:", 1)[1]
    declarations = [line.strip() for line in options.splitlines() if line.lstrip().startswith("-")]
    assert declarations
    assert [line for line in declarations if not own_words(line)] == []
    if command == ("serve",):
        assert all(o in result.output for o in ("--tls", "--certfile", "--trust-issuer"))
