"""Graph's error contract: body shape, codes, statuses and headers, for every client mistake."""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from typing import Any

import httpx
import pytest

from graphsec.config import Settings
from tests.conftest import _client, score

URL = "/v1.0/security/secureScores"


def assert_graph_error(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    inner = error["innerError"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inner["date"])
    assert inner["request-id"] == r.headers["request-id"]
    assert inner["client-request-id"] == r.headers["client-request-id"]
    assert r.headers["odata-version"] == "4.0"
    assert r.headers["content-type"].startswith("application/json")
    return error


async def test_unknown_id_is_404_item_not_found(client: httpx.AsyncClient,
                                                rw: dict[str, str]) -> None:
    r = await client.get(f"{URL}/nope", headers=rw)
    error = assert_graph_error(r, 404, "itemNotFound")
    assert "nope" in str(error["message"])


async def test_client_request_id_is_echoed_and_request_id_is_new(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    r = await client.get(URL, headers=rw | {"client-request-id": "abc-123"})
    assert r.headers["client-request-id"] == "abc-123"
    assert uuid.UUID(r.headers["request-id"]).version == 4
    assert str(uuid.UUID(r.headers["request-id"])) == r.headers["request-id"]
    r2 = await client.get(URL, headers=rw)
    assert r2.headers["client-request-id"] == r2.headers["request-id"]
    assert r2.headers["request-id"] != r.headers["request-id"]


def test_request_ids_differ_across_forked_workers() -> None:
    from graphsec.api.http import _request_ids

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: as a forked server worker would
        os.write(write, _request_ids.next().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    mine = {_request_ids.next() for _ in range(1000)}
    assert len(mine) == 1000
    assert child not in mine
    assert child[:24] != next(iter(mine))[:24]  # its own random part, not the parent's


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "fragment"),
    [
        pytest.param("GET", "/v1.0/security/secureScorez", 400, "BadRequest",
                     "Resource not found for the segment 'secureScorez'.", id="unknown-set"),
        pytest.param("GET", "/v1.0/securityx/secureScores", 400, "BadRequest",
                     "Resource not found for the segment 'securityx'.", id="unknown-singleton"),
        pytest.param("GET", f"{URL}/a/b", 400, "BadRequest",
                     "Resource not found for the segment 'b'.", id="too-deep"),
        pytest.param("GET", "/v2.0/security/secureScores", 400, "BadRequest",
                     "Invalid version", id="unknown-version"),
        pytest.param("PUT", f"{URL}/x", 405, "MethodNotAllowed", "PUT", id="put-item"),
        pytest.param("DELETE", URL, 405, "MethodNotAllowed", "DELETE", id="delete-collection"),
        pytest.param("POST", f"{URL}/$count", 405, "MethodNotAllowed", "POST", id="post-count"),
        pytest.param("GET", "/v1.0/security/userSecurityProfiles", 400, "BadRequest",
                     "'userSecurityProfiles'", id="beta-only-set-on-v1"),
    ],
)
async def test_url_mistakes(client: httpx.AsyncClient, rw: dict[str, str], method: str,
                            path: str, status: int, code: str, fragment: str) -> None:
    r = await client.request(method, path, headers=rw)
    error = assert_graph_error(r, status, code)
    assert fragment in str(error["message"])


async def test_method_not_allowed_lists_allowed_methods(client: httpx.AsyncClient,
                                                       rw: dict[str, str]) -> None:
    r = await client.put(f"{URL}/x", headers=rw, json={})
    assert r.headers["allow"] == "GET, PATCH, DELETE"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        pytest.param(b'{"currentScore": 1', "application/json", 400, "BadRequest", id="truncated"),
        pytest.param(b"not json", "application/json", 400, "BadRequest", id="not-json"),
        pytest.param(b"", "application/json", 400, "BadRequest", id="empty"),
        pytest.param(b"[1, 2]", "application/json", 400, "BadRequest", id="array"),
        pytest.param(b"{\"a\": NaN}", "application/json", 400, "BadRequest", id="nan"),
        pytest.param(b'{"currentScore": 1}', "text/plain", 415, "UnsupportedMediaType",
                     id="text-plain"),
        pytest.param(b"currentScore=1", "application/x-www-form-urlencoded", 415,
                     "UnsupportedMediaType", id="form"),
        pytest.param(b'{"currentScore": 1}', None, 415, "UnsupportedMediaType", id="no-type"),
    ],
)
async def test_body_mistakes(client: httpx.AsyncClient, rw: dict[str, str], content: bytes,
                             content_type: str | None, status: int, code: str) -> None:
    headers = dict(rw)
    if content_type:
        headers["Content-Type"] = content_type
    r = await client.post(URL, content=content, headers=headers)
    assert_graph_error(r, status, code)
    assert (await client.get(URL, headers=rw)).json()["value"] == []


async def test_json_content_type_with_parameters_is_accepted(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    r = await client.post(URL, content=httpx.Request("POST", "/", json=score()).content,
                          headers=rw | {"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201


async def test_body_over_the_limit_is_413(rw: dict[str, str], settings: Settings) -> None:
    small = dataclasses.replace(settings, max_body_bytes=2048)
    async for c in _client(small):
        big = score(enabledServices=["x" * 100] * 30)
        r = await c.post(URL, json=big, headers=rw)
        error = assert_graph_error(r, 413, "RequestEntityTooLarge")
        assert "2048" in str(error["message"])
        assert (await c.post(URL, json=score(), headers=rw)).status_code == 201


async def test_default_body_limit_is_4_mib(client: httpx.AsyncClient,
                                           rw: dict[str, str]) -> None:
    big = score(enabledServices=["x" * 1000] * 4300)
    r = await client.post(URL, json=big, headers=rw)
    assert_graph_error(r, 413, "RequestEntityTooLarge")


async def test_healthz_needs_no_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_cors_preflight_and_exposed_headers(client: httpx.AsyncClient,
                                                  rw: dict[str, str]) -> None:
    pre = await client.options(URL, headers={"Origin": "http://dash.local",
                                             "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204
    assert "Authorization" in pre.headers["access-control-allow-headers"]
    r = await client.get(URL, headers=rw | {"Origin": "http://dash.local"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "request-id" in r.headers["access-control-expose-headers"]
