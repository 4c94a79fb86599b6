"""The README's "From your application's own code", run as written against
``graphsec serve --tls``: the ``graphsec app create`` line through bash, then the Python block
with the environment the README exports. The only change is the one the README's reader makes
too when the port is not 8443: the server's origin."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import READ_WRITE, RunningServer, start_server

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
README_ORIGIN = "https://localhost:8443"
TIMEOUT_SECONDS = 120


def section() -> str:
    start = README.index("## From your application's own code")
    return README[start:README.index("\n## ", start + 1)]


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", section(), flags=re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("readme-entra") / "home", "--tls")
    try:
        yield running
    finally:
        running.stop()


def test_section_shows_serve_tls_and_the_snippet() -> None:
    serve, register = blocks("sh")
    assert serve.startswith("graphsec serve --tls")
    assert "export SSL_CERT_FILE=$(graphsec ca)" in register
    (code,) = blocks("python")
    for line in ('authority="https://localhost:8443", disable_instance_discovery=True',
                 'adapter.base_url = "https://localhost:8443/v1.0"',
                 'allowed_hosts=["localhost"]'):
        assert line in code


def test_readme_snippet_runs_as_written(server: RunningServer, tmp_path: Path) -> None:
    _, register = blocks("sh")
    create = register.split("\nexport", 1)[0]  # the `graphsec app create …` command
    tenant = "1d5a1bd0-0000-4000-8000-000000000001"
    assert f"--tenant {tenant}" in create
    ca = server.home / "ca" / "graphsec-ca.pem"
    done = subprocess.run(  # noqa: S603
        ["bash", "-c", 'set -euo pipefail\ngraphsec() { "$GRAPHSEC_PYTHON" -m graphsec.cli "$@"; }\n'  # noqa: S607
         + create], env={**server.env, "GRAPHSEC_PYTHON": sys.executable},
        capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    assert done.returncode == 0, done.stderr
    app = json.loads(done.stdout)
    assert set(app) >= {"tenantId", "clientId", "clientSecret"}
    # a score in the tenant, written with a development token
    with httpx.Client(verify=ssl.create_default_context(cafile=ca)) as http:
        r = http.post(f"{server.origin}/v1.0/security/secureScores",
                      headers={"Authorization": f"Bearer {server.token(tenant, READ_WRITE)}"},
                      json={"id": str(uuid.uuid4()), "currentScore": 12.5, "maxScore": 50.0})
    assert r.status_code == 201, r.text
    (code,) = blocks("python")
    script = tmp_path / "reporting.py"
    script.write_text(code.replace(README_ORIGIN, server.origin))
    env = {**server.env, "SSL_CERT_FILE": str(ca), "REQUESTS_CA_BUNDLE": str(ca),
           "AZURE_TENANT_ID": tenant, "AZURE_CLIENT_ID": app["clientId"],
           "AZURE_CLIENT_SECRET": app["clientSecret"]}
    ran = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,  # noqa: S603
                         timeout=TIMEOUT_SECONDS, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "1 [12.5]\n"
