"""secureScoreControlProfiles: the control catalogue with each tenant's own state."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import OTHER_TENANT, RO, TENANT

URL = "/v1.0/security/secureScoreControlProfiles"
VENDOR = {"provider": "SecureScore", "vendor": "Microsoft"}


def profile(entity_id: str = "DLPEnabled", **overrides: Any) -> dict[str, Any]:
    """The example response of Graph's "Get secureScoreControlProfile" documentation page."""
    body: dict[str, Any] = {
        "id": entity_id, "actionType": "Config",
        "actionUrl": "https://compliance.microsoft.com/#/policies", "controlCategory": "Data",
        "title": "Apply Data Loss Prevention policies", "deprecated": False,
        "implementationCost": "Moderate", "lastModifiedDateTime": None, "maxScore": 20.0,
        "rank": 55, "remediation": "Create DLP policies.", "remediationImpact": "Moderate impact.",
        "service": "IP", "threats": ["Data Exfiltration", "Data Spillage"], "tier": "Advanced",
        "userImpact": "Moderate",
        "complianceInformation": [{"certificationName": "ISO 27001:2013",
                                   "certificationControls": [{"name": "A.8.2.1", "url": ""}]}],
        "controlStateUpdates": [{"assignedTo": None, "comment": None, "state": "Default",
                                 "updatedBy": None,
                                 "updatedDateTime": "2019-03-19T22:37:14.628799Z"}],
        "vendorInformation": VENDOR | {"providerVersion": None, "subProvider": None},
    }
    body.update(overrides)
    return body


@pytest.fixture
async def loaded(client: httpx.AsyncClient, rw: dict[str, str]) -> dict[str, Any]:
    r = await client.post(URL, json=profile(), headers=rw)
    assert r.status_code == 201, r.text
    entity: dict[str, Any] = r.json()
    return entity


async def test_catalogue_entry_round_trips(client: httpx.AsyncClient, rw: dict[str, str],
                                           loaded: dict[str, Any]) -> None:
    got = (await client.get(f"{URL}/DLPEnabled", headers=rw)).json()
    assert got.pop("@odata.context") == (
        "http://graph.test/v1.0/$metadata#security/secureScoreControlProfiles/$entity")
    assert got == profile() | {"azureTenantId": TENANT}
    assert (await client.get("/beta/security/securescorecontrolprofiles/DLPEnabled",
                             headers=rw)).status_code == 200


async def test_patch_appends_a_state_update_and_answers_204(
    client: httpx.AsyncClient, auth: Any, loaded: dict[str, Any]
) -> None:
    headers = auth(identity="user1@contoso.com")
    body = {"assignedTo": "", "comment": "control is reviewed", "state": "Reviewed",
            "vendorInformation": VENDOR | {"providerVersion": None, "subProvider": None}}
    r = await client.patch(f"{URL}/DLPEnabled", json=body, headers=headers)
    assert r.status_code == 204
    assert r.content == b""
    got = (await client.get(f"{URL}/DLPEnabled", headers=headers)).json()
    assert len(got["controlStateUpdates"]) == 2
    update = got["controlStateUpdates"][-1]
    assert update["assignedTo"] == ""
    assert update["comment"] == "control is reviewed"
    assert update["state"] == "Reviewed"
    assert update["updatedBy"] == "user1@contoso.com"
    assert update["updatedDateTime"] == got["lastModifiedDateTime"]
    assert "state" not in got
    assert "comment" not in got


async def test_patch_with_prefer_representation_answers_200(
    client: httpx.AsyncClient, rw: dict[str, str], loaded: dict[str, Any]
) -> None:
    r = await client.patch(f"{URL}/DLPEnabled", json={"state": "ignored", "vendorInformation": VENDOR},
                           headers=rw | {"Prefer": "return=representation"})
    assert r.status_code == 200
    assert r.headers["preference-applied"] == "return=representation"
    assert r.json()["controlStateUpdates"][-1]["state"] == "Ignored"
    assert r.json()["lastModifiedDateTime"] is not None


