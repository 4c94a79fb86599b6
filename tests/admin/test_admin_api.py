"""The admin API's surface: the operator key, paths and methods, tenants, reset, seed, apps,
tokens (docs/admin.md). On both backends, in process."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import OTHER_TENANT, RO, TENANT, Headers, score


async def test_no_credential_is_401_saying_where_the_key_is(client: httpx.AsyncClient) -> None:
    r = await client.get("/_graphsec/tenants")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "GRAPHSEC_HOME/operator.key" in r.json()["error"]["message"]


async def test_a_wrong_key_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/_graphsec/tenants", headers={"Authorization": "Bearer " + "x" * 43})
    assert r.status_code == 401


async def test_a_tenant_token_is_403_whatever_its_roles(client: httpx.AsyncClient,
                                                       auth: Headers) -> None:
    r = await client.post("/_graphsec/reset", headers=auth())
    assert r.status_code == 403
    assert "tenant token cannot use the admin API" in r.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "status"), [
    pytest.param("GET", "/_graphsec/nothing", 404, id="unknown-path"),
    pytest.param("GET", "/_graphsec/Tenants", 404, id="paths-are-case-sensitive"),
    pytest.param("GET", "/_graphsec", 404, id="the-prefix-alone"),
    pytest.param("GET", "/_graphsec/tenants/x", 404, id="below-a-resource"),
    pytest.param("DELETE", "/_graphsec/tenants", 405, id="wrong-method"),
    pytest.param("GET", "/_graphsec/reset", 405, id="reset-is-post"),
    pytest.param("GET", "/_graphsec/apps/a/b", 405, id="an-app-is-deleted-only"),
])
async def test_paths_and_methods(client: httpx.AsyncClient, operator: dict[str, str],
                                 method: str, path: str, status: int) -> None:
    r = await client.request(method, path, headers=operator)
    assert r.status_code == status, r.text
    assert "error" in r.json()
    if status == 405:
        assert r.headers["Allow"]


async def test_tenants_lists_counts_sorted_by_tenant(client: httpx.AsyncClient, auth: Headers,
                                                     operator: dict[str, str]) -> None:
    for tenant, n in ((OTHER_TENANT, 1), (TENANT, 2)):
        for _ in range(n):
            r = await client.post("/v1.0/security/secureScores", json=score(),
                                  headers=auth(tenant=tenant))
            assert r.status_code == 201
    r = await client.get("/_graphsec/tenants", headers=operator)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"value": [
        {"tenantId": TENANT, "secureScores": 2, "secureScoreControlProfiles": 0,
         "userSecurityProfiles": 0},
        {"tenantId": OTHER_TENANT, "secureScores": 1, "secureScoreControlProfiles": 0,
         "userSecurityProfiles": 0},
    ]}


async def test_reset_one_tenant_keeps_the_others(client: httpx.AsyncClient, auth: Headers,
                                                 operator: dict[str, str]) -> None:
    for tenant in (TENANT, OTHER_TENANT):
        await client.post("/v1.0/security/secureScores", json=score(), headers=auth(tenant=tenant))
    r = await client.post(f"/_graphsec/reset?tenant={TENANT.upper()}", headers=operator)
    assert r.status_code == 200
    assert r.json() == {"deleted": {"secureScoreControlProfiles": 0, "secureScores": 1,
                                    "userSecurityProfiles": 0}}
    mine = await client.get("/v1.0/security/secureScores", headers=auth())
    theirs = await client.get("/v1.0/security/secureScores", headers=auth(tenant=OTHER_TENANT))
    assert mine.json()["value"] == []
    assert len(theirs.json()["value"]) == 1


async def test_reset_everything_keeps_apps_unless_asked(client: httpx.AsyncClient,
                                                        auth: Headers,
                                                        operator: dict[str, str]) -> None:
    await client.post("/v1.0/security/secureScores", json=score(), headers=auth())
    r = await client.post("/_graphsec/apps", headers=operator,
                          json={"tenant": TENANT, "name": "kept", "roles": [RO]})
    assert r.status_code == 201
    r = await client.post("/_graphsec/reset", headers=operator)
    assert r.json()["deleted"]["secureScores"] == 1
    assert len((await client.get("/_graphsec/apps", headers=operator)).json()["value"]) == 1
    assert (await client.get("/_graphsec/tenants", headers=operator)).json() == {"value": []}
    r = await client.post("/_graphsec/reset?apps=true", headers=operator)
    assert r.json()["deleted"]["appRegistrations"] == 1
    assert (await client.get("/_graphsec/apps", headers=operator)).json() == {"value": []}


@pytest.mark.parametrize("query", ["tenant=contoso", "apps=maybe", "everything=1"])
async def test_reset_refuses_bad_parameters(client: httpx.AsyncClient, operator: dict[str, str],
                                            query: str) -> None:
    r = await client.post(f"/_graphsec/reset?{query}", headers=operator)
    assert r.status_code == 400


async def test_seed_writes_sample_data(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    r = await client.post("/_graphsec/seed", headers=operator,
                          json={"tenants": 2, "days": 3, "controls": 4, "users": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["secureScores"], body["secureScoreControlProfiles"],
            body["userSecurityProfiles"]) == (6, 8, 2)
    counts = (await client.get("/_graphsec/tenants", headers=operator)).json()["value"]
    assert sorted(c["tenantId"] for c in counts) == sorted(body["tenants"])
    assert all(c["secureScores"] == 3 for c in counts)


async def test_seed_without_a_body_uses_the_defaults(client: httpx.AsyncClient,
                                                     operator: dict[str, str]) -> None:
    r = await client.post("/_graphsec/seed", headers=operator)
    assert r.status_code == 200, r.text
    assert len(r.json()["tenants"]) == 10
    assert r.json()["secureScores"] == 900


@pytest.mark.parametrize("body", [
    pytest.param({"tenants": 0}, id="too-few"),
    pytest.param({"tenants": 101}, id="too-many-tenants"),
    pytest.param({"tenants": 100, "days": 3650}, id="too-many-entities"),
    pytest.param({"days": "30"}, id="not-a-number"),
    pytest.param({"planets": 3}, id="unknown-option"),
])
async def test_seed_refuses_what_would_stall_the_server(client: httpx.AsyncClient,
                                                        operator: dict[str, str],
                                                        body: dict[str, object]) -> None:
    r = await client.post("/_graphsec/seed", headers=operator, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadRequest"


async def test_apps_create_list_delete(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    r = await client.post("/_graphsec/apps", headers=operator,
                          json={"tenant": TENANT, "name": "scanner", "roles": [RO]})
    assert r.status_code == 201
    created = r.json()
    assert created["clientSecret"]
    assert created["roles"] == [RO]
    listed = (await client.get(f"/_graphsec/apps?tenant={TENANT}", headers=operator)).json()
    assert [a["clientId"] for a in listed["value"]] == [created["clientId"]]
    assert "clientSecret" not in listed["value"][0]
    other = (await client.get(f"/_graphsec/apps?tenant={OTHER_TENANT}", headers=operator))
    assert other.json() == {"value": []}
    path = f"/_graphsec/apps/{TENANT}/{created['clientId']}"
    assert (await client.delete(path, headers=operator)).status_code == 204
    assert (await client.delete(path, headers=operator)).status_code == 404


@pytest.mark.parametrize("body", [
    pytest.param({"name": "x"}, id="no-tenant"),
    pytest.param({"tenant": TENANT}, id="no-name"),
    pytest.param({"tenant": TENANT, "name": "x", "roles": "Read"}, id="roles-not-a-list"),
])
async def test_apps_refuse_bad_bodies(client: httpx.AsyncClient, operator: dict[str, str],
                                      body: dict[str, object]) -> None:
    r = await client.post("/_graphsec/apps", headers=operator, json=body)
    assert r.status_code == 400


async def test_tokens_are_minted_for_the_graph_api(client: httpx.AsyncClient,
                                                   operator: dict[str, str]) -> None:
    r = await client.post("/_graphsec/tokens", headers=operator,
                          json={"tenant": TENANT, "roles": [RO], "expiresIn": 600})
    assert r.status_code == 200
    assert r.json()["expiresIn"] == 600
    token = r.json()["accessToken"]
    r = await client.get("/v1.0/security/secureScores",
                         headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    r = await client.post("/v1.0/security/secureScores", json=score(),
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403  # a read permission only


@pytest.mark.parametrize("body", [
    pytest.param({"tenant": "x"}, id="bad-tenant"),
    pytest.param({"tenant": TENANT, "expiresIn": 0}, id="no-lifetime"),
    pytest.param({"tenant": TENANT, "scopes": [1]}, id="scopes-not-strings"),
])
async def test_tokens_refuse_bad_bodies(client: httpx.AsyncClient, operator: dict[str, str],
                                        body: dict[str, object]) -> None:
    r = await client.post("/_graphsec/tokens", headers=operator, json=body)
    assert r.status_code == 400


async def test_a_json_body_must_be_json(client: httpx.AsyncClient,
                                        operator: dict[str, str]) -> None:
    r = await client.post("/_graphsec/tokens", headers={**operator, "Content-Type": "text/plain"},
                          content=b"{}")
    assert r.status_code == 415
    r = await client.post("/_graphsec/tokens", headers={**operator,
                                                        "Content-Type": "application/json"},
                          content=b"[1]")
    assert r.status_code == 400
