"""PATCH (merge semantics, Prefer) and DELETE of secureScores."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import score

URL = "/v1.0/security/secureScores"


@pytest.fixture
async def created(client: httpx.AsyncClient, rw: dict[str, str]) -> dict[str, object]:
    r = await client.post(URL, json=score(id="s1"), headers=rw)
    assert r.status_code == 201
    entity: dict[str, object] = r.json()
    return entity


async def test_patch_changes_only_what_is_sent_and_answers_200(
    client: httpx.AsyncClient, rw: dict[str, str], created: dict[str, object]
) -> None:
    r = await client.patch(f"{URL}/s1", json={"currentScore": 400, "enabledServices": ["X"]},
                           headers=rw)
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"].endswith("#security/secureScores/$entity")
    expected = created | {"currentScore": 400.0, "enabledServices": ["X"]}
    assert body == expected
    assert (await client.get(f"{URL}/s1", headers=rw)).json() == expected


async def test_patch_merges_complex_values_and_replaces_collections(
    client: httpx.AsyncClient, rw: dict[str, str], created: dict[str, object]
) -> None:
    r = await client.patch(f"{URL}/s1", headers=rw, json={
        "vendorInformation": {"providerVersion": "2.0"},
        "controlScores": [{"controlName": "DLPEnabled", "score": 20}],
    })
    body = r.json()
    assert body["vendorInformation"] == {"provider": "SecureScore", "providerVersion": "2.0",
                                         "subProvider": None, "vendor": "Microsoft"}
    assert [c["controlName"] for c in body["controlScores"]] == ["DLPEnabled"]


async def test_patch_can_set_null(client: httpx.AsyncClient, rw: dict[str, str],
                                  created: dict[str, object]) -> None:
    r = await client.patch(f"{URL}/s1", json={"maxScore": None, "vendorInformation": None},
                           headers=rw)
    assert r.json()["maxScore"] is None
    assert r.json()["vendorInformation"] is None


@pytest.mark.parametrize(
    ("prefer", "status", "applied"),
    [
        pytest.param("return=minimal", 204, "return=minimal", id="minimal"),
        pytest.param("return=representation", 200, "return=representation", id="representation"),
        pytest.param(None, 200, None, id="none"),
    ],
)
async def test_patch_prefer(client: httpx.AsyncClient, rw: dict[str, str],
                            created: dict[str, object], prefer: str | None, status: int,
                            applied: str | None) -> None:
    headers = rw | ({"Prefer": prefer} if prefer else {})
    r = await client.patch(f"{URL}/s1", json={"currentScore": 1}, headers=headers)
    assert r.status_code == status
    assert r.headers.get("preference-applied") == applied
    if status == 204:
        assert r.content == b""
    assert (await client.get(f"{URL}/s1", headers=rw)).json()["currentScore"] == 1.0


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        pytest.param({"id": "other"}, 400, "cannot be changed", id="id-change"),
        pytest.param({"currentScore": "high"}, 400, "currentScore", id="bad-type"),
        pytest.param({"currentScore": 1, "bogus": 2}, 400, "bogus", id="unknown-property"),
        pytest.param({"createdDateTime": "nope"}, 400, "createdDateTime", id="bad-date"),
    ],
)
async def test_refused_patch_changes_nothing(client: httpx.AsyncClient, rw: dict[str, str],
                                             created: dict[str, object], body: dict[str, object],
                                             status: int, fragment: str) -> None:
    r = await client.patch(f"{URL}/s1", json=body, headers=rw)
    assert r.status_code == status
    assert fragment in r.json()["error"]["message"]
    assert (await client.get(f"{URL}/s1", headers=rw)).json() == created


async def test_patch_with_same_id_and_tenant_in_body_is_fine(
    client: httpx.AsyncClient, rw: dict[str, str], created: dict[str, object]
) -> None:
    body = {"id": "s1", "azureTenantId": created["azureTenantId"], "currentScore": 5}
    assert (await client.patch(f"{URL}/s1", json=body, headers=rw)).status_code == 200


async def test_patch_unknown_id_is_404_and_creates_nothing(client: httpx.AsyncClient,
                                                           rw: dict[str, str]) -> None:
    r = await client.patch(f"{URL}/ghost", json={"currentScore": 1}, headers=rw)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "itemNotFound"
    assert (await client.get(f"{URL}/$count", headers=rw)).text == "0"


async def test_collection_patch_updates_the_entity_named_in_the_body(
    client: httpx.AsyncClient, rw: dict[str, str], created: dict[str, object]
) -> None:
    r = await client.patch("/beta/Security/secureScores", json={"id": "s1", "maxScore": 1.5},
                           headers=rw)
    assert r.status_code == 200
    assert r.json()["maxScore"] == 1.5


async def test_delete_then_get_is_404(client: httpx.AsyncClient, rw: dict[str, str],
                                      created: dict[str, object]) -> None:
    r = await client.delete(f"{URL}/s1", headers=rw)
    assert r.status_code == 204
    assert r.content == b""
    assert (await client.get(f"{URL}/s1", headers=rw)).status_code == 404
    again = await client.delete(f"{URL}/s1", headers=rw)
    assert again.status_code == 404