async def test_left_out_state_fields_carry_over(client: httpx.AsyncClient, rw: dict[str, str],
                                                loaded: dict[str, Any]) -> None:
    await client.patch(f"{URL}/DLPEnabled", headers=rw,
                       json={"state": "ThirdParty", "assignedTo": "ann", "vendorInformation": VENDOR})
    await client.patch(f"{URL}/DLPEnabled", headers=rw,
                       json={"comment": "handled by vendor X", "vendorInformation": VENDOR})
    last = (await client.get(f"{URL}/DLPEnabled", headers=rw)).json()["controlStateUpdates"][-1]
    assert (last["state"], last["assignedTo"], last["comment"]) == (
        "ThirdParty", "ann", "handled by vendor X")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param({"state": "Reviewed"}, "vendorInformation", id="no-vendor"),
        pytest.param({"state": "Reviewed", "vendorInformation": {"provider": "SecureScore"}},
                     "vendor", id="no-vendor-field"),
        pytest.param({"state": "Done", "vendorInformation": VENDOR}, "state", id="bad-state"),
        pytest.param({"state": None, "vendorInformation": VENDOR}, "state", id="null-state"),
        pytest.param({"title": "x", "vendorInformation": VENDOR}, "not updatable",
                     id="catalogue-property"),
        pytest.param({"tenantNote": "x", "vendorInformation": VENDOR}, "tenantNote",
                     id="unknown-property"),
        pytest.param({"comment": 5, "vendorInformation": VENDOR}, "comment", id="bad-type"),
    ],
)
async def test_refused_patch_is_400_and_changes_nothing(
    client: httpx.AsyncClient, rw: dict[str, str], loaded: dict[str, Any], body: dict[str, Any],
    fragment: str,
) -> None:
    r = await client.patch(f"{URL}/DLPEnabled", json=body, headers=rw)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]["message"]
    got = (await client.get(f"{URL}/DLPEnabled", headers=rw)).json()
    assert got == loaded


async def test_list_orders_by_rank_then_id_and_pages_at_250(client: httpx.AsyncClient,
                                                             rw: dict[str, str]) -> None:
    for i in range(252):
        r = await client.post(URL, json=profile(f"c{i:03d}", rank=(i * 7) % 5), headers=rw)
        assert r.status_code == 201
    page = (await client.get(URL, headers=rw)).json()
    assert len(page["value"]) == 250
    keys = [(v["rank"], v["id"]) for v in page["value"]]
    assert keys == sorted(keys)
    rest = (await client.get(page["@odata.nextLink"], headers=rw)).json()
    assert len(rest["value"]) == 2
    assert "@odata.nextLink" not in rest
    assert (await client.get(f"{URL}/$count", headers=rw)).text == "252"


async def test_delete_and_isolation(client: httpx.AsyncClient, auth: Any,
                                    loaded: dict[str, Any]) -> None:
    theirs = auth(tenant=OTHER_TENANT)
    assert (await client.get(f"{URL}/DLPEnabled", headers=theirs)).status_code == 404
    assert (await client.patch(f"{URL}/DLPEnabled", json={"state": "Ignored",
                                                          "vendorInformation": VENDOR},
                               headers=theirs)).status_code == 404
    assert (await client.delete(f"{URL}/DLPEnabled", headers=theirs)).status_code == 404
    assert (await client.get(URL, headers=theirs)).json()["value"] == []
    mine = auth()
    assert (await client.delete(f"{URL}/DLPEnabled", headers=mine)).status_code == 204
    assert (await client.get(f"{URL}/DLPEnabled", headers=mine)).status_code == 404


async def test_read_only_token_cannot_patch(client: httpx.AsyncClient, auth: Any,
                                            loaded: dict[str, Any]) -> None:
    r = await client.patch(f"{URL}/DLPEnabled", json={"state": "Ignored", "vendorInformation": VENDOR},
                           headers=auth(roles=(RO,)))
    assert r.status_code == 403


async def test_collection_patch_is_not_offered(client: httpx.AsyncClient,
                                               rw: dict[str, str]) -> None:
    r = await client.patch(URL, json={"id": "DLPEnabled", "state": "Ignored"}, headers=rw)
    assert r.status_code == 400
    assert "/{id}" in r.json()["error"]["message"]
