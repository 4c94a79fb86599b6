"""JSON batching (``POST /{version}/$batch``), in-process on both backends.

Every request of a batch goes through the same dispatcher as a request of its own, so these tests
check what batching adds: the envelope's 400s, ``dependsOn`` and 424, the shape of each answer
(status, headers, JSON/text bodies), tenant isolation and permissions per request, and that a
failing request never spoils its neighbours. tests/system/test_batch_server.py repeats the main
cases on a real server; tests/sdk/test_batch_sdk.py drives the official SDK's batch classes.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import httpx
import orjson
import pytest

from graphsec.api.batch import MAX_REQUESTS
from graphsec.config import Settings
from graphsec.pressure.config import parse
from tests.api.test_tenant_isolation import SAMPLES
from tests.conftest import OTHER_TENANT, RO, TENANT, Headers, _client, score

SCORES = "/security/secureScores"


async def batch(client: httpx.AsyncClient, headers: dict[str, str], requests: Any,
                version: str = "v1.0", status: int = 200) -> dict[str, Any]:
    r = await client.post(f"/{version}/$batch", json={"requests": requests}, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["request-id"]
    body: dict[str, Any] = r.json()
    return body


def origin(client: httpx.AsyncClient) -> str:
    """Where links point: the client's base URL without its trailing ``/``."""
    return str(client.base_url).rstrip("/")


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {answer["id"]: answer for answer in body["responses"]}


def post(ident: str, url: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": ident, "method": "POST", "url": url, "body": payload,
            "headers": {"Content-Type": "application/json"}, **extra}


async def test_create_read_patch_and_count_across_the_three_entity_sets(
        client: httpx.AsyncClient, rw: dict[str, str]) -> None:
    profiles = "/security/secureScoreControlProfiles"
    users = "/security/userSecurityProfiles"
    created = await batch(client, rw, [
        post("s", SCORES, score(id="s1")),
        post("p", profiles, {**SAMPLES["secureScoreControlProfiles"].create, "id": "p1"}),
        post("u", users, {**SAMPLES["userSecurityProfiles"].create, "id": "u1"}),
    ], version="beta")
    assert [a["id"] for a in created["responses"]] == ["s", "p", "u"]  # request order
    for answer in created["responses"]:
        assert answer["status"] == 201, answer
        assert answer["headers"]["Location"].startswith(f"{origin(client)}/beta/security/")
        assert answer["headers"]["Content-Type"].startswith("application/json")
        assert answer["body"]["id"] == answer["id"] + "1"

    answers = by_id(await batch(client, rw, [
        {"id": "get", "method": "GET", "url": f"{SCORES}/s1"},
        {"id": "patch", "method": "PATCH", "url": f"{profiles}/p1",
         "body": SAMPLES["secureScoreControlProfiles"].patch,
         "headers": {"content-type": "application/json"}},
        {"id": "count", "method": "GET", "url": f"{users}/$count"},
        {"id": "list", "method": "GET", "url": "security/secureScores?$select=id,currentScore"},
    ], version="beta"))
    assert answers["get"]["status"] == 200
    assert answers["get"]["body"]["currentScore"] == 387.0
    assert answers["patch"]["status"] == 204
    assert "body" not in answers["patch"]
    assert answers["count"]["status"] == 200
    assert answers["count"]["body"] == "1"  # text/plain: a string
    assert answers["count"]["headers"]["Content-Type"].startswith("text/plain")
    assert answers["list"]["body"]["value"] == [{"id": "s1", "currentScore": 387.0}]

    # what the batch wrote is there for plain requests, exactly once
    r = await client.get(f"/beta{profiles}/p1", headers=rw)
    assert r.json()["controlStateUpdates"][-1]["state"] == "Ignored"
    r = await client.get(f"/beta{SCORES}/$count", headers=rw)
    assert r.text == "1"


