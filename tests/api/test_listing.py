"""Listing: default order, $top and nextLink paging, $count, $select, $orderby, option rules."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import OTHER_TENANT, score

URL = "/v1.0/security/secureScores"


async def create_many(client: httpx.AsyncClient, rw: dict[str, str],
                      days: list[str]) -> list[str]:
    ids: list[str] = []
    for i, day in enumerate(days):
        entity_id = f"s{i:02d}"
        body = score(id=entity_id, createdDateTime=f"{day}T00:00:00Z", currentScore=float(i))
        r = await client.post(URL, json=body, headers=rw)
        assert r.status_code == 201
        ids.append(entity_id)
    return ids


async def walk(client: httpx.AsyncClient, rw: dict[str, str], url: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for _ in range(200):
        page = (await client.get(url, headers=rw)).json()
        seen += page["value"]
        if "@odata.nextLink" not in page:
            return seen
        url = page["@odata.nextLink"]
    raise AssertionError("paging did not end")


async def test_list_is_newest_first_with_context(client: httpx.AsyncClient,
                                                 rw: dict[str, str]) -> None:
    await create_many(client, rw, ["2024-01-02", "2024-01-03", "2024-01-01"])
    r = await client.get(URL, headers=rw)
    body = r.json()
    assert body["@odata.context"] == "http://graph.test/v1.0/$metadata#security/secureScores"
    assert [v["id"] for v in body["value"]] == ["s01", "s00", "s02"]
    assert "@odata.nextLink" not in body
    assert "@odata.count" not in body


async def test_top_1_pages_with_a_next_link_that_keeps_the_options(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    await create_many(client, rw, ["2024-01-01", "2024-01-02", "2024-01-03"])
    first = (await client.get(f"{URL}?$top=1&$count=true", headers=rw)).json()
    assert [v["id"] for v in first["value"]] == ["s02"]
    assert first["@odata.count"] == 3
    link = first["@odata.nextLink"]
    assert link.startswith("http://graph.test/v1.0/security/secureScores?")
    query = parse_qs(urlsplit(link).query)
    assert query["$top"] == ["1"]
    assert query["$count"] == ["true"]
    assert "$skiptoken" in query
    second = (await client.get(link, headers=rw)).json()
    assert [v["id"] for v in second["value"]] == ["s01"]
    assert second["@odata.count"] == 3


async def test_count_is_the_filtered_total_on_every_page_even_an_empty_one(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    await create_many(client, rw, [f"2024-01-{d:02d}" for d in range(1, 8)])
    url = f"{URL}?$top=2&$count=true&$filter=currentScore ge 2"
    pages = []
    while url:
        page = (await client.get(url, headers=rw)).json()
        pages.append(page)
        url = page.get("@odata.nextLink")
    assert [len(p["value"]) for p in pages] == [2, 2, 1]
    assert [p["@odata.count"] for p in pages] == [5, 5, 5]
    past_the_end = (await client.get(f"{URL}?$skip=10&$count=true", headers=rw)).json()
    assert past_the_end["value"] == []
    assert past_the_end["@odata.count"] == 7
    nothing = (await client.get(f"{URL}?$count=true&$filter=currentScore gt 100",
                                headers=rw)).json()
    assert nothing["value"] == []
    assert nothing["@odata.count"] == 0


@pytest.mark.parametrize("top", range(1, 11))
async def test_paging_with_equal_sort_keys_returns_each_entity_once(
    client: httpx.AsyncClient, rw: dict[str, str], top: int
) -> None:
    ids = await create_many(client, rw, ["2024-01-01"] * 4 + ["2024-01-02"] * 3 +
                            ["2024-01-03"] * 2)
    seen = await walk(client, rw, f"{URL}?$top={top}")
    assert sorted(v["id"] for v in seen) == sorted(ids)
    assert len(seen) == len(ids)
    days = [v["createdDateTime"] for v in seen]
    assert days == sorted(days, reverse=True)


async def test_default_page_size_is_100(client: httpx.AsyncClient, rw: dict[str, str]) -> None:
    await create_many(client, rw, ["2024-01-01"] * 101)
    page = (await client.get(URL, headers=rw)).json()
    assert len(page["value"]) == 100
    assert "@odata.nextLink" in page
    rest = (await client.get(page["@odata.nextLink"], headers=rw)).json()
    assert len(rest["value"]) == 1
    assert "@odata.nextLink" not in rest


async def test_skip_then_next_link_continue_after_the_skipped(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    await create_many(client, rw, ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"])
    page = (await client.get(f"{URL}?$top=1&$skip=1", headers=rw)).json()
    assert [v["id"] for v in page["value"]] == ["s02"]
    assert "$skip=" not in page["@odata.nextLink"]
    rest = await walk(client, rw, page["@odata.nextLink"])
    assert [v["id"] for v in rest] == ["s01", "s00"]


async def test_tampered_or_foreign_skiptoken_is_400(client: httpx.AsyncClient,
                                                    rw: dict[str, str], auth: Any) -> None:
    await create_many(client, rw, ["2024-01-01", "2024-01-02"])
    link = (await client.get(f"{URL}?$top=1", headers=rw)).json()["@odata.nextLink"]
    token = parse_qs(urlsplit(link).query)["$skiptoken"][0]
    body, mac = token.split(".")
    forged = f"{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{mac}"
    for bad in (forged, "garbage", "x.y"):
        r = await client.get(f"{URL}?$top=1&$skiptoken={bad}", headers=rw)
        assert r.status_code == 400, bad
        assert "skiptoken" in r.json()["error"]["message"]
    other_order = await client.get(f"{URL}?$top=1&$orderby=currentScore&$skiptoken={token}",
                                   headers=rw)
    assert other_order.status_code == 400
    other_tenant = await client.get(link, headers=auth(tenant=OTHER_TENANT))
    assert other_tenant.status_code == 400


async def test_count_segment_is_text_plain(client: httpx.AsyncClient,
                                           rw: dict[str, str]) -> None:
    await create_many(client, rw, ["2024-01-01", "2024-01-02"])
    r = await client.get(f"{URL}/$count", headers=rw)
    assert r.status_code == 200
    assert r.text == "2"
    assert r.headers["content-type"].startswith("text/plain")


async def test_select_returns_the_named_properties_and_id(client: httpx.AsyncClient,
                                                          rw: dict[str, str]) -> None:
    await create_many(client, rw, ["2024-01-01"])
    r = (await client.get(f"{URL}?$select=currentScore,createdDateTime", headers=rw)).json()
    assert r["@odata.context"].endswith("#security/secureScores(currentScore,createdDateTime)")
    assert r["value"] == [{"createdDateTime": "2024-01-01T00:00:00Z", "currentScore": 0.0,
                           "id": "s00"}]
    one = (await client.get(f"{URL}/s00?$select=maxScore", headers=rw)).json()
    assert one == {"@odata.context": "http://graph.test/v1.0/$metadata#security/secureScores"
                                     "(maxScore)/$entity", "id": "s00", "maxScore": 697.0}


async def test_orderby_several_keys(client: httpx.AsyncClient, rw: dict[str, str]) -> None:
    await create_many(client, rw, ["2024-01-01", "2024-01-02", "2024-01-01"])
    r = (await client.get(f"{URL}?$orderby=createdDateTime asc,currentScore desc",
                          headers=rw)).json()
    assert [v["id"] for v in r["value"]] == ["s02", "s00", "s01"]
    walked = await walk(client, rw, f"{URL}?$orderby=currentScore&$top=2")
    assert [v["id"] for v in walked] == ["s00", "s01", "s02"]


async def test_beta_takes_options_without_dollar_and_any_case(
    client: httpx.AsyncClient, rw: dict[str, str]
) -> None:
    await create_many(client, rw, ["2024-01-01", "2024-01-02", "2024-01-03"])
    r = (await client.get("/beta/security/securescores?top=2&orderby=createdDateTime asc",
                          headers=rw)).json()
    assert [v["id"] for v in r["value"]] == ["s00", "s01"]
    upper = (await client.get(f"{URL}?$TOP=1", headers=rw)).json()
    assert len(upper["value"]) == 1
    # on v1.0, a name without $ is a custom parameter and is ignored
    plain = (await client.get(f"{URL}?top=1", headers=rw)).json()
    assert len(plain["value"]) == 3


async def test_consistency_level_header_is_accepted(client: httpx.AsyncClient,
                                                    rw: dict[str, str]) -> None:
    r = await client.get(f"{URL}?$count=true", headers=rw | {"ConsistencyLevel": "eventual"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        pytest.param("$top=1000", "$top", id="top-too-large"),
        pytest.param("$top=0", "$top", id="top-zero"),
        pytest.param("$top=-1", "$top", id="top-negative"),
        pytest.param("$top=ten", "$top", id="top-word"),
        pytest.param("$skip=-5", "$skip", id="skip-negative"),
        pytest.param("$count=yes", "$count", id="count-word"),
        pytest.param("$select=nothing", "nothing", id="select-unknown"),
        pytest.param("$select=id,", "empty", id="select-empty-item"),
        pytest.param("$orderby=createDateTime", "createDateTime", id="orderby-misspelt"),
        pytest.param("$orderby=currentScore sideways", "sideways", id="orderby-direction"),
        pytest.param("$orderby=controlScores", "controlScores", id="orderby-collection"),
        pytest.param("$search=mfa", "$search", id="search"),
        pytest.param("$expand=controlScores", "$expand", id="expand"),
        pytest.param("$top=1&$top=2", "more than once", id="duplicate"),
        pytest.param("$frobnicate=1", "$frobnicate", id="unknown-option"),
        pytest.param("$format=xml", "$format", id="format-xml"),
        pytest.param("$skiptoken=", "$skiptoken", id="empty-skiptoken"),
    ],
)
async def test_query_option_mistakes_are_400(client: httpx.AsyncClient, rw: dict[str, str],
                                             query: str, fragment: str) -> None:
    r = await client.get(f"{URL}?{query}", headers=rw)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "BadRequest"
    assert fragment in r.json()["error"]["message"]


async def test_options_that_a_single_entity_cannot_take(client: httpx.AsyncClient,
                                                        rw: dict[str, str]) -> None:
    await create_many(client, rw, ["2024-01-01"])
    r = await client.get(f"{URL}/s00?$top=1", headers=rw)
    assert r.status_code == 400
    assert "single entity" in r.json()["error"]["message"]
