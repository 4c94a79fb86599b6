"""The seed pages' examples (tests/seeds/000–003.json), replayed against graphsec.

The seeds' placeholders (``"Double"``, ``"averageScore.value"``, a string for a collection) are
invalid values (graphsec checks every value against its Edm type, not only its JSON shape) and
must be refused naming the property; the same examples with real values must succeed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TENANT

SEEDS = Path(__file__).parent.parent / "seeds"


def seed(n: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SEEDS / f"{n:03d}.json").read_text())
    return data


def made_real(body: dict[str, Any]) -> dict[str, Any]:
    """The seed body with its placeholders replaced by values of the declared types."""
    real = copy.deepcopy(body)
    real["azureTenantId"] = TENANT
    real["currentScore"] = 12.5
    real["maxScore"] = 100.0
    for item in real["averageComparativeScores"]:
        item["averageScore"] = 37.0
    for item in real["controlScores"]:
        item["score"] = 5.0
    return real


def path_of(request_line: str) -> str:
    return request_line.split("graph.microsoft.com", 1)[1]


def error_targets(response: httpx.Response) -> set[str]:
    return {d["target"] for d in response.json()["error"]["details"]}


async def test_seed_000_as_published_is_refused_naming_each_placeholder(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    s = seed(0)
    r = await client.post(path_of(s["request_line"]), json=s["request"], headers=rw)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadRequest"
    assert "currentScore" in r.json()["error"]["message"]
    assert error_targets(r) == {
        "averageComparativeScores[0].averageScore", "controlScores[0].score", "currentScore",
        "maxScore",
    }
    listed = await client.get("/beta/security/secureScores", headers=rw)
    assert listed.json()["value"] == []


async def test_seed_000_with_real_values_creates_201(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    s = seed(0)
    body = made_real(s["request"])
    r = await client.post(path_of(s["request_line"]), json=body, headers=rw)
    assert r.status_code == s["response_status"] == 201
    created = r.json()
    assert created["@odata.context"] == (
        "http://graph.test/beta/$metadata#security/secureScores/$entity"
    )
    assert r.headers["location"] == f"http://graph.test/beta/security/secureScores/{created['id']}"
    for name in ("activeUserCount", "azureTenantId", "currentScore", "enabledServices",
                 "licensedUserCount", "maxScore"):
        assert created[name] == body[name]
    assert created["controlScores"][0]["controlName"] == "Control Name value"
    assert created["vendorInformation"]["subProvider"] == "Sub Provider value"
    assert created["createdDateTime"].endswith("Z")  # left out, so set to now in UTC
    fetched = await client.get(r.headers["location"], headers=rw)
    assert fetched.json() == {**created,
                              "@odata.context": created["@odata.context"]}


async def test_seed_000_ref_form_creates_the_same_way(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    body = made_real(seed(0)["request"]) | {"id": "seed-ref"}
    r = await client.post("/beta/Security/secureScores/$ref", json=body, headers=rw)
    assert r.status_code == 201
    assert r.json()["id"] == "seed-ref"
    assert (await client.get("/beta/security/secureScores/seed-ref", headers=rw)).status_code == 200


async def test_seed_001_as_published_is_refused(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    s = seed(1)
    r = await client.patch(path_of(s["request_line"]), json=s["request"], headers=rw)
    assert r.status_code == 400
    assert "/security/secureScores/{id}" in r.json()["error"]["message"]


async def test_seed_001_with_real_values_and_an_id_answers_200_with_the_entity(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    created = (await client.post("/beta/security/secureScores",
                                 json=made_real(seed(0)["request"]), headers=rw)).json()
    s = seed(1)
    body = made_real(s["request"]) | {"id": created["id"], "currentScore": 99.0}
    r = await client.patch(path_of(s["request_line"]), json=body, headers=rw)
    assert r.status_code == s["response_status"] == 200
    assert r.json()["currentScore"] == 99.0
    assert r.json()["createdDateTime"] == created["createdDateTime"]


async def test_seed_001_with_placeholders_changes_nothing(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    created = (await client.post("/beta/security/secureScores",
                                 json=made_real(seed(0)["request"]), headers=rw)).json()
    body = seed(1)["request"] | {"id": created["id"], "activeUserCount": 1}
    r = await client.patch("/beta/Security/secureScores", json=body, headers=rw)
    assert r.status_code == 400
    after = (await client.get(f"/beta/security/secureScores/{created['id']}", headers=rw)).json()
    assert after == created | {"@odata.context": after["@odata.context"]}


async def test_seed_002_list_top_1_has_a_next_link(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    for day in ("2024-03-01", "2024-03-02"):
        body = made_real(seed(0)["request"]) | {"createdDateTime": f"{day}T00:00:00Z"}
        assert (await client.post("/beta/security/secureScores", json=body,
                                  headers=rw)).status_code == 201
    s = seed(2)
    r = await client.get(path_of(s["request_line"]), headers=rw)
    assert r.status_code == 200
    page = r.json()
    assert [v["createdDateTime"] for v in page["value"]] == ["2024-03-02T00:00:00Z"]
    assert page["@odata.nextLink"].startswith("http://graph.test/beta/security/secureScores?")
    assert "$top=1" in page["@odata.nextLink"]


async def test_seed_002_example_entity_is_refused_with_placeholders_and_kept_with_real_values(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    example = seed(2)["response"]["value"][0]
    r = await client.post("/beta/security/secureScores", json=example, headers=rw)
    assert r.status_code == 400
    assert {"enabledServices", "createdDateTime", "azureTenantId"} <= error_targets(r) | {
        "azureTenantId"}
    real = copy.deepcopy(example)
    real.update(id="seed-002", azureTenantId=TENANT, createdDateTime="2024-03-19T15:21:00Z",
                enabledServices=["HasExchange"])
    for item in real["averageComparativeScores"]:
        item["averageScore"] = 37.0
    real["controlScores"][0]["score"] = 35.0
    created = await client.post("/beta/security/secureScores", json=real, headers=rw)
    assert created.status_code == 201, created.text
    got = (await client.get("/beta/security/secureScores/seed-002", headers=rw)).json()
    # beta extras on the open complex types are stored and returned as sent
    assert got["averageComparativeScores"][1]["seatSizeRangeUpperValue"] == (
        "seatSizeRangeUpperValue.value")
    assert got["controlScores"][0]["total"] == "total.value"


async def test_seed_003_example_round_trips_exactly(
    client: httpx.AsyncClient, auth: Any
) -> None:
    example = seed(3)["response"]
    # the example's tenant id has one digit too many for a GUID, and a token's tid must be a
    # GUID: the example runs under the same id without its last digit
    example["azureTenantId"] = example["azureTenantId"][:-1]
    headers = auth(tenant=example["azureTenantId"])
    r = await client.post("/v1.0/security/secureScores", json=example, headers=headers)
    assert r.status_code == 201
    s = seed(3)
    url = path_of(s["request_line"]).replace("{id}", example["id"])
    got = await client.get(url, headers=headers)
    assert got.status_code == s["response_status"] == 200
    body = got.json()
    assert body.pop("@odata.context") == (
        "http://graph.test/v1.0/$metadata#security/secureScores/$entity")
    assert body == example
    assert list(body) == sorted(body)  # properties in alphabetical order, as Graph sends them