async def test_each_answer_has_its_own_request_id_and_the_client_request_id_it_was_sent(
        client: httpx.AsyncClient, rw: dict[str, str]) -> None:
    r = await client.post("/v1.0/$batch", headers=rw, json={"requests": [
        {"id": "1", "method": "GET", "url": f"{SCORES}/none",
         "headers": {"client-request-id": "mine-1"}},
        {"id": "2", "method": "GET", "url": SCORES},
    ]})
    answers = by_id(r.json())
    ids = {r.headers["request-id"], answers["1"]["headers"]["request-id"],
           answers["2"]["headers"]["request-id"]}
    assert len(ids) == 3
    assert answers["1"]["headers"]["client-request-id"] == "mine-1"
    assert answers["1"]["status"] == 404
    error = answers["1"]["body"]["error"]
    assert error["code"] == "itemNotFound"
    assert error["innerError"]["request-id"] == answers["1"]["headers"]["request-id"]
    assert error["innerError"]["client-request-id"] == "mine-1"
    assert answers["2"]["headers"]["client-request-id"] == answers["2"]["headers"]["request-id"]


async def test_a_failing_link_fails_the_rest_of_the_chain_with_424(
        client: httpx.AsyncClient, rw: dict[str, str]) -> None:
    answers = by_id(await batch(client, rw, [
        post("1", SCORES, score(id="a")),
        post("2", SCORES, score(id="a"), dependsOn=["1"]),  # a duplicate: 409
        post("3", SCORES, score(id="b"), dependsOn=["2"]),
        {"id": "4", "method": "GET", "url": f"{SCORES}/a", "dependsOn": ["3"]},
    ]))
    assert [answers[i]["status"] for i in "1234"] == [201, 409, 424, 424]
    error = answers["3"]["body"]["error"]
    assert error["code"] == "failedDependency"
    assert "'2'" in error["message"]
    assert "409" in error["message"]
    r = await client.get(f"/v1.0{SCORES}/b", headers=rw)
    assert r.status_code == 404  # request 3 was not run


async def test_a_sequential_batch_runs_in_order(client: httpx.AsyncClient,
                                                rw: dict[str, str]) -> None:
    """The PATCH depends on the create and the GET on the PATCH: the GET sees the patched
    value, which it would not if the three ran concurrently."""
    answers = by_id(await batch(client, rw, [
        post("create", SCORES, score(id="x", currentScore=1.0)),
        {"id": "patch", "method": "PATCH", "url": f"{SCORES}/x", "body": {"currentScore": 2.0},
         "headers": {"Content-Type": "application/json"}, "dependsOn": ["CREATE"]},
        {"id": "read", "method": "GET", "url": f"{SCORES}/x", "dependsOn": ["patch", "create"]},
    ]))
    assert answers["create"]["status"] == 201
    assert answers["patch"]["status"] == 200  # secureScores answer a PATCH with the entity
    assert answers["read"]["body"]["currentScore"] == 2.0


async def test_snake_case_depends_on_is_ignored_as_graph_ignores_it(
        client: httpx.AsyncClient, rw: dict[str, str]) -> None:
    """msgraph-sdk-python writes ``depends_on``; Graph does not know the key. The batch is
    parallel, so a dependency on a failing request does not stop the second one."""
    answers = by_id(await batch(client, rw, [
        {"id": "1", "method": "GET", "url": f"{SCORES}/missing", "depends_on": []},
        {"id": "2", "method": "GET", "url": SCORES, "depends_on": ["1"]},
    ]))
    assert answers["1"]["status"] == 404
    assert answers["2"]["status"] == 200


CANARY = post("canary", SCORES, score(id="canary"))
"""A create ahead of each fault: that it is not stored proves nothing of the batch ran."""
GET = {"method": "GET", "url": SCORES}


