"""``graphsec ui``: the dashboard's link, its token and its address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from click.testing import CliRunner

from graphsec.auth.keys import load_or_create
from graphsec.cli import main

TENANT = "1d5a1bd0-0000-4000-8000-000000000001"


def run(home: Path, *args: str, **env: str) -> Any:
    runner = CliRunner()
    return runner.invoke(main, ["ui", *args], env={"GRAPHSEC_HOME": str(home),
                                                  "GRAPHSEC_PUBLIC_URL": "", **env})


def claims(home: Path, link: str) -> dict[str, Any]:
    token = link.split("#token=", 1)[1]
    decoded: dict[str, Any] = jwt.decode(token, load_or_create(home).public, algorithms=["RS256"],
                                         options={"verify_aud": False})
    return decoded


def test_the_link_carries_a_read_only_token_for_eight_hours(home: Path) -> None:
    done = run(home, "--tenant", TENANT.upper())
    assert done.exit_code == 0, done.output
    link = done.output.strip()
    assert link.startswith("http://127.0.0.1:8000/ui/#token=")
    got = claims(home, link)
    assert got["tid"] == TENANT
    assert got["roles"] == ["SecurityEvents.Read.All"]
    assert got["exp"] - got["iat"] == 8 * 3600


def test_write_gives_a_read_write_token_with_the_identity(home: Path) -> None:
    done = run(home, "--tenant", TENANT, "--write", "--identity", "ciso@contoso.example")
    got = claims(home, done.output.strip())
    assert got["roles"] == ["SecurityEvents.ReadWrite.All"]
    assert "ciso@contoso.example" in got.values()


@pytest.mark.parametrize(("args", "env", "origin"), [
    pytest.param((), {"GRAPHSEC_PORT": "9100"}, "http://127.0.0.1:9100", id="port"),
    pytest.param((), {"GRAPHSEC_HOST": "0.0.0.0"}, "http://127.0.0.1:8000",  # noqa: S104
                 id="wildcard-bind"),
    pytest.param((), {"GRAPHSEC_HOST": "::"}, "http://[::1]:8000", id="ipv6-wildcard"),
    pytest.param((), {"GRAPHSEC_PUBLIC_URL": "https://scores.example.com"},
                 "https://scores.example.com", id="public-url"),
    pytest.param(("--url", "http://10.0.0.5:8000/"), {"GRAPHSEC_PUBLIC_URL": "https://x.example"},
                 "http://10.0.0.5:8000", id="url-wins"),
])
def test_the_address_follows_the_settings(home: Path, args: tuple[str, ...], env: dict[str, str],
                                          origin: str) -> None:
    done = run(home, "--tenant", TENANT, *args, **env)
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"{origin}/ui/#token=")


@pytest.mark.parametrize("args", [
    pytest.param(("--tenant", "contoso"), id="not-a-guid"),
    pytest.param(("--tenant", TENANT, "--url", "ftp://x"), id="not-http"),
])
def test_a_wrong_argument_is_one_line_and_status_2(home: Path, args: tuple[str, ...]) -> None:
    done = run(home, *args)
    assert done.exit_code == 2
    assert done.output.count("\n") == 1
    assert "#token=" not in done.output


def test_serve_demo_prints_a_dashboard_link_that_works(tmp_path: Path) -> None:
    from tests.support.server import start_server

    server = start_server(tmp_path / "home", "--demo")
    try:
        log = server.log()
        link = next(line for line in log.splitlines() if "/ui/#token=" in line).strip()
        assert link.startswith(f"http://127.0.0.1:{server.port}/ui/#token=")
        token = link.split("#token=", 1)[1]
        page = httpx.get(link.split("#", 1)[0])
        assert page.status_code == 200
        assert 'src="app.js"' in page.text
        r = httpx.get(f"http://127.0.0.1:{server.port}/v1.0/security/secureScores?$count=true&$top=1",
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert r.json()["@odata.count"] == 30
        assert claims(server.home, link)["roles"] == ["SecurityEvents.ReadWrite.All"]
    finally:
        server.stop()
