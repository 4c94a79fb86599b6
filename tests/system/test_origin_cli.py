"""``graphsec serve --allowed-host`` and ``--public-url`` reach the server's workers: links are
built from the trusted origin, a Host that is not allowed is a 400, and a request without a Host
links to the address it reached."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import TENANT, score
from tests.support.server import READ_WRITE, start_server

URL = "/v1.0/security/secureScores"


@pytest.mark.parametrize(("flags", "host", "link_base"), [
    pytest.param(("--allowed-host", "Graph.Example.com"), "graph.example.com:8443",
                 "http://graph.example.com:8443", id="allowed-host"),
    pytest.param(("--public-url", "https://graph.example.com/api/"), "evil.example",
                 "https://graph.example.com/api", id="public-url"),
])
def test_serve_builds_links_from_the_trusted_origin(tmp_path: Path, flags: tuple[str, ...],
                                                    host: str, link_base: str) -> None:
    server = start_server(tmp_path / "home", "--workers", "2", *flags)
    try:
        token = server.token(TENANT, READ_WRITE)
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30.0,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            created = http.post(URL, json=score(id="s1"), headers={"Host": host})
            assert created.status_code == 201
            assert created.headers["location"] == f"{link_base}{URL}/s1"
            if "--public-url" not in flags:
                refused = http.get(URL, headers={"Host": "evil.example"})
                assert refused.status_code == 400
                assert "graph.example.com" in refused.json()["error"]["message"]
    finally:
        server.stop()


def test_request_without_host_links_to_the_address_it_reached(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    try:
        token = server.token(TENANT, READ_WRITE)
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"GET {URL} HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200"), head
        assert orjson.loads(body)["@odata.context"].startswith(
            f"http://127.0.0.1:{server.port}/v1.0/$metadata")
    finally:
        server.stop()
