"""``--trust-issuer``: tokens of another OIDC issuer (here a second ``graphsec serve --tls``,
whose certificate the first one's local CA signed) are accepted, its keys fetched over HTTPS,
refreshed when a token names a new key, and an issuer that cannot be reached costs its tokens
a 401, never a 500 or a stalled server."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from graphsec.auth.keys import SigningKey, load_or_create
from graphsec.auth.tls import leaf_files, server_names
from graphsec.auth.tokens import LocalIssuer
from tests.support.server import READ, RunningServer, free_port, start_server

AUDIENCE = "api://graphsec-trust-test"
REFRESH_WAIT_SECONDS = 20.0


class Foreign:
    """The foreign issuer: a graphsec on a fixed port, restartable with another home (key)."""

    def __init__(self, root: Path, ca: Path, cert: tuple[Path, Path], tenant: str) -> None:
        self.root, self.ca, self.cert, self.tenant = root, ca, cert, tenant
        self.port = free_port()
        self.issuer = f"https://localhost:{self.port}/{tenant}/v2.0"
        self.server: RunningServer | None = None
        self.generation = 0

    def start(self) -> SigningKey:
        """Start it on a new home (so a new signing key); the key it signs with."""
        self.generation += 1
        home = self.root / f"foreign-{self.generation}" / "home"
        self.server = start_server(home, "--tls", "--certfile", str(self.cert[0]), "--keyfile",
                                   str(self.cert[1]), port=self.port,
                                   env={"SSL_CERT_FILE": str(self.ca)})
        return load_or_create(home)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def token(self, key: SigningKey, audience: str = AUDIENCE) -> str:
        return LocalIssuer(key, issuer=self.issuer, audiences=(audience,)).mint(
            self.tenant, [READ], identity="someone@foreign.example")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[RunningServer, Foreign]]:
    home = tmp_path / "main" / "home"
    cert = leaf_files(home, server_names("127.0.0.1"))  # the main home's CA signs both
    ca = home / "ca" / "graphsec-ca.pem"
    foreign = Foreign(tmp_path, ca, cert, str(uuid.uuid4()))
    foreign.start()
    main = start_server(home, "--tls", "--trust-issuer", foreign.issuer, "--audience", AUDIENCE,
                        env={"SSL_CERT_FILE": str(ca)})
    try:
        yield main, foreign
    finally:
        main.stop()
        foreign.stop()


def get(server: RunningServer, token: str) -> httpx.Response:
    ca = server.home / "ca" / "graphsec-ca.pem"
    with httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=10) as http:
        return http.get(f"{server.origin}/v1.0/security/secureScores",
                        headers={"Authorization": f"Bearer {token}"})


def wait_for(server: RunningServer, token: str, status: int) -> httpx.Response:
    deadline = time.monotonic() + REFRESH_WAIT_SECONDS
    while True:
        r = get(server, token)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def test_trusted_issuer_tokens_are_accepted(setup: tuple[RunningServer, Foreign]) -> None:
    main, foreign = setup
    assert foreign.server is not None
    key = load_or_create(foreign.server.home)
    r = get(main, foreign.token(key))
    assert r.status_code == 200, r.text
    assert r.json()["value"] == []
    wrong_audience = get(main, foreign.token(key, audience="https://graph.microsoft.com"))
    assert wrong_audience.status_code == 401
    other_issuer = LocalIssuer(key, issuer=foreign.issuer + "x", audiences=(AUDIENCE,))
    assert get(main, other_issuer.mint(foreign.tenant, [READ])).status_code == 401


def test_rotated_key_is_fetched_and_unreachable_issuer_is_401(
        setup: tuple[RunningServer, Foreign]) -> None:
    main, foreign = setup
    assert foreign.server is not None
    first = foreign.token(load_or_create(foreign.server.home))
    assert get(main, first).status_code == 200
    foreign.stop()
    rotated = foreign.token(foreign.start())  # same issuer URL, new key and kid
    r = wait_for(main, rotated, 200)
    assert r.status_code == 200, r.text
    foreign.stop()
    stranger = SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                          "not-published")
    started = time.monotonic()
    for _ in range(3):
        r = get(main, foreign.token(stranger))
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert time.monotonic() - started < 5  # no request waits for the issuer
    assert get(main, rotated).status_code == 200  # keys held stay usable
    with httpx.Client(verify=False) as http:  # noqa: S501 (health only)
        assert http.get(f"https://127.0.0.1:{main.port}/healthz").status_code == 200
    deadline = time.monotonic() + REFRESH_WAIT_SECONDS  # the next refresh fails, and says so
    while "trusted issuer" not in main.log() and time.monotonic() < deadline:
        assert get(main, foreign.token(stranger)).status_code == 401
        time.sleep(0.5)
    assert f"trusted issuer {foreign.issuer}" in main.log()


def test_issuer_unreachable_from_the_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dead = f"https://localhost:{free_port()}/{uuid.uuid4()}/v2.0"
    main = start_server(home, "--tls", "--trust-issuer", dead)
    try:
        key = SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), "k1")
        token = LocalIssuer(key, issuer=dead).mint(str(uuid.uuid4()), [READ])
        r = get(main, token)
        assert r.status_code == 401
        assert "unknown key" in r.json()["error"]["message"]
    finally:
        main.stop()
