"""Writes are bounded: the request body, every array and object in it, its nesting depth, and the
stored entity's size. Over a bound: 413 or 400 naming the property and the limit, nothing stored,
a stored entity unchanged."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import pytest

from graphsec.app import create_app, limits
from graphsec.config import Settings, SettingsError
from graphsec.schema.limits import MAX_COLLECTION_ITEMS, MAX_DEPTH, MAX_DOCUMENT_BYTES
from graphsec.schema.security import SECURE_SCORE
from graphsec.schema.values import check_body, complete
from graphsec.storage.sql.statements import encode_doc
from tests.api import test_errors
from tests.conftest import TENANT, _client, score

URL = "/v1.0/security/secureScores"
JSON = {"Content-Type": "application/json"}
MAX_BODY = 4 * 1024 * 1024


def nested(levels: int) -> Any:
    """``levels`` JSON arrays, one inside the other."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def deep_body(levels: int) -> bytes:
    """A secureScore whose first control score carries a dynamic property ``x`` so deep that the
    whole body nests ``levels`` levels (body, controlScores, the item, then ``x``'s arrays)."""
    arrays = levels - 3  # written as text: the JSON encoder stops near 254 levels
    return b'{"controlScores":[{"x":' + b"[" * arrays + b"]" * arrays + b"}]}"


async def listed(client: httpx.AsyncClient, rw: dict[str, str]) -> list[Any]:
    r = await client.get(URL, headers=rw)
    assert r.status_code == 200, r.text
    value: list[Any] = r.json()["value"]
    return value


async def stored(client: httpx.AsyncClient, rw: dict[str, str], entity_id: str) -> bytes:
    r = await client.get(f"{URL}/{entity_id}", headers=rw)
    assert r.status_code == 200, r.text
    return r.content