@pytest.mark.parametrize(("requests", "says"), [
    pytest.param([CANARY, *({"id": str(n), **GET} for n in range(MAX_REQUESTS))],
                 "21 requests, over the limit of 20", id="21-requests"),
    pytest.param([], "no requests", id="empty"),
    pytest.param([CANARY, {"id": "a", **GET}, {"id": "A", **GET}], "more than once",
                 id="dup-ids"),
    pytest.param([CANARY, GET], "'id' is missing", id="no-id"),
    pytest.param([CANARY, {"id": "1", "url": SCORES}], "'method' is missing", id="no-method"),
    pytest.param([CANARY, {"id": "1", "method": "GET"}], "'url' is missing", id="no-url"),
    pytest.param([CANARY, {**GET, "id": 1}], "non-empty string", id="id-not-a-string"),
    pytest.param([CANARY, {"id": "1", "method": "POST", "url": SCORES,
                           "body": {"currentScore": 1}}],
                 "no Content-Type", id="body-without-content-type"),
    pytest.param([CANARY, {"id": "1", "method": "POST", "url": SCORES, "body": {},
                           "headers": {"accept": "application/json"}}],
                 "no Content-Type", id="headers-without-content-type"),
    pytest.param([CANARY, {"id": "1", "method": "POST", "url": "/$batch",
                           "body": {"requests": []},
                           "headers": {"Content-Type": "application/json"}}],
                 "do not nest", id="nested-batch"),
    pytest.param([CANARY, {"id": "1", "method": "POST", "url": "%24batch"}], "do not nest",
                 id="nested-batch-encoded"),
    pytest.param([CANARY, {"id": "2", **GET, "dependsOn": ["9"]}],
                 "Invalid dependency for request Id '2'", id="unknown-dependency"),
    pytest.param([CANARY, {"id": "1", **GET, "dependsOn": ["2"]},
                  {"id": "2", **GET, "dependsOn": ["canary"]}],
                 "Invalid dependency for request Id '1'", id="later-dependency"),
    pytest.param([CANARY, {"id": "1", **GET, "dependsOn": ["1"]}],
                 "Invalid dependency for request Id '1'", id="self-dependency"),
    pytest.param([CANARY, {"id": "1", **GET}, {"id": "2", **GET, "dependsOn": ["1"]}],
                 "either fully sequential or fully parallel", id="mixed"),
    pytest.param([CANARY, {"id": "1", **GET, "dependsOn": "canary"}],
                 "array of request ids", id="depends-on-not-a-list"),
    pytest.param([CANARY, {"id": "1", **GET, "headers": {"a": 1}}],
                 "must be a string", id="header-not-a-string"),
    pytest.param([CANARY, "GET /security/secureScores"], "not a JSON object",
                 id="item-not-an-object"),
])
async def test_a_malformed_batch_is_a_400_and_nothing_runs(
        client: httpx.AsyncClient, rw: dict[str, str], requests: Any, says: str) -> None:
    r = await client.post("/v1.0/$batch", json={"requests": requests}, headers=rw)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "BadRequest"
    assert says in error["message"], error["message"]
    r = await client.get(f"/v1.0{SCORES}/$count", headers=rw)
    assert r.text == "0"


@pytest.mark.parametrize(("content", "content_type", "says"), [
    (b"{not json", "application/json", "not valid JSON"),
    (b"", "application/json", "empty"),
    (b'["requests"]', "application/json", "'requests' array"),
    (b'{"value": []}', "application/json", "'requests' array"),
    (b'{"requests": {}}', "application/json", "must be an array"),
])
async def test_an_envelope_that_is_not_a_batch_is_a_400(
        client: httpx.AsyncClient, rw: dict[str, str], content: bytes, content_type: str,
        says: str) -> None:
    r = await client.post("/v1.0/$batch", content=content,
                          headers={**rw, "Content-Type": content_type})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "BadRequest"
    assert says in r.json()["error"]["message"]


