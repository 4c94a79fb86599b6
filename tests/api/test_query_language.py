"""The OData requests real tools send, end to end through HTTP, on every entity set and backend."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests.conftest import OTHER_TENANT, score

SCORES = "/v1.0/security/secureScores"
PROFILES = "/beta/security/secureScoreControlProfiles"
USERS = "/beta/security/userSecurityProfiles"


@pytest.fixture
async def scores(client: httpx.AsyncClient, rw: dict[str, str]) -> list[dict[str, Any]]:
    bodies = [
        score(id="jan", createdDateTime="2024-01-15T00:00:00Z", currentScore=250.0,
              enabledServices=["HasExchange"],
              controlScores=[{"controlName": "AdminMFA", "score": 3.0}]),
        score(id="feb", createdDateTime="2024-02-01T00:00:00Z", currentScore=310.5,
              enabledServices=["HasSharePoint"],
              controlScores=[{"controlName": "AdminMFA", "score": 9.0}]),
        score(id="mar", createdDateTime="2024-03-10T08:30:00.1234567Z", currentScore=420.0,
              enabledServices=["HasExchange", "HasInTune"],
              controlScores=[{"controlName": "DLPEnabled", "score": 20.0}],
              vendorInformation={"provider": "OtherProvider", "vendor": "Contoso"}),
    ]
    created = []
    for body in bodies:
        r = await client.post(SCORES, json=body, headers=rw)
        assert r.status_code == 201
        created.append(r.json())
    return created


def ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [v["id"] for v in r.json()["value"]]


async def get(client: httpx.AsyncClient, rw: dict[str, str], url: str) -> httpx.Response:
    path, _, query = url.partition("?")
    return await client.get(f"{path}?{quote(query, safe='=&$')}" if query else path, headers=rw)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(f"{SCORES}?$top=1&$orderby=createdDateTime desc", ["mar"], id="newest"),
        pytest.param(f"{SCORES}?$filter=createdDateTime ge 2024-02-01T00:00:00Z&$count=true&$top=5",
                     ["mar", "feb"], id="date-range-count"),
        pytest.param(f"{SCORES}?$filter=enabledServices/any(s:s eq 'HasExchange')",
                     ["mar", "jan"], id="any-primitive"),
        pytest.param(f"{SCORES}?$filter=controlScores/any(c: c/controlName eq 'AdminMFA' and "
                     "c/score gt 5)", ["feb"], id="any-complex"),
        pytest.param(f"{SCORES}?$filter=vendorInformation/provider eq 'SecureScore'",
                     ["feb", "jan"], id="complex-path"),
        pytest.param(f"{SCORES}?$filter=currentScore gt 300 and not (id eq 'mar')", ["feb"],
                     id="not"),
        pytest.param(f"{SCORES}?$filter=id in ('jan')", ["jan"], id="in-one"),
        pytest.param(f"{SCORES}?$filter=startswith(vendorInformation/vendor,'micro')",
                     ["feb", "jan"], id="startswith-ci"),
        pytest.param(f"{SCORES}?$filter=year(createdDateTime) eq 2024 and month(createdDateTime) le 2",
                     ["feb", "jan"], id="date-parts"),
        pytest.param(f"{SCORES}?$orderby=currentScore&$select=currentScore", ["jan", "feb", "mar"],
                     id="orderby-select"),
        pytest.param(f"{SCORES}?$orderby=vendorInformation/provider,createdDateTime",
                     ["mar", "jan", "feb"], id="orderby-nested"),
        pytest.param("/beta/security/securescores?top=2&orderby=createdDateTime asc",
                     ["jan", "feb"], id="beta-no-dollar"),
    ],
)
async def test_requests_tools_send(client: httpx.AsyncClient, rw: dict[str, str],
                                   scores: list[dict[str, Any]], url: str,
                                   expected: list[str]) -> None:
    assert ids(await get(client, rw, url)) == expected


async def test_count_is_the_whole_filtered_set(client: httpx.AsyncClient, rw: dict[str, str],
                                               scores: list[dict[str, Any]]) -> None:
    r = await get(client, rw, f"{SCORES}?$filter=currentScore gt 200&$count=true&$top=1")
    assert r.json()["@odata.count"] == 3
    assert len(r.json()["value"]) == 1
    link = r.json()["@odata.nextLink"]
    assert parse_qs(urlsplit(link).query)["$filter"] == ["currentScore gt 200"]
    r2 = await client.get(link, headers=rw)
    assert r2.json()["@odata.count"] == 3
    assert ids(r2) == ["feb"]


async def test_count_segment_with_filter(client: httpx.AsyncClient, rw: dict[str, str],
                                         scores: list[dict[str, Any]]) -> None:
    r = await get(client, rw, f"{SCORES}/$count?$filter=currentScore gt 300")
    assert r.status_code == 200
    assert r.text == "2"


async def test_select_case_insensitive_path(client: httpx.AsyncClient, rw: dict[str, str],
                                            scores: list[dict[str, Any]]) -> None:
    r = await get(client, rw, "/v1.0/Security/secureScores?$select=createdDateTime,"
                              "averageComparativeScores,controlScores&$top=1")
    value = r.json()["value"][0]
    assert set(value) == {"id", "createdDateTime", "averageComparativeScores", "controlScores"}


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        pytest.param("$orderby=createDateTime&$top=1", "createDateTime", id="misspelt-orderby"),
        pytest.param("$filter=createDateTime ge 2024-01-01T00:00:00Z", "createDateTime",
                     id="misspelt-filter"),
        pytest.param("$filter=currentScore eq 'high'", "currentScore", id="wrong-literal"),
        pytest.param("$filter=startswith(currentScore,'1')", "startswith", id="function-type"),
        pytest.param("$filter=currentScore gt", "$filter", id="syntax"),
        pytest.param("$filter=" + "(" * 60 + "currentScore gt 1" + ")" * 60, "deep",
                     id="too-deep"),
        pytest.param("$filter=" + " or ".join(["currentScore eq 1"] * 400), "long",
                     id="too-long"),
    ],
)
async def test_filter_mistakes_are_400(client: httpx.AsyncClient, rw: dict[str, str],
                                       query: str, fragment: str) -> None:
    r = await get(client, rw, f"{SCORES}?{query}")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "BadRequest"
    assert fragment.lower() in r.json()["error"]["message"].lower()


async def test_filter_never_reaches_another_tenant(client: httpx.AsyncClient, auth: Any,
                                                   scores: list[dict[str, Any]]) -> None:
    theirs = auth(tenant=OTHER_TENANT)
    r = await get(client, theirs, f"{SCORES}?$filter=currentScore gt 0 or id eq 'jan'")
    assert ids(r) == []


async def test_control_profiles_filter_by_service_and_ids(client: httpx.AsyncClient,
                                                          rw: dict[str, str]) -> None:
    for entity_id, service, rank in (("scid_2010", "MDATP", 2), ("scid_5090", "MDATP", 1),
                                     ("scid_9", "MDATP", 3), ("AdminMFA", "AzureAD", 4)):
        r = await client.post(PROFILES, headers=rw, json={
            "id": entity_id, "service": service, "rank": rank, "title": entity_id,
            "vendorInformation": {"provider": "SecureScore", "vendor": "Microsoft"}})
        assert r.status_code == 201
    url = (f"{PROFILES}?$filter=service eq 'MDATP' and (id eq 'scid_2010' or "
           "id eq 'scid_5090')")
    assert ids(await get(client, rw, url)) == ["scid_5090", "scid_2010"]


async def test_user_profiles_filter_on_accounts_and_tags(client: httpx.AsyncClient,
                                                         rw: dict[str, str]) -> None:
    for entity_id, status, tags in (("u1", "active", ["vip"]), ("u2", "suspended", []),
                                    ("u3", "active", ["finance", "VIP"])):
        r = await client.post(USERS, headers=rw, json={
            "id": entity_id, "tags": tags, "accounts": [{"status": status, "signinName": entity_id}]})
        assert r.status_code == 201
    url = f"{USERS}?$filter=accounts/any(a: a/status eq 'active') and tags/any(t: t eq 'vip')"
    assert sorted(ids(await get(client, rw, url))) == ["u1", "u3"]


async def test_arithmetic_overflow_is_never_a_500(client: httpx.AsyncClient, rw: dict[str, str],
                                                  scores: list[dict[str, Any]],
                                                  backend: str) -> None:
    r = await get(client, rw, f"{SCORES}?$filter=currentScore mul 1e300 mul 1e300 gt 0")
    if backend == "postgresql":  # PostgreSQL refuses float overflow; SQLite computes infinity
        assert r.status_code == 400
        assert "overflow" in r.json()["error"]["message"]
    else:
        assert ids(r) == ["mar", "feb", "jan"]
