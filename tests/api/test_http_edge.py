"""The HTTP edge: numbers in query options, UTF-8 in paths and queries, the Host header.

Some requests here cannot be sent through httpx as they are (a raw ``é`` in the path, invalid
UTF-8, no Host header, a non-ASCII Content-Length), so :func:`raw_request` speaks ASGI to the
application directly, with the bytes a server hands over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

import httpx
import orjson
import pytest

from graphsec.api.http import GraphApp
from graphsec.app import create_app
from graphsec.config import Settings, SettingsError
from tests.conftest import score

URL = "/v1.0/security/secureScores"
CAFE = "café-1"
CAFE_ENCODED = "caf%C3%A9-1"


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


async def raw_request(app: GraphApp, method: str, target: bytes,
                      headers: list[tuple[bytes, bytes]], body: bytes = b"") -> RawResponse:
    """One request as an ASGI server passes it: ``target`` is the path and query as sent."""
    path, _, query = target.partition(b"?")
    scope = {
        "type": "http", "http_version": "1.1", "method": method, "scheme": "http",
        "path": path.decode("utf-8", "replace"), "raw_path": path, "query_string": query,
        "headers": headers, "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[MutableMapping[str, Any]] = []
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await answered.wait()  # as a server does: the client is there until it has the answer
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    await app(scope, receive, send)
    answer = {k.decode(): v.decode("latin-1") for k, v in sent[0]["headers"]}
    return RawResponse(sent[0]["status"], answer, b"".join(m.get("body", b"") for m in sent[1:]))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[GraphApp]:
    graph = create_app(settings)
    yield graph
    await graph.resource.store.close()


def _headers(rw: dict[str, str], host: bytes = b"graph.test") -> list[tuple[bytes, bytes]]:
    return [(b"host", host), (b"authorization", rw["Authorization"].encode()),
            (b"content-type", b"application/json")]


def _assert_bad_request(r: httpx.Response | RawResponse, *words: str) -> None:
    status = r.status_code if isinstance(r, httpx.Response) else r.status
    assert status == 400
    error = r.json()["error"]
    assert error["code"] == "BadRequest"
    for word in words:
        assert word in error["message"]


# --- defect 5: only ASCII digits are numbers -------------------------------------------------

@pytest.mark.parametrize(("query", "option"), [
    pytest.param("$top=%C2%B2", "$top", id="top-superscript-two"),
    pytest.param("$top=%E2%91%A0", "$top", id="top-circled-one"),
    pytest.param("$top=%D9%A3", "$top", id="top-arabic-indic-three"),
    pytest.param("$top=%EF%BC%93", "$top", id="top-fullwidth-three"),
    pytest.param("$skip=%C2%B2", "$skip", id="skip-superscript-two"),
    pytest.param("$skip=%DB%B1", "$skip", id="skip-extended-arabic-one"),
])
@pytest.mark.parametrize("version", ["v1.0", "beta"])
async def test_non_ascii_digits_in_top_and_skip_are_400(
        client: httpx.AsyncClient, rw: dict[str, str], query: str, option: str,
        version: str) -> None:
    r = await client.get(f"/{version}/security/secureScores?{query}", headers=rw)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadRequest"
    assert option in r.json()["error"]["message"]


@pytest.mark.parametrize("query", [
    pytest.param("skip=%C2%B2", id="skip-superscript-two"),
    pytest.param("top=%D9%A3", id="top-arabic-indic-three"),
])
async def test_non_ascii_digits_in_beta_options_without_dollar_are_400(
        client: httpx.AsyncClient, rw: dict[str, str], query: str) -> None:
    r = await client.get(f"/beta/security/secureScores?{query}", headers=rw)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadRequest"


@pytest.mark.parametrize("literal", [
    pytest.param("currentScore eq ٣", id="integer"),
    pytest.param("currentScore eq 1.٣", id="decimal"),
    pytest.param("createdDateTime gt 2024-01-01T00:00:00.٣Z", id="datetime-fraction"),
    pytest.param("createdDateTime gt ٢٠٢٤-01-01T00:00:00Z", id="datetime-year"),
])
async def test_non_ascii_digits_in_filter_literals_are_400(
        client: httpx.AsyncClient, rw: dict[str, str], literal: str) -> None:
    await client.post(URL, json=score(id="a", currentScore=3.0), headers=rw)
    r = await client.get(URL, params={"$filter": literal}, headers=rw)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadRequest"


@pytest.mark.parametrize("created", [
    pytest.param("٢٠٢٤-03-19T15:21:00Z", id="arabic-indic-year"),
    pytest.param("2024-03-19T15:21:00.٣Z", id="arabic-indic-fraction"),
    pytest.param("2024-03-19T15:21:00+٠١:00", id="arabic-indic-offset"),
])
async def test_non_ascii_digits_in_a_body_datetime_are_400(
        client: httpx.AsyncClient, rw: dict[str, str], created: str) -> None:
    r = await client.post(URL, json=score(id="d", createdDateTime=created), headers=rw)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadRequest"
    assert (await client.get(f"{URL}/d", headers=rw)).status_code == 404


@pytest.mark.parametrize("length", [
    pytest.param(b"\xb2", id="latin1-superscript-two"),
    pytest.param(b"1\xb3", id="digit-and-superscript-three"),
])
async def test_non_ascii_content_length_is_not_a_number(app: GraphApp, rw: dict[str, str],
                                                       length: bytes) -> None:
    body = orjson.dumps(score(id="len"))
    headers = [*_headers(rw), (b"content-length", length)]  # header bytes are Latin-1
    r = await raw_request(app, "POST", URL.encode(), headers, body)
    assert r.status == 201


# --- defect 6: paths and queries are UTF-8 ---------------------------------------------------

@pytest.mark.parametrize("spelling", [
    pytest.param(CAFE.encode(), id="raw-utf8"),
    pytest.param(CAFE_ENCODED.encode(), id="percent-encoded"),
])
async def test_utf8_id_in_path_reaches_the_store(app: GraphApp, rw: dict[str, str],
                                                spelling: bytes) -> None:
    created = await raw_request(app, "POST", URL.encode(), _headers(rw),
                                orjson.dumps(score(id=CAFE)))
    assert created.status == 201
    assert created.headers["location"] == f"http://graph.test{URL}/{CAFE_ENCODED}"
    item = URL.encode() + b"/" + spelling

    got = await raw_request(app, "GET", item, _headers(rw))
    assert got.status == 200
    assert got.json()["id"] == CAFE
    patched = await raw_request(app, "PATCH", item, _headers(rw),
                                orjson.dumps({"currentScore": 1.5}))
    assert patched.status == 200
    assert patched.json()["id"] == CAFE
    assert patched.json()["currentScore"] == 1.5
    assert (await raw_request(app, "DELETE", item, _headers(rw))).status == 204
    assert (await raw_request(app, "GET", item, _headers(rw))).status == 404


async def test_utf8_id_in_key_parentheses(app: GraphApp, rw: dict[str, str]) -> None:
    await raw_request(app, "POST", URL.encode(), _headers(rw), orjson.dumps(score(id=CAFE)))
    r = await raw_request(app, "GET", f"{URL}('{CAFE}')".encode(), _headers(rw))
    assert r.status == 200
    assert r.json()["id"] == CAFE


ITEM = URL.encode() + b"/"


@pytest.mark.parametrize(("method", "target"), [
    *(pytest.param(method, target, id=f"{method}-{name}")
      for method in ("GET", "PATCH", "DELETE")
      for name, target in (("raw-latin1-byte", ITEM + b"caf\xe9-1"),
                           ("percent-encoded-latin1-byte", ITEM + b"caf%E9-1"),
                           ("truncated-sequence", ITEM + b"%C3"),
                           ("encoded-surrogate", ITEM + b"\xed\xa0\x80"),
                           ("in-entity-set-name", URL.encode() + b"\xff"))),
    pytest.param("GET", URL.encode() + b"?$filter=id%20eq%20%27caf%E9%27",
                 id="GET-query-percent-encoded"),
    pytest.param("GET", URL.encode() + b"?$filter=id eq 'caf\xe9'", id="GET-query-raw-byte"),
])
async def test_invalid_utf8_in_path_or_query_is_400(app: GraphApp, rw: dict[str, str],
                                                   method: str, target: bytes) -> None:
    r = await raw_request(app, method, target, _headers(rw), b'{"currentScore": 1}')
    _assert_bad_request(r, "UTF-8")


@pytest.mark.parametrize("query", [
    pytest.param(f"$filter=id eq '{CAFE}'".encode(), id="raw-utf8"),
    pytest.param(f"$filter=id%20eq%20%27{CAFE_ENCODED}%27".encode(), id="percent-encoded"),
])
async def test_utf8_in_query_is_read_as_utf8(app: GraphApp, rw: dict[str, str],
                                            query: bytes) -> None:
    for entity_id in (CAFE, "other"):
        await raw_request(app, "POST", URL.encode(), _headers(rw),
                          orjson.dumps(score(id=entity_id)))
    r = await raw_request(app, "GET", URL.encode() + b"?" + query, _headers(rw))
    assert r.status == 200
    assert [e["id"] for e in r.json()["value"]] == [CAFE]


# --- defect 8: links come from a trusted origin ----------------------------------------------

async def _two_scores(client: httpx.AsyncClient, rw: dict[str, str]) -> None:
    for entity_id in ("s1", "s2"):
        assert (await client.post(URL, json=score(id=entity_id), headers=rw)).status_code == 201


@pytest.mark.parametrize("host", [
    pytest.param(b"evil.example", id="other-name"),
    pytest.param(b"evil.example:8000", id="other-name-with-port"),
    pytest.param(b"localhost:80@evil.example", id="userinfo-trick"),
    pytest.param(b"localhost:evil", id="port-not-a-number"),
    pytest.param(b"localhost:", id="empty-port"),
    pytest.param("localhost:８０".encode(), id="fullwidth-port"),
    pytest.param(b"localhost.evil.example", id="suffix"),
    pytest.param(b"[::1", id="unclosed-bracket"),
    pytest.param(b"graph.test/evil", id="path"),
])
async def test_host_not_allowed_is_400_and_writes_nothing(
        app: GraphApp, rw: dict[str, str], host: bytes) -> None:
    listed = await raw_request(app, "GET", f"{URL}?$top=1".encode(), _headers(rw, host))
    _assert_bad_request(listed, "--allowed-host", "GRAPHSEC_ALLOWED_HOSTS", "--public-url",
                        "graph.test", "localhost")
    created = await raw_request(app, "POST", URL.encode(), _headers(rw, host),
                                orjson.dumps(score(id="s9")))
    _assert_bad_request(created, "Host")
    assert "location" not in created.headers
    assert (await raw_request(app, "GET", ITEM + b"s9", _headers(rw))).status == 404


async def test_repeated_host_headers_are_400(app: GraphApp, rw: dict[str, str]) -> None:
    headers = [(b"host", b"graph.test"), *_headers(rw, b"evil.example")]
    _assert_bad_request(await raw_request(app, "GET", URL.encode(), headers), "Host")


@pytest.mark.parametrize("host", [
    pytest.param("graph.test", id="allowed-by-setting"),
    pytest.param("GRAPH.Test:8443", id="any-case-any-port"),
    pytest.param("localhost:8000", id="localhost"),
    pytest.param("127.0.0.1:1234", id="ipv4-loopback"),
    pytest.param("[::1]:80", id="ipv6-loopback"),
])
async def test_allowed_host_is_used_for_links(client: httpx.AsyncClient, rw: dict[str, str],
                                             host: str) -> None:
    await _two_scores(client, rw)
    headers = {**rw, "Host": host}
    page = await client.get(f"{URL}?$top=1", headers=headers)
    assert page.status_code == 200
    assert page.json()["@odata.nextLink"].startswith(f"http://{host}{URL}?")
    assert page.json()["@odata.context"].startswith(f"http://{host}/v1.0/$metadata")
    created = await client.post(URL, json=score(id="s3"), headers=headers)
    assert created.headers["location"] == f"http://{host}{URL}/s3"


async def test_public_url_builds_links_whatever_the_host(settings: Settings,
                                                        rw: dict[str, str]) -> None:
    public = Settings.from_env({**settings.environ(), "GRAPHSEC_ALLOWED_HOSTS": "",
                                "GRAPHSEC_PUBLIC_URL": "https://Graph.Example.com/api/"})
    app = create_app(public)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.7") as client:
            await _two_scores(client, rw)
            headers = {**rw, "Host": "evil.example"}
            page = await client.get(f"{URL}?$top=1", headers=headers)
            assert page.status_code == 200
            assert page.json()["@odata.nextLink"].startswith(
                f"https://graph.example.com/api{URL}?")
            created = await client.post(URL, json=score(id="s3"), headers=headers)
            assert created.headers["location"] == f"https://graph.example.com/api{URL}/s3"
            following = await client.get(
                page.json()["@odata.nextLink"].removeprefix("https://graph.example.com/api"),
                headers=rw)
            ids = [e["id"] for e in (*page.json()["value"], *following.json()["value"])]
            assert sorted(ids) == ["s1", "s2"]
    finally:
        await app.resource.store.close()


async def test_request_without_host_links_to_the_bind_address(app: GraphApp,
                                                              rw: dict[str, str]) -> None:
    headers = [h for h in _headers(rw) if h[0] != b"host"]
    r = await raw_request(app, "POST", URL.encode(), headers, orjson.dumps(score(id="s1")))
    assert r.status == 201
    assert r.headers["location"] == f"http://127.0.0.1:8000{URL}/s1"


async def test_healthz_answers_any_host(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"Host": "10.1.2.3:8000"})
    assert r.status_code == 200


async def test_wildcard_bind_says_to_name_the_hosts(settings: Settings,
                                                   rw: dict[str, str]) -> None:
    app = create_app(replace(settings, host="0.0.0.0"))  # noqa: S104 (a setting, not a bind)
    try:
        r = await raw_request(app, "GET", URL.encode(), _headers(rw, b"10.0.0.7:8000"))
        _assert_bad_request(r, "every address", "--allowed-host")
    finally:
        await app.resource.store.close()


@pytest.mark.parametrize(("env", "words"), [
    pytest.param({"GRAPHSEC_ALLOWED_HOSTS": "graph.example.com:443"}, "GRAPHSEC_ALLOWED_HOSTS",
                 id="host-with-port"),
    pytest.param({"GRAPHSEC_ALLOWED_HOSTS": "https://graph.example.com"},
                 "GRAPHSEC_ALLOWED_HOSTS", id="host-with-scheme"),
    pytest.param({"GRAPHSEC_PUBLIC_URL": "graph.example.com"}, "GRAPHSEC_PUBLIC_URL",
                 id="public-url-without-scheme"),
    pytest.param({"GRAPHSEC_PUBLIC_URL": "https://graph.example.com/?a=1"},
                 "GRAPHSEC_PUBLIC_URL", id="public-url-with-query"),
    pytest.param({"GRAPHSEC_PUBLIC_URL": "https://user@graph.example.com"},
                 "GRAPHSEC_PUBLIC_URL", id="public-url-with-userinfo"),
])
def test_unusable_origin_settings_are_refused(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        Settings.from_env(env)


def test_allowed_hosts_are_normalized() -> None:
    settings = Settings.from_env({"GRAPHSEC_ALLOWED_HOSTS": " Graph.Example.COM,,::1,[fe80::1]"})
    assert settings.allowed_hosts == ("graph.example.com", "[::1]", "[fe80::1]")
    assert Settings.from_env(settings.environ()).allowed_hosts == settings.allowed_hosts
