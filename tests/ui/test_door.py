"""The door that serves the dashboard's files at ``/ui/`` (``graphsec.api.ui``), in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import orjson
import pytest

from graphsec.api.ui import CONTENT_SECURITY_POLICY, Asset, Dashboard
from graphsec.app import create_app
from graphsec.config import Settings


@pytest.fixture
async def ui(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app (SQLite; the door reads no data) through an ASGI client."""
    app = create_app(Settings.from_env({"GRAPHSEC_HOME": str(home),
                                        "GRAPHSEC_ALLOWED_HOSTS": "graph.test"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://graph.test") as client:
        yield client
    await app.resource.store.close()


@pytest.mark.parametrize(("path", "content_type", "needle"), [
    pytest.param("/ui/", "text/html;charset=utf-8", b'<script src="app.js"', id="index"),
    pytest.param("/ui/index.html", "text/html;charset=utf-8", b"<!doctype html>", id="index-by-name"),
    pytest.param("/ui/app.js", "text/javascript;charset=utf-8", b"GraphsecClient", id="js"),
    pytest.param("/ui/app.css", "text/css;charset=utf-8", b"prefers-color-scheme", id="css"),
    pytest.param("/ui/vendor/uplot/uPlot.iife.min.js", "text/javascript;charset=utf-8", b"uPlot",
                 id="vendored-js"),
    pytest.param("/ui/vendor/uplot/uPlot.min.css", "text/css;charset=utf-8", b".uplot", id="vendored-css"),
    pytest.param("/ui/favicon.svg", "image/svg+xml", b"<svg", id="icon"),
])
async def test_files_are_served_with_their_type_and_a_strict_policy(
        ui: httpx.AsyncClient, path: str, content_type: str, needle: bytes) -> None:
    r = await ui.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == content_type
    assert needle in r.content
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache"  # one Cache-Control, the door's
    assert len(r.headers.get_list("cache-control")) == 1
    assert r.headers["etag"].startswith('"')


async def test_the_page_has_no_inline_script_or_style(ui: httpx.AsyncClient) -> None:
    html = (await ui.get("/ui/")).text
    assert "<script>" not in html
    assert "<style" not in html
    assert " style=" not in html
    assert " on" + "click=" not in html


async def test_an_unchanged_file_is_304_with_its_etag(ui: httpx.AsyncClient) -> None:
    first = await ui.get("/ui/app.js")
    again = await ui.get("/ui/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    other = await ui.get("/ui/app.js", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200


@pytest.mark.parametrize("path", ["/ui", "/UI", "/ui?x=1"])
async def test_ui_without_slash_redirects_to_the_folder(ui: httpx.AsyncClient, path: str) -> None:
    r = await ui.get(path)
    assert r.status_code == 308
    assert r.headers["location"].startswith("/ui/")


@pytest.mark.parametrize("path", [
    pytest.param("/ui/nothing.js", id="unknown"),
    pytest.param("/ui/__init__.py", id="python-source"),
    pytest.param("/ui/vendor/uplot/LICENSE", id="not-a-served-kind"),
    pytest.param("/ui/../pyproject.toml", id="dotdot"),
    pytest.param("/ui/%2e%2e/app.py", id="encoded-dotdot"),
    pytest.param("/ui/vendor/../../api/ui.py", id="dotdot-inside"),
    pytest.param("/ui/%2fetc%2fpasswd", id="absolute"),
    pytest.param("/ui//etc/passwd", id="double-slash"),
    pytest.param("/ui/..%5c..%5capp.py", id="backslash"),
])
async def test_unknown_files_and_traversal_are_graph_404s(home: Path, path: str) -> None:
    status, body = await raw_get(home, path)
    assert status == 404
    error = orjson.loads(body)["error"]
    assert error["code"] == "itemNotFound"
    assert "request-id" in error["innerError"]


async def raw_get(home: Path, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (an HTTP client would resolve its dot segments)."""
    app = create_app(Settings.from_env({"GRAPHSEC_HOME": str(home),
                                        "GRAPHSEC_ALLOWED_HOSTS": "graph.test"}))
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": unquote(path), "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"host", b"graph.test")],
             "server": ("graph.test", 80), "client": ("127.0.0.1", 5000)}
    try:
        await app(scope, receive, send)
    finally:
        await app.resource.store.close()
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_other_methods_are_405(ui: httpx.AsyncClient) -> None:
    r = await ui.post("/ui/app.js", content=b"x")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
    assert r.json()["error"]["code"] == "MethodNotAllowed"


async def test_paths_beside_ui_are_not_the_doors(ui: httpx.AsyncClient) -> None:
    r = await ui.get("/uix/app.js")
    assert r.status_code == 400  # Graph's "Invalid version", as before the door
    assert r.json()["error"]["code"] == "BadRequest"


async def test_files_are_read_once_at_start_up(ui: httpx.AsyncClient,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("a file was read per request")

    monkeypatch.setattr("graphsec.api.ui.files", fail)
    monkeypatch.setattr("graphsec.api.ui.load_assets", fail)
    assert (await ui.get("/ui/tables.js")).status_code == 200


def test_only_the_page_files_are_in_the_table() -> None:
    door = Dashboard()
    assert set(door.assets) >= {"index.html", "app.js", "client.js", "chart.js", "tables.js",
                                 "app.css", "vendor/uplot/uPlot.iife.min.js"}
    assert not any(name.endswith((".py", ".md", "LICENSE")) for name in door.assets)


def test_a_door_without_index_refuses_to_start() -> None:
    with pytest.raises(ValueError, match=r"index\.html"):
        Dashboard({"app.js": Asset(b"", "text/javascript", '"x"')})