async def test_the_batch_itself_needs_a_token_post_and_json(client: httpx.AsyncClient,
                                                            rw: dict[str, str]) -> None:
    requests = {"requests": [{"id": "1", "method": "GET", "url": SCORES}]}
    r = await client.post("/v1.0/$batch", json=requests)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    r = await client.get("/v1.0/$batch", headers=rw)
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"
    r = await client.post("/v1.0/$batch", content=orjson.dumps(requests),
                          headers={**rw, "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = await client.post("/v1.0/%24batch", json=requests, headers=rw)
    assert r.status_code == 200
    assert r.json()["responses"][0]["status"] == 200


async def test_a_request_of_another_tenant_is_not_found_and_leaks_nothing(
        client: httpx.AsyncClient, auth: Headers) -> None:
    theirs = auth(tenant=OTHER_TENANT)
    r = await client.post(f"/v1.0{SCORES}", json=score(id="theirs"), headers=theirs)
    assert r.status_code == 201
    answers = by_id(await batch(client, auth(), [
        {"id": "get", "method": "GET", "url": f"{SCORES}/theirs"},
        {"id": "patch", "method": "PATCH", "url": f"{SCORES}/theirs",
         "body": {"currentScore": 0.0}, "headers": {"Content-Type": "application/json"}},
        {"id": "delete", "method": "DELETE", "url": f"{SCORES}/theirs"},
        {"id": "list", "method": "GET", "url": f"{SCORES}?$count=true"},
        {"id": "nothing", "method": "GET", "url": f"{SCORES}/nothing"},
    ]))
    unknown = answers["nothing"]["body"]["error"]
    for name in ("get", "patch", "delete"):
        assert answers[name]["status"] == 404, answers[name]
        error = answers[name]["body"]["error"]
        # the same answer as for an id nobody has: nothing says that the entity exists
        assert error["code"] == unknown["code"] == "itemNotFound"
        assert error["message"] == unknown["message"].replace("nothing", "theirs")
    assert answers["list"]["body"]["@odata.count"] == 0
    assert answers["list"]["body"]["value"] == []
    r = await client.get(f"/v1.0{SCORES}/theirs", headers=theirs)
    assert r.json()["currentScore"] == 387.0


async def test_permissions_are_checked_per_request(client: httpx.AsyncClient,
                                                   auth: Headers) -> None:
    answers = by_id(await batch(client, auth(roles=(RO,)), [
        {"id": "read", "method": "GET", "url": SCORES},
        post("write", SCORES, score(id="nope")),
    ]))
    assert answers["read"]["status"] == 200
    assert answers["write"]["status"] == 403
    assert answers["write"]["body"]["error"]["code"] == "Authorization_RequestDenied"


async def test_bad_requests_inside_a_batch_answer_alone(client: httpx.AsyncClient,
                                                        rw: dict[str, str]) -> None:
    answers = by_id(await batch(client, rw, [
        {"id": "filter", "method": "GET", "url": f"{SCORES}?$filter=nonsense eq 1"},
        {"id": "route", "method": "GET", "url": "/users"},
        {"id": "method", "method": "PUT", "url": f"{SCORES}/x",
         "body": {}, "headers": {"Content-Type": "application/json"}},
        {"id": "media", "method": "POST", "url": SCORES, "body": "aGk=",
         "headers": {"Content-Type": "image/png"}},
        {"id": "nobody", "method": "POST", "url": SCORES},
        post("invalid", SCORES, {"currentScore": "high"}),
        {"id": "ok", "method": "GET", "url": f"{SCORES}?$top=1"},
    ]))
    assert answers["filter"]["status"] == 400
    assert answers["route"]["status"] == 400
    assert answers["method"]["status"] == 405
    assert answers["method"]["headers"]["Allow"] == "GET, PATCH, DELETE"
    assert answers["media"]["status"] == 415
    assert answers["nobody"]["status"] == 400
    assert answers["invalid"]["status"] == 400
    assert answers["ok"]["status"] == 200
    r = await client.get(f"/v1.0{SCORES}/$count", headers=rw)
    assert r.text == "0"


async def test_a_json_body_sent_as_base64_is_read(client: httpx.AsyncClient,
                                                  rw: dict[str, str]) -> None:
    """What msgraph-sdk-python does with a body that is not a dict (standard alphabet)."""
    encoded = base64.b64encode(orjson.dumps(score(id="b64"))).decode()
    answers = by_id(await batch(client, rw, [
        {"id": "1", "method": "POST", "url": SCORES, "body": encoded,
         "headers": {"content-type": "application/json"}},
        {"id": "2", "method": "POST", "url": SCORES, "body": "%%%",
         "headers": {"content-type": "application/json"}},
    ]))
    assert answers["1"]["status"] == 201
    assert answers["1"]["body"]["id"] == "b64"
    assert answers["2"]["status"] == 400
    assert "base64" in answers["2"]["body"]["error"]["message"]


async def test_prefer_and_paging_work_inside_a_batch(client: httpx.AsyncClient,
                                                     rw: dict[str, str]) -> None:
    await batch(client, rw, [post(str(n), SCORES, score(id=f"p{n}",
                                                        createdDateTime=f"2024-03-{n + 1:02}T00:00:00Z"))
                             for n in range(3)])
    answers = by_id(await batch(client, rw, [
        {"id": "page", "method": "GET", "url": f"{SCORES}?$top=2&$select=id"},
        {"id": "minimal", "method": "PATCH", "url": f"{SCORES}/p0",
         "body": {"currentScore": 5.0},
         "headers": {"Content-Type": "application/json", "Prefer": "return=minimal"}},
    ]))
    page = answers["page"]["body"]
    assert len(page["value"]) == 2
    link = page["@odata.nextLink"]
    assert link.startswith(f"{origin(client)}/v1.0/security/secureScores?")
    r = await client.get(link, headers=rw)
    assert len(r.json()["value"]) == 1
    assert answers["minimal"]["status"] == 204
    assert "body" not in answers["minimal"]
    assert answers["minimal"]["headers"]["Preference-Applied"] == "return=minimal"
    r = await client.get(f"/v1.0{SCORES}/p0", headers=rw)
    assert r.json()["currentScore"] == 5.0


async def test_the_tenant_is_the_batch_token_s(client: httpx.AsyncClient, auth: Headers) -> None:
    """An Authorization header inside a request of the batch does not change whose data it
    reaches: the batch's own token does."""
    mine = auth()
    theirs = auth(tenant=OTHER_TENANT)
    await client.post(f"/v1.0{SCORES}", json=score(id="t"), headers=theirs)
    answers = by_id(await batch(client, mine, [
        {"id": "1", "method": "GET", "url": f"{SCORES}/t", "headers": theirs},
    ]))
    assert answers["1"]["status"] == 404
    assert TENANT != OTHER_TENANT


async def test_a_batch_starts_nothing_after_its_deadline(settings: Settings,
                                                        rw: dict[str, str]) -> None:
    """``GRAPHSEC_BATCH_TIMEOUT_SECONDS`` bounds the time a batch holds a worker: with every
    request taking 0.4 s (chaos latency) and a deadline of 1 s, a sequential batch of six
    runs three and answers the rest 504 without running them."""
    slow = dataclasses.replace(settings, batch_timeout_seconds=1,
                               behaviour=parse({"chaos": {"latency_ms": [400, 400]}}))
    async for client in _client(slow):
        requests = [post("1", SCORES, score(id="t1"))] + [
            post(str(n), SCORES, score(id=f"t{n}"), dependsOn=[str(n - 1)]) for n in range(2, 7)]
        answers = by_id(await batch(client, rw, requests))
        statuses = [answers[str(n)]["status"] for n in range(1, 7)]
        assert statuses[:3] == [201, 201, 201]
        assert 504 in statuses
        first_late = statuses.index(504)
        assert all(s in (504, 424) for s in statuses[first_late:])
        assert answers[str(first_late + 1)]["body"]["error"]["code"] == "GatewayTimeout"
        fast = dataclasses.replace(settings, behaviour=parse({}))
        async for plain in _client(fast):
            r = await plain.get(f"/v1.0{SCORES}/$count", headers=rw)
            assert r.text == str(first_late)  # what was not started was not stored