def assert_graph_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Graph's error body (checked by test_errors' rules) for the status and code."""
    return cast(dict[str, Any], test_errors.assert_graph_error(r, status, code))


def targets(error: dict[str, Any]) -> list[str]:
    return [d["target"] for d in error["details"]]


# -- collections ----------------------------------------------------------------------------


async def test_a_million_item_collection_is_400_and_nothing_is_stored(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    body = b'{"controlScores":[' + b",".join([b"{}"] * 1_300_000) + b"]}"
    assert len(body) < MAX_BODY
    r = await client.post(URL, content=body, headers=rw | JSON)
    error = assert_graph_error(r, 400, "BadRequest")
    assert targets(error) == ["controlScores"]
    assert "1300000" in error["message"]
    assert str(MAX_COLLECTION_ITEMS) in error["message"]
    assert await listed(client, rw) == []


def _controls(n: int) -> dict[str, Any]:
    return {"controlScores": [{} for _ in range(n)]}


def _services(n: int) -> dict[str, Any]:
    return {"enabledServices": ["HasExchange"] * n}


def _dynamic_array(n: int) -> dict[str, Any]:
    return {"controlScores": [{"x": list(range(n))}]}


def _dynamic_object(n: int) -> dict[str, Any]:
    return {"averageComparativeScores": [{"basis": "AllTenants",
                                          "x": {f"k{i}": i for i in range(n)}}]}


COLLECTIONS = [
    pytest.param(_controls, "controlScores", id="declared-complex-collection"),
    pytest.param(_services, "enabledServices", id="declared-string-collection"),
    pytest.param(_dynamic_array, "controlScores[0].x", id="array-in-dynamic-property"),
    pytest.param(_dynamic_object, "averageComparativeScores[0].x",
                 id="object-in-dynamic-property"),
]


@pytest.mark.parametrize(("values", "target"), COLLECTIONS)
async def test_a_collection_at_the_limit_is_accepted(
    client: httpx.AsyncClient, rw: dict[str, str], values: Any, target: str
) -> None:
    r = await client.post(URL, json=score(id="at-limit", **values(MAX_COLLECTION_ITEMS)),
                          headers=rw)
    assert r.status_code == 201, r.text
    assert orjson.loads(await stored(client, rw, "at-limit")) == r.json()


@pytest.mark.parametrize(("values", "target"), COLLECTIONS)
async def test_a_collection_over_the_limit_by_one_is_400_naming_it(
    client: httpx.AsyncClient, rw: dict[str, str], values: Any, target: str
) -> None:
    r = await client.post(URL, json=score(**values(MAX_COLLECTION_ITEMS + 1)), headers=rw)
    error = assert_graph_error(r, 400, "BadRequest")
    assert targets(error) == [target]
    assert f"'{target}'" in error["message"]
    assert str(MAX_COLLECTION_ITEMS) in error["message"]
    assert await listed(client, rw) == []


async def test_the_collection_limit_is_a_setting(rw: dict[str, str], settings: Settings) -> None:
    async for c in _client(dataclasses.replace(settings, max_collection_items=10)):
        assert (await c.post(URL, json=score(**_services(10)), headers=rw)).status_code == 201
        r = await c.post(URL, json=score(**_services(11)), headers=rw)
        error = assert_graph_error(r, 400, "BadRequest")
        assert targets(error) == ["enabledServices"]
        assert "limit of 10 " in error["message"]


# -- depth ----------------------------------------------------------------------------------


async def test_json_as_deep_as_the_limit_is_accepted_and_stored(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    r = await client.post(URL, content=deep_body(MAX_DEPTH), headers=rw | JSON)
    assert r.status_code == 201, r.text
    assert r.json()["controlScores"][0]["x"] == nested(MAX_DEPTH - 3)


async def test_json_one_level_deeper_than_the_limit_is_400(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    r = await client.post(URL, content=deep_body(MAX_DEPTH + 1), headers=rw | JSON)
    error = assert_graph_error(r, 400, "BadRequest")
    assert f"limit of {MAX_DEPTH} levels" in error["message"]
    assert targets(error) == ["controlScores[0].x" + "[0]" * (MAX_DEPTH - 3)]
    assert await listed(client, rw) == []


WRITES = [
    pytest.param("POST", "", id="create"),
    pytest.param("PATCH", "/s1", id="patch"),
    pytest.param("PATCH", "", id="collection-patch"),
]


@pytest.mark.parametrize(("method", "suffix"), WRITES)
async def test_deep_json_is_400_on_every_write_and_changes_nothing(
    client: httpx.AsyncClient, rw: dict[str, str], method: str, suffix: str
) -> None:
    assert (await client.post(URL, json=score(id="s1"), headers=rw)).status_code == 201
    before = await stored(client, rw, "s1")
    body = b'{"id":"s1",' + deep_body(300)[1:]  # the 300 levels that once gave a 500
    r = await client.request(method, URL + suffix, content=body, headers=rw | JSON)
    error = assert_graph_error(r, 400, "BadRequest")
    assert targets(error)[0].startswith("controlScores[0].x[0]")
    assert f"limit of {MAX_DEPTH} levels" in error["message"]
    assert await stored(client, rw, "s1") == before
    assert len(await listed(client, rw)) == 1


# -- the stored document's size -------------------------------------------------------------


def stored_size(body: dict[str, Any]) -> int:
    """What ``body`` takes as stored (it names its id and createdDateTime, so nothing varies)."""
    doc = check_body(SECURE_SCORE, body, "create") | {"azureTenantId": TENANT}
    return len(encode_doc(complete(SECURE_SCORE, doc)))


async def test_a_document_at_the_size_limit_is_stored_one_byte_more_is_413(
    rw: dict[str, str], settings: Settings
) -> None:
    def padded(n: int) -> dict[str, Any]:
        return score(id="sized", controlScores=[{"description": "d" * n}])

    limit = 20_000
    pad = limit - stored_size(padded(0))
    exact, over = padded(pad), padded(pad + 1)
    assert stored_size(exact) == limit
    async for c in _client(dataclasses.replace(settings, max_document_bytes=limit)):
        r = await c.post(URL, json=over, headers=rw)
        error = assert_graph_error(r, 413, "RequestEntityTooLarge")
        assert f"more than {limit} bytes" in error["message"]
        assert await listed(c, rw) == []
        assert (await c.post(URL, json=exact, headers=rw)).status_code == 201


async def test_a_body_that_would_store_too_much_is_413_naming_where(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    long = "d" * 100_000
    controls = [{"description": long} for _ in range(12)]  # 1.2 MB, a body under 4 MiB
    r = await client.post(URL, json=score(controlScores=controls), headers=rw)
    error = assert_graph_error(r, 413, "RequestEntityTooLarge")
    assert f"more than {MAX_DOCUMENT_BYTES} bytes" in error["message"]
    target = targets(error)[0]  # where the walk found the document could no longer fit
    assert target.startswith("controlScores[")
    assert int(target.split("[")[1].split("]")[0]) in (10, 11)  # 11 items reach 1.1 MB
    assert await listed(client, rw) == []


async def test_a_document_larger_only_once_encoded_is_413(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    # 600,000 characters, 1.2 MB in UTF-8: only the encoded document shows the excess
    controls = [{"description": "é" * 100_000} for _ in range(6)]
    r = await client.post(URL, json=score(controlScores=controls), headers=rw)
    error = assert_graph_error(r, 413, "RequestEntityTooLarge")
    assert f"more than {MAX_DOCUMENT_BYTES} bytes" in error["message"]
    assert "details" not in error  # measured on the encoded document, not on the body
    assert await listed(client, rw) == []


@pytest.mark.parametrize(("method", "suffix"), WRITES[1:])
async def test_a_patch_that_makes_the_document_too_large_is_413_and_changes_nothing(
    client: httpx.AsyncClient, rw: dict[str, str], method: str, suffix: str
) -> None:
    half = [{"description": "d" * 100_000} for _ in range(6)]  # 600 KB stored
    r = await client.post(URL, json=score(id="s1", controlScores=half), headers=rw)
    assert r.status_code == 201, r.text
    before = await stored(client, rw, "s1")
    # the PATCH alone is within the bound; merged with what is stored it is not
    r = await client.request(method, URL + suffix, headers=rw,
                             json={"id": "s1", "enabledServices": ["e" * 100_000] * 5})
    error = assert_graph_error(r, 413, "RequestEntityTooLarge")
    assert f"more than {MAX_DOCUMENT_BYTES} bytes" in error["message"]
    assert "details" not in error  # measured on the encoded document, not on the body
    assert await stored(client, rw, "s1") == before


# -- the request body -----------------------------------------------------------------------


async def _chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.parametrize(("method", "suffix"), WRITES)
@pytest.mark.parametrize("chunked", [pytest.param(False, id="content-length"),
                                     pytest.param(True, id="chunked")])
async def test_a_body_over_4_mib_is_413_on_every_write(
    client: httpx.AsyncClient, rw: dict[str, str], method: str, suffix: str, chunked: bool
) -> None:
    assert (await client.post(URL, json=score(id="s1"), headers=rw)).status_code == 201
    before = await stored(client, rw, "s1")
    data = orjson.dumps({"id": "s1", "enabledServices": ["x" * 1000] * 4200})
    assert len(data) > MAX_BODY
    content: bytes | AsyncIterator[bytes] = _chunks(data) if chunked else data
    r = await client.request(method, URL + suffix, content=content, headers=rw | JSON)
    assert ("content-length" in r.request.headers) is not chunked
    error = assert_graph_error(r, 413, "RequestEntityTooLarge")
    assert str(MAX_BODY) in error["message"]
    assert await stored(client, rw, "s1") == before
    assert len(await listed(client, rw)) == 1


# -- the settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value", "field"), [
    pytest.param("GRAPHSEC_MAX_COLLECTION_ITEMS", 500, "max_collection_items", id="items"),
    pytest.param("GRAPHSEC_MAX_JSON_DEPTH", 12, "max_depth", id="depth"),
    pytest.param("GRAPHSEC_MAX_DOCUMENT_BYTES", 65536, "max_document_bytes", id="document"),
])
def test_each_limit_comes_from_its_variable_to_the_resource(home: Path, name: str, value: int,
                                                            field: str) -> None:
    settings = Settings.from_env({"GRAPHSEC_HOME": str(home), name: str(value)})
    worker = Settings.from_env(settings.environ())  # as a server worker rebuilds them
    assert create_app(worker).resource.limits == limits(worker)
    assert getattr(limits(worker), field) == value


@pytest.mark.parametrize(("name", "value"), [
    pytest.param("GRAPHSEC_MAX_COLLECTION_ITEMS", "0", id="no-items"),
    pytest.param("GRAPHSEC_MAX_JSON_DEPTH", "5", id="shallower-than-the-declared-types"),
    pytest.param("GRAPHSEC_MAX_JSON_DEPTH", "300", id="deeper-than-the-encoder-writes"),
    pytest.param("GRAPHSEC_MAX_DOCUMENT_BYTES", "1000", id="tiny-documents"),
    pytest.param("GRAPHSEC_MAX_DOCUMENT_BYTES", "1MB", id="not-a-number"),
])
def test_a_limit_out_of_range_is_refused_naming_its_variable(home: Path, name: str,
                                                             value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"GRAPHSEC_HOME": str(home), name: value})
