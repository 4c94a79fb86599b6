"""userSecurityProfiles (beta only), with seed 004 replayed."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests.api.test_seeds import error_targets, path_of, seed
from tests.conftest import OTHER_TENANT, TENANT

URL = "/beta/security/userSecurityProfiles"


def made_real(body: dict[str, Any]) -> dict[str, Any]:
    real = copy.deepcopy(body)
    real["azureTenantId"] = TENANT
    for account in real["accounts"]:
        account["status"] = "active"
    return real


async def test_seed_004_as_published_is_refused_naming_status(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    s = seed(4)
    url = path_of(s["request_line"]).replace("/docs\\api/", "/beta/")
    r = await client.post(url, json=s["request"], headers=rw)
    assert r.status_code == 400
    assert error_targets(r) == {"accounts[0].status"}
    assert "status" in r.json()["error"]["message"]
    assert "unknownFutureValue" in r.json()["error"]["message"]


@pytest.mark.parametrize("suffix", ["", "/$ref"])
async def test_seed_004_with_real_values_creates_201(
    client: httpx.AsyncClient, rw: dict[str, str], suffix: str
) -> None:
    s = seed(4)
    body = made_real(s["request"])
    r = await client.post(f"/beta/Security/userSecurityProfiles{suffix}", json=body, headers=rw)
    assert r.status_code == s["response_status"] == 201
    created = r.json()
    assert r.headers["location"].endswith(f"/beta/security/userSecurityProfiles/{created['id']}")
    assert created["accounts"] == [{
        "displayName": "Display Name value", "lastSeenDateTime": "2016-12-31T20:58:05.5931807Z",
        "riskScore": "Risk Score value", "service": "Service value",
        "signinName": "Signin Name value", "status": "active",
    }]
    assert created["tags"] == ["Tags value"]
    assert created["createdDateTime"] == created["lastModifiedDateTime"]
    got = (await client.get(f"{URL}/{created['id']}", headers=rw)).json()
    assert got == created


async def test_not_served_on_v1(client: httpx.AsyncClient, rw: dict[str, str]) -> None:
    r = await client.post("/v1.0/security/userSecurityProfiles",
                          json=made_real(seed(4)["request"]), headers=rw)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "Resource not found for the segment 'userSecurityProfiles'.")


@pytest.fixture
async def created(client: httpx.AsyncClient, rw: dict[str, str]) -> dict[str, Any]:
    body = made_real(seed(4)["request"]) | {"id": "usp1",
                                            "createdDateTime": "2024-01-01T00:00:00Z"}
    r = await client.post(URL, json=body, headers=rw)
    assert r.status_code == 201
    entity: dict[str, Any] = r.json()
    return entity


async def test_patch_tags_answers_204_and_stamps_last_modified(
    client: httpx.AsyncClient, rw: dict[str, str], created: dict[str, Any]
) -> None:
    r = await client.patch(f"{URL}/usp1", json={"tags": ["vip", "finance"]}, headers=rw)
    assert r.status_code == 204
    got = (await client.get(f"{URL}/usp1", headers=rw)).json()
    assert got["tags"] == ["vip", "finance"]
    assert got["lastModifiedDateTime"] > created["lastModifiedDateTime"]
    assert {k: v for k, v in got.items() if k not in ("tags", "lastModifiedDateTime")} == {
        k: v for k, v in created.items() if k not in ("tags", "lastModifiedDateTime")}


async def test_patch_vendor_information_with_representation(
    client: httpx.AsyncClient, rw: dict[str, str], created: dict[str, Any]
) -> None:
    r = await client.patch(f"{URL}/usp1", json={"vendorInformation": {"provider": "IPC"}},
                           headers=rw | {"Prefer": "return=representation"})
    assert r.status_code == 200
    assert r.json()["vendorInformation"]["provider"] == "IPC"
    assert r.json()["vendorInformation"]["vendor"] == "Vendor value"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param({"displayName": "x"}, "'displayName'", id="display-name"),
        pytest.param({"riskScore": "9", "tags": []}, "'riskScore'", id="risk-score"),
        pytest.param({"accounts": []}, "'accounts'", id="accounts"),
        pytest.param({"lastModifiedDateTime": "2024-01-01T00:00:00Z"}, "'lastModifiedDateTime'",
                     id="last-modified"),
        pytest.param({"tags": "vip"}, "tags", id="tags-not-array"),
    ],
)
async def test_patch_of_other_properties_is_400_and_changes_nothing(
    client: httpx.AsyncClient, rw: dict[str, str], created: dict[str, Any],
    body: dict[str, Any], fragment: str,
) -> None:
    r = await client.patch(f"{URL}/usp1", json=body, headers=rw)
    assert r.status_code == 400
    assert fragment in r.json()["error"]["message"]
    assert (await client.get(f"{URL}/usp1", headers=rw)).json() == created


@pytest.mark.parametrize(
    ("account", "target"),
    [
        pytest.param({"status": "String"}, "accounts[0].status", id="placeholder-status"),
        pytest.param({"status": 2}, "accounts[0].status", id="numeric-status"),
        pytest.param({"lastSeenDateTime": "last week"}, "accounts[0].lastSeenDateTime",
                     id="bad-date"),
        pytest.param({"accountName": "x"}, "accounts[0].accountName", id="closed-type"),
    ],
)
async def test_invalid_accounts_are_400(client: httpx.AsyncClient, rw: dict[str, str],
                                        account: dict[str, Any], target: str) -> None:
    body = made_real(seed(4)["request"])
    body["accounts"][0].update(account)
    r = await client.post(URL, json=body, headers=rw)
    assert r.status_code == 400
    assert error_targets(r) == {target}


async def test_status_is_case_insensitive_and_stored_canonical(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    body = made_real(seed(4)["request"])
    body["accounts"][0]["status"] = "Suspended"
    r = await client.post(URL, json=body, headers=rw)
    assert r.json()["accounts"][0]["status"] == "suspended"


async def test_list_newest_first_delete_and_isolation(
    client: httpx.AsyncClient, auth: Any, created: dict[str, Any]
) -> None:
    mine, theirs = auth(), auth(tenant=OTHER_TENANT)
    newer = made_real(seed(4)["request"]) | {"id": "usp2"}
    assert (await client.post(URL, json=newer, headers=mine)).status_code == 201
    listed = (await client.get(f"{URL}?$count=true", headers=mine)).json()
    assert [v["id"] for v in listed["value"]] == ["usp2", "usp1"]
    assert listed["@odata.count"] == 2
    assert (await client.get(URL, headers=theirs)).json()["value"] == []
    assert (await client.get(f"{URL}/usp1", headers=theirs)).status_code == 404
    assert (await client.patch(f"{URL}/usp1", json={"tags": []},
                               headers=theirs)).status_code == 404
    assert (await client.delete(f"{URL}/usp1", headers=theirs)).status_code == 404
    assert (await client.delete(f"{URL}/usp1", headers=mine)).status_code == 204
    assert (await client.get(f"{URL}/usp1", headers=mine)).status_code == 404
